"""The durable job queue on Postgres.

- `enqueue` runs inside the caller's transaction (commit-then-work) and NOTIFYs on commit.
- Workers `claim` with FOR UPDATE SKIP LOCKED and a lease. Jobs sharing a `lane_key` (for
  example one session's AI turns) run strictly one after another, in id order.
- A job's effects commit in the same transaction as its completion (`complete_in`), guarded by
  the lease: a worker that lost its lease rolls its effects back, so effects happen exactly once.
- Failures retry with exponential backoff (honouring a Retry-After hint) up to `max_attempts`,
  then stay visible as `failed` (logged and counted), never silently dropped.
"""
from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

JOBS_CHANNEL = "flowpilot_jobs"


class LeaseLost(Exception):
    """Another worker took this job over after our lease expired; our effects must roll back."""


@dataclass
class Job:
    id: int
    account_id: uuid.UUID | None
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lane_key: str | None
    locked_by: str | None
    created_at: datetime | None = None


async def enqueue(
    conn: AsyncConnection,
    kind: str,
    payload: dict[str, Any],
    *,
    account_id: uuid.UUID | None,
    lane_key: str | None = None,
    dedupe_key: str | None = None,
    delay_s: float = 0.0,
    max_attempts: int = 6,
) -> int | None:
    """Insert a job in the caller's transaction. Returns its id, or None for a duplicate."""
    row = (
        await conn.execute(
            text(
                """
                INSERT INTO jobs (account_id, kind, payload, lane_key, dedupe_key, run_after, max_attempts)
                VALUES (:a, :k, CAST(:p AS jsonb), :l, :d, now() + make_interval(secs => :delay), :m)
                ON CONFLICT (dedupe_key) DO NOTHING
                RETURNING id
                """
            ),
            dict(a=account_id, k=kind, p=_json(payload), l=lane_key, d=dedupe_key, delay=delay_s, m=max_attempts),
        )
    ).first()
    await conn.execute(text("SELECT pg_notify(:c, :k)"), dict(c=JOBS_CHANNEL, k=kind))
    return row[0] if row else None


async def claim(conn: AsyncConnection, worker: str, lease_s: float, limit: int = 1,
                kinds: list[str] | None = None) -> list[Job]:
    rows = (
        await conn.execute(
            text(
                """
                UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = :w,
                       lease_until = now() + make_interval(secs => :lease)
                WHERE id IN (
                  SELECT j.id FROM jobs j
                  WHERE j.status = 'pending' AND j.run_after <= now()
                    AND (CAST(:kinds AS text[]) IS NULL OR j.kind = ANY(CAST(:kinds AS text[])))
                    AND (j.lane_key IS NULL OR NOT EXISTS (
                          SELECT 1 FROM jobs p WHERE p.lane_key = j.lane_key AND p.id < j.id
                            AND p.status IN ('pending', 'running')))
                  ORDER BY j.run_after, j.id
                  FOR UPDATE SKIP LOCKED
                  LIMIT :n)
                RETURNING id, account_id, kind, payload, attempts, max_attempts, lane_key, locked_by, created_at
                """
            ),
            dict(w=worker, lease=lease_s, n=limit, kinds=kinds),
        )
    ).all()
    return [Job(**r._mapping) for r in rows]


async def complete_in(conn: AsyncConnection, job: Job) -> None:
    """Mark done inside the transaction that holds the job's effects; raise LeaseLost if the
    job is no longer ours (its effects then roll back with the transaction)."""
    done = (
        await conn.execute(
            text(
                "UPDATE jobs SET status = 'done', finished_at = now(), lease_until = NULL, payload = "
                "payload - 'images' WHERE id = :id AND locked_by = :w AND status = 'running' RETURNING id"
            ),
            dict(id=job.id, w=job.locked_by),
        )
    ).first()
    if done is None:
        raise LeaseLost(f"job {job.id} is no longer leased by {job.locked_by}")


async def extend_lease(conn: AsyncConnection, job: Job, lease_s: float) -> bool:
    """Heartbeat of a live worker: push its lease forward so only a dead worker's job is taken
    over. False when the job is no longer ours (finished, or taken over after all)."""
    row = (
        await conn.execute(
            text("UPDATE jobs SET lease_until = now() + make_interval(secs => :lease) "
                 "WHERE id = :id AND locked_by = :w AND status = 'running' RETURNING id"),
            dict(id=job.id, w=job.locked_by, lease=lease_s),
        )
    ).first()
    return row is not None


