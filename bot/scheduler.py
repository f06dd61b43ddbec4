"""The APScheduler ticker that runs in every process (PLATFORMS §4): in-memory, no job store.

Each tick is safe to run in every replica at once: lease recovery is a conditional UPDATE,
pruning is idempotent, and metrics refresh only reads. Work that must happen exactly once per
slot (escalation re-pings) is a delayed row in the jobs table, claimed with SKIP LOCKED."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text

from bot import metrics
from storage import jobs as jobq
from storage import outbox as obx
from storage.uow import Store

log = logging.getLogger(__name__)

INBOUND_RETENTION = "2 days"  # Slack retries span minutes; Teams ~30 s: keep ids well beyond that

# (id, every seconds, coroutine function): more ticks from the composition root; each must be
# safe to run in every replica at once, like the built-in ones.
Periodic = tuple[str, float, Callable[[], Awaitable[None]]]
# Called with the jobs whose worker vanished on their last attempt (failed by the recovery tick),
# so their give-up hooks still tell the person.
OnAbandoned = Callable[[list[jobq.Job]], Awaitable[None]]


class Ticker:
    def __init__(self, store: Store, lease_s: float, periodic: Sequence[Periodic] = (),
                 on_abandoned: OnAbandoned | None = None) -> None:
        self.store = store
        self.on_abandoned = on_abandoned
        self.scheduler = AsyncIOScheduler()
        every = max(1.0, min(lease_s / 4, 15.0))
        self.scheduler.add_job(self.recover, "interval", seconds=every, max_instances=1, coalesce=True,
                               id="recover")
        self.scheduler.add_job(self.refresh_metrics, "interval", seconds=15, max_instances=1, coalesce=True,
                               id="metrics")
        self.scheduler.add_job(self.prune, "interval", hours=1, max_instances=1, coalesce=True, id="prune")
        for job_id, seconds, run in periodic:  # first run at start, then every `seconds`
            self.scheduler.add_job(run, "interval", seconds=seconds, max_instances=1, coalesce=True, id=job_id,
                                   next_run_time=datetime.now(timezone.utc))

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def recover(self) -> None:
        try:
            async with self.store.db.no_tenant() as conn:
                abandoned = await jobq.fail_exhausted_expired(conn)
                j = await jobq.recover_expired(conn)
                o = await obx.recover_expired(conn)
            if j or o:
                log.warning("recovered expired leases", extra={"jobs": j, "outbox": o})
        except Exception as exc:
            log.warning("lease recovery failed", extra={"error": repr(exc)})
            return
        if abandoned and self.on_abandoned is not None:
            await self.on_abandoned(abandoned)

    async def refresh_metrics(self) -> None:
        try:
            async with self.store.db.no_tenant() as conn:
                for status, s in (await jobq.stats(conn)).items():
                    metrics.JOB_DEPTH.labels(status).set(s["count"])
                    metrics.JOB_AGE.labels(status).set(s["oldest_age_s"])
                for status, s in (await obx.stats(conn)).items():
                    metrics.OUTBOX_DEPTH.labels(status).set(s["count"])
                    metrics.OUTBOX_AGE.labels(status).set(s["oldest_age_s"])
        except Exception as exc:
            log.warning("metrics refresh failed", extra={"error": repr(exc)})

    async def prune(self) -> None:
        try:
            async with self.store.db.no_tenant() as conn:
                await conn.execute(text(f"DELETE FROM inbound_events WHERE received_at < now() - interval '{INBOUND_RETENTION}'"))
        except Exception as exc:
            log.warning("inbound pruning failed", extra={"error": repr(exc)})
