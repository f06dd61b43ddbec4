"""The outbox: every message the bot sends is a row written with the state change.

Rows sharing a `lane_key` (one session's thread, one channel) are delivered strictly in id
order, so an update never overtakes the post it updates and per-thread order holds. An
`upsert` row edits the message stored under its `card_key` in `message_refs`, or posts it
when there is none yet."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.jobs import backoff_seconds

OUTBOX_CHANNEL = "flowpilot_outbox"


@dataclass
class OutboxRow:
    id: int
    account_id: uuid.UUID
    platform: str
    destination: dict[str, Any]
    op: str
    card_key: str | None
    view: dict[str, Any]
    lane_key: str
    attempts: int


async def add(conn: AsyncConnection, *, account_id: uuid.UUID, platform: str, destination: dict[str, Any],
              op: str, view: dict[str, Any], lane_key: str, card_key: str | None = None,
              dedupe_key: str | None = None) -> int | None:
    row = (
        await conn.execute(
            text(
                """
                INSERT INTO outbox (account_id, platform, destination, op, card_key, view, lane_key, dedupe_key)
                VALUES (:a, :p, CAST(:d AS jsonb), :op, :ck, CAST(:v AS jsonb), :l, :dk)
                ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
                """
            ),
            dict(a=account_id, p=platform, d=json.dumps(destination, sort_keys=True), op=op, ck=card_key,
                 v=json.dumps(view, default=str), l=lane_key, dk=dedupe_key),
        )
    ).first()
    await conn.execute(text("SELECT pg_notify(:c, :p)"), dict(c=OUTBOX_CHANNEL, p=platform))
    return row[0] if row else None


async def claim(conn: AsyncConnection, lease_s: float, limit: int = 10,
                platforms: list[str] | None = None) -> list[OutboxRow]:
    rows = (
        await conn.execute(
            text(
                """
                UPDATE outbox SET status = 'sending', attempts = attempts + 1,
                       lease_until = now() + make_interval(secs => :lease)
                WHERE id IN (
                  SELECT o.id FROM outbox o
                  WHERE o.status = 'pending' AND o.next_attempt_at <= now()
                    AND (CAST(:platforms AS text[]) IS NULL OR o.platform = ANY(CAST(:platforms AS text[])))
                    AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.lane_key = o.lane_key AND p.id < o.id
                                    AND p.status IN ('pending', 'sending'))
                  ORDER BY o.id
                  FOR UPDATE SKIP LOCKED
                  LIMIT :n)
                RETURNING id, account_id, platform, destination, op, card_key, view, lane_key, attempts
                """
            ),
            dict(lease=lease_s, n=limit, platforms=platforms),
        )
    ).all()
    return sorted((OutboxRow(**r._mapping) for r in rows), key=lambda r: r.id)


async def extend_lease(conn: AsyncConnection, row: OutboxRow, lease_s: float) -> bool:
    """Heartbeat while a delivery is under way (pacing and Retry-After waits can outlast the
    lease): only a dead sender's row is recovered and sent again. False once it is not sending."""
    found = (
        await conn.execute(
            text("UPDATE outbox SET lease_until = now() + make_interval(secs => :lease) "
                 "WHERE id = :id AND status = 'sending' RETURNING id"),
            dict(id=row.id, lease=lease_s),
        )
    ).first()
    return found is not None


def delivery_key(row: OutboxRow) -> str:
    """Names this row's message at the platform, so a retry can find a post that an earlier
    attempt made before its process died (see Runtime.deliver)."""
    return f"fp-outbox-{row.id}"


async def mark_delivered(conn: AsyncConnection, row: OutboxRow, message_ref: dict[str, Any] | None) -> bool:
    done = (
        await conn.execute(
            text("UPDATE outbox SET status = 'delivered', delivered_at = now(), lease_until = NULL, "
                 "message_ref = CAST(:m AS jsonb) WHERE id = :id AND status = 'sending' RETURNING id"),
            dict(id=row.id, m=json.dumps(message_ref) if message_ref is not None else None),
        )
    ).first()
    return done is not None


async def mark_failed_attempt(conn: AsyncConnection, row: OutboxRow, error: str, *, max_attempts: int,
                              permanent: bool, base: float, cap: float, retry_after: float | None) -> str:
    if permanent or row.attempts >= max_attempts:
        await conn.execute(
            text("UPDATE outbox SET status = 'failed', lease_until = NULL, last_error = :e "
                 "WHERE id = :id AND status = 'sending'"),
            dict(id=row.id, e=error[:2000]),
        )
        return "failed"
    delay = backoff_seconds(row.attempts, base, cap, retry_after)
    await conn.execute(
        text("UPDATE outbox SET status = 'pending', lease_until = NULL, last_error = :e, "
             "next_attempt_at = now() + make_interval(secs => :d) WHERE id = :id AND status = 'sending'"),
        dict(id=row.id, e=error[:2000], d=delay),
    )
    return "pending"


async def release(conn: AsyncConnection, row: OutboxRow) -> None:
    await conn.execute(
        text("UPDATE outbox SET status = 'pending', lease_until = NULL, attempts = greatest(attempts - 1, 0) "
             "WHERE id = :id AND status = 'sending'"),
        dict(id=row.id),
    )


async def recover_expired(conn: AsyncConnection) -> int:
    res = await conn.execute(
        text("UPDATE outbox SET status = 'pending', lease_until = NULL, "
             "last_error = coalesce(last_error, '') || ' [lease expired]' "
             "WHERE status = 'sending' AND lease_until < now()")
    )
    if res.rowcount:  # wake every process now: recovered work must not wait for the next poll
        await conn.execute(text("SELECT pg_notify(:c, 'recovered')"), dict(c=OUTBOX_CHANNEL))
    return res.rowcount or 0


async def stats(conn: AsyncConnection) -> dict[str, Any]:
    rows = (
        await conn.execute(
            text("SELECT status, count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age "
                 "FROM outbox WHERE status IN ('pending','sending','failed') GROUP BY status")
        )
    ).all()
    return {r.status: {"count": int(r.n), "oldest_age_s": float(r.age or 0)} for r in rows}