def backoff_seconds(attempts: int, base: float, cap: float, retry_after: float | None = None) -> float:
    delay = min(cap, base * (2 ** max(0, attempts - 1)))
    delay = delay * (0.5 + random.random() / 2)  # jitter
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


async def fail(conn: AsyncConnection, job: Job, error: str, *, retry: bool, base: float, cap: float,
               retry_after: float | None = None) -> str:
    """Record a failed attempt; returns the new status ('pending' to retry or 'failed'), or
    'done' / 'lost' when the attempt no longer owns a running job: its completion already
    committed (an error after commit must not re-run it) or another worker took it over."""
    final = (not retry) or job.attempts >= job.max_attempts
    if final:
        stmt = text("UPDATE jobs SET status = 'failed', finished_at = now(), lease_until = NULL, last_error = :e, "
                    "payload = payload - 'images' WHERE id = :id AND locked_by = :w AND status = 'running' "
                    "RETURNING id")
        params = dict(id=job.id, w=job.locked_by, e=error[:2000])
    else:
        stmt = text("UPDATE jobs SET status = 'pending', lease_until = NULL, locked_by = NULL, last_error = :e, "
                    "run_after = now() + make_interval(secs => :d) WHERE id = :id AND locked_by = :w "
                    "AND status = 'running' RETURNING id")
        params = dict(id=job.id, w=job.locked_by, e=error[:2000], d=backoff_seconds(job.attempts, base, cap,
                                                                                    retry_after))
    if (await conn.execute(stmt, params)).first() is not None:
        return "failed" if final else "pending"
    current = (await conn.execute(text("SELECT status, locked_by FROM jobs WHERE id = :id"),
                                  dict(id=job.id))).first()
    if current is not None and current.status == "done" and current.locked_by == job.locked_by:
        return "done"
    return "lost"


async def release(conn: AsyncConnection, job: Job) -> None:
    """Give a job back untouched (graceful shutdown): the attempt is not counted."""
    await conn.execute(
        text("UPDATE jobs SET status = 'pending', lease_until = NULL, locked_by = NULL, "
             "attempts = greatest(attempts - 1, 0) WHERE id = :id AND locked_by = :w AND status = 'running'"),
        dict(id=job.id, w=job.locked_by),
    )


async def fail_exhausted_expired(conn: AsyncConnection) -> list[Job]:
    """Jobs whose worker vanished during their LAST attempt: marked failed and returned, so the
    caller runs their give-up hooks (the person hears about it; a failure is never silent).
    `recover_expired` then returns the others to the queue."""
    rows = (
        await conn.execute(
            text(
                """
                UPDATE jobs SET status = 'failed', finished_at = now(), lease_until = NULL,
                       last_error = coalesce(last_error, '') || ' [lease expired]', payload = payload - 'images'
                WHERE status = 'running' AND lease_until < now() AND attempts >= max_attempts
                RETURNING id, account_id, kind, payload, attempts, max_attempts, lane_key, locked_by, created_at
                """
            )
        )
    ).all()
    return [Job(**r._mapping) for r in rows]


async def recover_expired(conn: AsyncConnection) -> int:
    """Return jobs whose worker vanished (lease expired) to the queue, or fail them when out of
    attempts. Safe in every replica: plain conditional UPDATEs."""
    res = await conn.execute(
        text(
            """
            UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
                   locked_by = NULL, lease_until = NULL,
                   finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
                   last_error = coalesce(last_error, '') || ' [lease expired]'
            WHERE status = 'running' AND lease_until < now()
            """
        )
    )
    if res.rowcount:  # wake every process now: recovered work must not wait for the next poll
        await conn.execute(text("SELECT pg_notify(:c, 'recovered')"), dict(c=JOBS_CHANNEL))
    return res.rowcount or 0


async def stats(conn: AsyncConnection) -> dict[str, Any]:
    rows = (
        await conn.execute(
            text("SELECT status, count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age "
                 "FROM jobs WHERE status IN ('pending','running','failed') GROUP BY status")
        )
    ).all()
    return {r.status: {"count": int(r.n), "oldest_age_s": float(r.age or 0)} for r in rows}


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str, sort_keys=True)
