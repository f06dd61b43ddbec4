"""Test database: a real Postgres, never a non-test one.

`TEST_DATABASE_URL` when set (its database name must contain "test"), otherwise an embedded
server from the pgserver wheel in a temp directory with a fresh `flowpilot_test` database.
Each test starts from empty tables (DELETE, children first: much faster than TRUNCATE), so tests can use many connections and workers."""
from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage import migrate
from storage.db import Database, normalise_url
from storage.embedded import drop_and_create, drop_database
from storage.tables import metadata

# One embedded server per checkout (two checkouts testing at once never share a server or data directory);
# the data directory is kept between runs (a warm start), the server is stopped when the run ends.
_CHECKOUT = hashlib.sha256(str(Path(__file__).resolve().parents[1]).encode()).hexdigest()[:10]
TEST_PG_DIR = Path(tempfile.gettempdir()) / f"flowpilot-test-pg-{os.getuid()}-{_CHECKOUT}"


def _guard(url: str) -> str:
    name = make_url(url).database or ""
    if "test" not in name:
        raise RuntimeError(f"Refusing to run tests against database '{name}': its name must contain 'test'.")
    return url


async def _reset_schema(url: str) -> None:
    db = Database.connect(url)
    try:
        async with db.admin.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
async def database_url():
    env = os.environ.get("TEST_DATABASE_URL")
    if env:
        url = _guard(normalise_url(env))
        await _reset_schema(url)
        name = None
    else:
        # one database per test run, so parallel runs on the shared embedded server never collide
        name = f"flowpilot_test_{os.getpid()}"
        url = _guard(await asyncio.to_thread(drop_and_create, TEST_PG_DIR, name))
    await migrate.upgrade(url)
    yield url
    if name is not None:
        await asyncio.to_thread(drop_database, TEST_PG_DIR, name)


@pytest.fixture(scope="session")
async def database(database_url: str):
    db = Database.connect(database_url, pool_size=10)
    yield db
    await db.dispose()


TABLES = ", ".join(t.name for t in metadata.sorted_tables)


@pytest.fixture
async def db(database: Database) -> Database:
    async with database.admin.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(text(f"DELETE FROM {table.name}"))
    return database


@pytest.fixture
async def store(db: Database):
    from storage.uow import Store

    return Store(db)
