"""Engines, the tenant-scoped transaction and the admin (cross-tenant) transaction.

Two engines on the same database:
- `app`: every connection runs as the `flowpilot_app` role (set in the startup packet, so it
  cannot be undone by a rollback). RLS applies; each transaction sets
  `app.current_account_id` with `set_config(..., true)` (transaction-scoped, pool-safe).
- `admin`: the DATABASE_URL user (table owner). Used only for migrations, the pre-tenant
  lookups on infrastructure tables and sweeps that span tenants (job/outbox claims, re-pings).
"""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

APP_ROLE = "flowpilot_app"


def normalise_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and return the asyncpg form."""
    u = make_url(url)
    if u.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@dataclass
class Database:
    url: str
    app: AsyncEngine
    admin: AsyncEngine

    @classmethod
    def connect(cls, url: str, pool_size: int = 10) -> "Database":
        url = normalise_url(url)
        common = dict(pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)
        app = create_async_engine(
            url, connect_args={"server_settings": {"role": APP_ROLE}, "timeout": 10}, **common
        )
        admin = create_async_engine(url, connect_args={"timeout": 10}, pool_size=4, max_overflow=8,
                                    pool_pre_ping=True)
        return cls(url=url, app=app, admin=admin)

    async def dispose(self) -> None:
        await self.app.dispose()
        await self.admin.dispose()

    @asynccontextmanager
    async def tenant(self, account_id: uuid.UUID) -> AsyncIterator[AsyncConnection]:
        """One transaction as the app role with the tenant set. Rolls back on any exception."""
        if account_id is None:
            raise RuntimeError("tenant not set")  # fail closed
        async with self.app.begin() as conn:
            await conn.execute(
                select(func.set_config("app.current_account_id", str(account_id), True))
            )
            yield conn

    @asynccontextmanager
    async def no_tenant(self) -> AsyncIterator[AsyncConnection]:
        """A transaction as the app role with no tenant: tenant tables read as empty."""
        async with self.app.begin() as conn:
            yield conn

    @asynccontextmanager
    async def admin_tx(self) -> AsyncIterator[AsyncConnection]:
        async with self.admin.begin() as conn:
            yield conn
