"""Job workers and outbox dispatchers: asyncio tasks in every process, coordinated only through
Postgres (SKIP LOCKED claims, leases, LISTEN/NOTIFY wake-ups, a poll as safety net)."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from core.errors import DeliveryFailed, FlowPilotError, ModelNotConfigured, Retryable
from core.model import ChatThread, Platform
from core.ports import ChannelSender
from core.views import load_view
from storage import jobs as jobq
from storage import outbox as obx
from storage.notify import Notifier
from storage.uow import SqlUnitOfWork, Store

from bot import logs, metrics
from bot.scheduler import Periodic, Ticker

log = logging.getLogger(__name__)


@dataclass
class JobHandler:
    run: Callable[[Any], Awaitable[None]]
    give_up: Callable[[Any, Exception], Awaitable[None]] | None = None


@dataclass
class Ctx:
    """core.ports.JobContext for one claimed job."""

    store: Store
    job: jobq.Job
    completed: bool = False

    @property
    def job_id(self) -> int:
        return self.job.id

    @property
    def kind(self) -> str:
        return self.job.kind

    @property
    def account_id(self):
        return self.job.account_id

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    @property
    def attempts(self) -> int:
        return self.job.attempts

    @property
    def max_attempts(self) -> int:
        return self.job.max_attempts

    def unit(self):
        return self.store.unit(self.job.account_id)

    async def complete(self, uow: SqlUnitOfWork) -> None:
        await jobq.complete_in(uow.conn, self.job)
        self.completed = True


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Runtime:
    store: Store
    handlers: dict[str, JobHandler]
    senders: dict[str, ChannelSender]
    lease_s: float = 120.0
    poll_s: float = 2.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    outbox_max_attempts: int = 12
    job_workers: int = 2
    outbox_workers: int = 2
    notifier: Notifier | None = None
    _tasks: list[asyncio.Task] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _running: set = field(default_factory=set)
    name: str = field(default_factory=worker_id)
    periodic: list[Periodic] = field(default_factory=list)  # extra ticker jobs (see bot.scheduler)

    async def start(self) -> None:
        self.notifier = Notifier(self.store.db.url, [jobq.JOBS_CHANNEL, obx.OUTBOX_CHANNEL])
        await self.notifier.start()
        for i in range(self.job_workers):
            self._tasks.append(asyncio.create_task(self._job_loop(f"{self.name}/j{i}"), name=f"jobs-{i}"))
        for i in range(self.outbox_workers):
            self._tasks.append(asyncio.create_task(self._outbox_loop(), name=f"outbox-{i}"))
        self.ticker = Ticker(self.store, self.lease_s, self.periodic, on_abandoned=self.give_up_abandoned)
        self.ticker.start()

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming; let running work finish within the grace period, then release."""
        self._stopping.set()
        if getattr(self, "ticker", None) is not None:
            self.ticker.stop()
        for ev in (self.notifier.events.values() if self.notifier else []):
            ev.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.notifier:
            await self.notifier.stop()

    async def _wait(self, channel: str) -> None:
        ev = self.notifier.events[channel] if self.notifier else asyncio.Event()
        try:
            await asyncio.wait_for(ev.wait(), timeout=self.poll_s)
        except asyncio.TimeoutError:
            pass
        ev.clear()

    # ------------------------------------------------------------------ jobs
    async def _job_loop(self, wid: str) -> None:
        while not self._stopping.is_set():
            try:
                async with self.store.db.no_tenant() as conn:
                    claimed = await jobq.claim(conn, wid, self.lease_s, limit=1, kinds=list(self.handlers))
            except Exception as exc:
                log.warning("job claim failed", extra={"error": repr(exc)})
                claimed = []
            if not claimed:
                await self._wait(jobq.JOBS_CHANNEL)
                continue
            for job in claimed:
                try:
                    await self.run_job(job)
                except Exception as exc:
                    # The database went away while the outcome was being recorded: the lease
                    # expires and the job runs again. The loop must outlive the outage.
                    log.warning("job outcome not recorded", extra={"job_id": job.id, "error": repr(exc)})
                    await self._wait(jobq.JOBS_CHANNEL)

    async def run_job(self, job: jobq.Job) -> None:
        # Every line logged while the job runs (the core's included) names the job and what it works on.
        payload = job.payload if isinstance(job.payload, dict) else {}
        with logs.context(job_id=job.id, job_kind=job.kind, session_id=payload.get("session_id"),
                          handoff_id=payload.get("handoff_id")):
            await self._run_job(job)

    async def _run_job(self, job: jobq.Job) -> None:
        handler = self.handlers[job.kind]
        ctx = Ctx(self.store, job)
        extra = {"job_id": job.id, "job_kind": job.kind, "attempt": job.attempts}
        try:
            async with self._keep_lease(lambda conn: jobq.extend_lease(conn, job, self.lease_s)):
                await handler.run(ctx)
            if not ctx.completed:
                async with self.store.db.no_tenant() as conn:
                    await jobq.complete_in(conn, job)
            metrics.JOBS.labels(job.kind, "done").inc()
            log.info("job done", extra=extra)
        except asyncio.CancelledError:
            async with self.store.db.no_tenant() as conn:
                await jobq.release(conn, job)
            raise
        except jobq.LeaseLost:
            metrics.JOBS.labels(job.kind, "lease_lost").inc()
            log.warning("job lease lost; effects rolled back", extra=extra)
        except Exception as exc:
            retry = isinstance(exc, Retryable) or not isinstance(exc, (FlowPilotError, ModelNotConfigured))
            retry_after = exc.retry_after if isinstance(exc, Retryable) else None
            async with self.store.db.no_tenant() as conn:
                status = await jobq.fail(conn, job, f"{type(exc).__name__}: {exc}", retry=retry,
                                         base=self.backoff_base, cap=self.backoff_cap, retry_after=retry_after)
            if status in ("done", "lost"):  # finished elsewhere, or taken over: nothing to record
                metrics.JOBS.labels(job.kind, status).inc()
                log.warning("job error after it was finished or taken over", extra={**extra, "status": status,
                                                                                  "error": repr(exc)})
                return
            metrics.JOBS.labels(job.kind, "retry" if status == "pending" else "failed").inc()
            level = logging.WARNING if status == "pending" else logging.ERROR
            if isinstance(exc, ModelNotConfigured):
                level = logging.INFO  # an expected configuration, explained to the user
            log.log(level, "job attempt failed", extra={**extra, "status": status, "error": f"{type(exc).__name__}: {exc}"},
                    exc_info=not isinstance(exc, (FlowPilotError, Retryable)))
            if status == "failed" and handler.give_up is not None:
                try:
                    await handler.give_up(ctx, exc)
                except Exception:
                    log.exception("job give-up hook failed", extra=extra)

    async def give_up_abandoned(self, jobs: list[jobq.Job]) -> None:
        """Jobs whose worker vanished on every attempt (the recovery tick failed them): run their
        give-up hooks, as for any other final failure, so nobody waits on them in silence."""
        for job in jobs:
            metrics.JOBS.labels(job.kind, "failed").inc()
            log.error("job abandoned: its worker stopped during every attempt",
                      extra={"job_id": job.id, "job_kind": job.kind, "attempt": job.attempts})
            handler = self.handlers.get(job.kind)
            if handler is None or handler.give_up is None:
                continue
            error = Retryable(f"The work was cut off {job.attempts} time(s) because the process running it "
                              "stopped, so FlowPilot gave up on it.")
            try:
                await handler.give_up(Ctx(self.store, job), error)
            except Exception:
                log.exception("job give-up hook failed", extra={"job_id": job.id, "job_kind": job.kind})

    # ------------------------------------------------------------------ leases
    @asynccontextmanager
    async def _keep_lease(self, extend: Callable[[Any], Awaitable[bool]]):
        """Heartbeat for work in progress (a model call, a paced post): extend the lease every
        third of it, so a live worker keeps its claim however long the work takes and only a
        dead one's claim expires (then another process takes it over after `lease_s`)."""

        async def beat() -> None:
            while True:
                await asyncio.sleep(self.lease_s / 3)
                try:
                    async with self.store.db.no_tenant() as conn:
                        if not await extend(conn):
                            return  # finished or taken over: nothing left to keep
                except Exception as exc:  # the database is away; the next beat tries again
                    log.warning("lease heartbeat failed", extra={"error": repr(exc)})

        task = asyncio.create_task(beat(), name="lease-heartbeat")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # ------------------------------------------------------------------ outbox
    async def _outbox_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                async with self.store.db.no_tenant() as conn:
                    rows = await obx.claim(conn, self.lease_s, limit=10, platforms=list(self.senders))
            except Exception as exc:
                log.warning("outbox claim failed", extra={"error": repr(exc)})
                rows = []
            if not rows:
                await self._wait(obx.OUTBOX_CHANNEL)
                continue
            outcomes = await asyncio.gather(*(self.deliver(r) for r in rows), return_exceptions=True)
            for row, outcome in zip(rows, outcomes):
                if isinstance(outcome, Exception):  # e.g. the database went away: the lease expires, it is retried
                    log.warning("delivery outcome not recorded", extra={"outbox_id": row.id, "error": repr(outcome)})
            if any(isinstance(o, Exception) for o in outcomes):
                await self._wait(obx.OUTBOX_CHANNEL)

    @staticmethod
    async def _post_once(sender: ChannelSender, row: obx.OutboxRow, dest: dict[str, Any], view: Any) -> dict[str, Any]:
        """Post, naming the message by the row (delivery_key) where the sender supports it. A
        retried row may already be on the platform: its earlier attempt can have posted and then
        died (kill -9, lost answer) before storing the reference. Such a sender looks the key up
        first (`find_delivered`), so a crash never shows the person the same message twice."""
        find = getattr(sender, "find_delivered", None)
        if find is None:
            return await sender.post(dest, view)
        key = obx.delivery_key(row)
        if row.attempts > 1:
            found = await find(dest, key)
            if found is not None:
                log.info("delivery already on the platform; not posting again",
                         extra={"outbox_id": row.id, "platform": row.platform})
                return found
        return await sender.post({**dest, "delivery_key": key}, view)

    async def deliver(self, row: obx.OutboxRow) -> None:
        sender = self.senders[row.platform]
        dest = dict(row.destination)
        extra = {"outbox_id": row.id, "platform": row.platform, "card_key": row.card_key}
        try:
            view = load_view(row.view)
            async with self.store.unit(row.account_id) as uow:
                if dest.get("root_card_key") and not dest.get("thread_id"):
                    root = await uow.refs.get(dest["root_card_key"])
                    if root is not None:
                        dest["thread_id"] = root.get("thread_id")
                existing = await uow.refs.get(row.card_key) if row.op == "upsert" and row.card_key else None
            async with self._keep_lease(lambda conn: obx.extend_lease(conn, row, self.lease_s)):
                if existing is not None:
                    ref = await sender.update(existing, view)
                else:
                    ref = await self._post_once(sender, row, dest, view)
            async with self.store.unit(row.account_id) as uow:
                if row.card_key and ref is not None:
                    await uow.refs.put(row.card_key, row.platform, ref)
                if dest.get("binds_session") and ref and ref.get("thread_id"):
                    await uow.sessions.bind_thread(uuid.UUID(dest["binds_session"]), ChatThread(
                        Platform(row.platform), dest["workspace_id"], ref.get("channel_id") or dest["channel_id"],
                        ref["thread_id"]))
                await obx.mark_delivered(uow.conn, row, ref)
            metrics.OUTBOX.labels(row.platform, "delivered").inc()
        except asyncio.CancelledError:
            async with self.store.db.no_tenant() as conn:
                await obx.release(conn, row)
            raise
        except Exception as exc:
            permanent = isinstance(exc, DeliveryFailed) and exc.permanent
            retry_after = exc.retry_after if isinstance(exc, DeliveryFailed) else None
            async with self.store.db.no_tenant() as conn:
                status = await obx.mark_failed_attempt(
                    conn, row, f"{type(exc).__name__}: {exc}", max_attempts=self.outbox_max_attempts,
                    permanent=permanent, base=self.backoff_base, cap=self.backoff_cap, retry_after=retry_after)
            metrics.OUTBOX.labels(row.platform, "retry" if status == "pending" else "failed").inc()
            log.log(logging.WARNING if status == "pending" else logging.ERROR, "delivery failed",
                    extra={**extra, "status": status, "error": f"{type(exc).__name__}: {exc}"},
                    exc_info=not isinstance(exc, DeliveryFailed))
