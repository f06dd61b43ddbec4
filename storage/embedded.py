"""An embedded Postgres from the `pgserver` wheel, used when no DATABASE_URL is set.

pgserver listens on a Unix socket inside the data directory only (no TCP port), so nothing on
the network can reach it. The data survives restarts; the server is left running between
commands so the next start is fast (pgserver reuses a running server for the same directory)."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_DB = "flowpilot"


def ensure_embedded(data_dir: Path, database: str = DEFAULT_DB) -> str:
    """Start (or reuse) the embedded server and return an asyncpg SQLAlchemy URL for `database`."""
    import pgserver  # imported lazily: only needed without DATABASE_URL

    pgdata = (Path(data_dir) / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    log.info("embedded postgres ready", extra={"pgdata": str(pgdata), "database": database})
    return socket_url(pgdata, database)


def socket_url(pgdata: Path, database: str) -> str:
    return f"postgresql+asyncpg://postgres@/{database}?host={pgdata}"


def drop_and_create(data_dir: Path, database: str) -> str:
    """Tests and benchmarks only: a fresh database on the embedded server, which is stopped when the
    last process using it exits (the data directory stays, so the next run starts warm)."""
    import pgserver

    pgdata = (Path(data_dir) / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    server.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE);')
    server.psql(f'CREATE DATABASE "{database}";')
    return socket_url(pgdata, database)


def drop_database(data_dir: Path, database: str) -> None:
    """Tests only: remove a database created by drop_and_create."""
    import pgserver

    server = pgserver.get_server((Path(data_dir) / "pgdata").resolve(), cleanup_mode=None)
    server.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE);')
