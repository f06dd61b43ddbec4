"""The unit of work: one tenant transaction with repositories, job enqueueing and outbox writes."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from core.ports import Destination
from core.views import dump_view
from storage import jobs, outbox
from storage.db import Database
from storage.repositories import (
    FactRepo, FixRepo, HandoffRepo, LaneRepo, MessageRepo, PeopleRepo, PreviewRepo, PsaRepo, RefRepo,
    RouteRepo, SessionRepo, SettingsRepo, StepRepo,
)


class SqlUnitOfWork:
    def __init__(self, conn: AsyncConnection, account_id: uuid.UUID, max_attempts: int = 6) -> None:
        self.conn = conn
        self.account_id = account_id
        self._max_attempts = max_attempts
        self.people = PeopleRepo(conn, account_id)
        self.sessions = SessionRepo(conn, account_id)
        self.messages = MessageRepo(conn, account_id)
        self.lane = LaneRepo(conn, account_id)
        self.facts = FactRepo(conn, account_id)
        self.fixes = FixRepo(conn, account_id)
        self.handoffs = HandoffRepo(conn, account_id)
        self.settings = SettingsRepo(conn, account_id)
        self.steps = StepRepo(conn, account_id)
        self.routes = RouteRepo(conn, account_id)
        self.previews = PreviewRepo(conn, account_id)
        self.psa = PsaRepo(conn, account_id)
        self.refs = RefRepo(conn, account_id)

    async def enqueue(self, kind: str, payload: dict[str, Any], *, lane_key: str | None = None,
                      dedupe_key: str | None = None, delay_s: float = 0.0) -> int | None:
        return await jobs.enqueue(self.conn, kind, payload, account_id=self.account_id, lane_key=lane_key,
                                  dedupe_key=dedupe_key, delay_s=delay_s, max_attempts=self._max_attempts)

    async def send(self, destination: Destination, view: BaseModel, *, op: str = "post",
                   card_key: str | None = None, lane_key: str | None = None,
                   dedupe_key: str | None = None) -> None:
        await outbox.add(self.conn, account_id=self.account_id, platform=destination.platform,
                         destination=destination.as_dict(), op=op, view=dump_view(view),
                         lane_key=lane_key or destination.lane_key(), card_key=card_key, dedupe_key=dedupe_key)

    async def claim_inbound(self, platform: str, workspace_id: str, event_id: str) -> bool:
        return await claim_inbound(self.conn, platform, workspace_id, event_id)

    async def now(self) -> datetime:
        return (await self.conn.execute(select(func.now()))).scalar_one()


async def claim_inbound(conn: AsyncConnection, platform: str, workspace_id: str, event_id: str) -> bool:
    """Record an inbound delivery; False when it was seen before (a retry or a double click)."""
    row = (
        await conn.execute(
            text("INSERT INTO inbound_events (platform, workspace_id, event_id) VALUES (:p, :w, :e) "
                 "ON CONFLICT DO NOTHING RETURNING 1"),
            dict(p=platform, w=workspace_id, e=event_id[:255]),
        )
    ).first()
    return row is not None


class Store:
    """Entry point for adapters and workers: tenant units of work and pre-tenant lookups."""

    def __init__(self, db: Database, job_max_attempts: int = 6) -> None:
        self.db = db
        self.job_max_attempts = job_max_attempts

    @asynccontextmanager
    async def unit(self, account_id: uuid.UUID) -> AsyncIterator[SqlUnitOfWork]:
        async with self.db.tenant(account_id) as conn:
            yield SqlUnitOfWork(conn, account_id, self.job_max_attempts)

    # ---- pre-tenant lookups (infrastructure tables, outside RLS)
    async def account_for_workspace(self, platform: str, external_id: str) -> uuid.UUID | None:
        async with self.db.no_tenant() as conn:
            return (
                await conn.execute(
                    text("SELECT account_id FROM workspaces WHERE platform = :p AND external_id = :e"),
                    dict(p=platform, e=external_id),
                )
            ).scalar_one_or_none()

    async def ensure_workspace(self, platform: str, external_id: str, name: str | None = None,
                               account_id: uuid.UUID | None = None) -> uuid.UUID:
        """The account of a workspace; a first contact creates the account (or links `account_id`)."""
        existing = await self.account_for_workspace(platform, external_id)
        if existing is not None:
            return existing
        async with self.db.no_tenant() as conn:
            # Concurrent first contacts of one workspace take turns here, so exactly one of them
            # creates the account (the others would each leave an orphan account behind).
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                               dict(k=f"workspace:{platform}:{external_id}"))
            existing = (await conn.execute(
                text("SELECT account_id FROM workspaces WHERE platform = :p AND external_id = :e"),
                dict(p=platform, e=external_id))).scalar_one_or_none()
            if existing is not None:  # the contact we waited for created it
                return existing
            if account_id is None:
                account_id = (
                    await conn.execute(text("INSERT INTO accounts (name) VALUES (:n) RETURNING id"),
                                       dict(n=name or f"{platform} {external_id}"))
                ).scalar_one()
            row = (
                await conn.execute(
                    text("INSERT INTO workspaces (account_id, platform, external_id, name) VALUES (:a, :p, :e, :n) "
                         "ON CONFLICT (platform, external_id) DO NOTHING RETURNING account_id"),
                    dict(a=account_id, p=platform, e=external_id, n=name),
                )
            ).first()
        if row is None:  # lost a race with another first contact: use the winner's account
            found = await self.account_for_workspace(platform, external_id)
            assert found is not None
            return found
        return row[0]

    async def link_workspace(self, platform: str, external_id: str, account_id: uuid.UUID) -> None:
        async with self.db.no_tenant() as conn:
            await conn.execute(
                text("INSERT INTO workspaces (account_id, platform, external_id) VALUES (:a, :p, :e) "
                     "ON CONFLICT (platform, external_id) DO UPDATE SET account_id = EXCLUDED.account_id"),
                dict(a=account_id, p=platform, e=external_id),
            )

    async def workspaces_of(self, account_id: uuid.UUID) -> list[tuple[str, str]]:
        async with self.db.no_tenant() as conn:
            rows = (await conn.execute(text("SELECT platform, external_id FROM workspaces WHERE account_id = :a"),
                                       dict(a=account_id))).all()
        return [(r.platform, r.external_id) for r in rows]
