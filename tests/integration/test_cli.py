"""The `flowpilot` command line as an operator runs it: migrate up, down to base and up again on
an empty database; db-url; serve with health and readiness, and a clean exit on SIGTERM.

Runs against a separate database created for this module on the test server (its name contains
"test") and dropped afterwards."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage import migrate
from storage.db import normalise_url
from storage.tables import TENANT_TABLES, metadata

REPO = Path(__file__).resolve().parents[2]
FLOWPILOT = Path(sys.executable).parent / "flowpilot"


@pytest.fixture(scope="module")
async def cli_db_url(database_url: str):
    name = f"flowpilot_cli_test_{os.getpid()}"
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    server = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url
        async with server.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await server.dispose()


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    """A clean environment: only what the command needs (no API keys or chat tokens leak in)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    return {**keep, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "FLOWPILOT_LOG_FORMAT": "text", **extra}


async def flowpilot(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(str(FLOWPILOT), *args, cwd=str(REPO), env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


async def schema_state(url: str) -> dict:
    engine = create_async_engine(normalise_url(url))
    try:
        async with engine.connect() as conn:
            tables = set((await conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))).scalars())
            forced = set((await conn.execute(text(
                "SELECT relname FROM pg_class WHERE relforcerowsecurity AND relrowsecurity"))).scalars())
            policies = (await conn.execute(text(
                "SELECT count(*) FROM pg_policies WHERE policyname = 'tenant_isolation'"))).scalar_one()
            version = None
            if "alembic_version" in tables:
                version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
        return {"tables": tables, "forced": forced, "policies": policies, "version": version}
    finally:
        await engine.dispose()


def assert_at_head(state: dict) -> None:
    assert state["version"] == migrate.head_revision()
    assert {t.name for t in metadata.sorted_tables} <= state["tables"]
    assert state["forced"] == set(TENANT_TABLES)
    assert state["policies"] == len(TENANT_TABLES)


async def test_migrate_up_down_to_base_and_up_again(cli_db_url):
    env = cli_env(cli_db_url)
    assert (await schema_state(cli_db_url))["tables"] == set()  # an empty database

    code, out, err = await flowpilot("migrate", env=env)
    assert code == 0, err
    assert "upgraded to head" in out
    assert_at_head(await schema_state(cli_db_url))

    code, out, err = await flowpilot("migrate", "--down", "base", env=env)
    assert code == 0, err
    assert "downgraded to base" in out
    state = await schema_state(cli_db_url)
    assert state["tables"] <= {"alembic_version"} and state["version"] is None and state["policies"] == 0

    code, out, err = await flowpilot("migrate", env=env)
    assert code == 0, err
    assert_at_head(await schema_state(cli_db_url))


async def test_db_url_prints_the_url_in_use(cli_db_url):
    plain = make_url(cli_db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    code, out, err = await flowpilot("db-url", env=cli_env(plain))
    assert code == 0, err
    assert out.strip() == normalise_url(cli_db_url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_is_healthy_ready_and_stops_cleanly_on_sigterm(cli_db_url, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            str(FLOWPILOT), "serve", cwd=str(REPO), stdout=sink, stderr=sink,
            env=cli_env(cli_db_url, HOST="127.0.0.1", PORT=str(port), FLOWPILOT_POLL_SECONDS="0.5"))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while True:  # poll readiness; the server migrates and starts its workers first
                assert proc.returncode is None, log.read_text()[-3000:]
                try:
                    async with http.get(f"{base}/readyz") as resp:
                        if resp.status == 200:
                            assert (await resp.json()) == {"status": "ready"}
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert loop.time() < deadline, "serve never became ready:\n" + log.read_text()[-3000:]
                await asyncio.sleep(0.1)
            async with http.get(f"{base}/healthz") as resp:
                assert resp.status == 200 and (await resp.json()) == {"status": "ok"}
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=20)
        assert code == 0, log.read_text()[-3000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
