"""Escalation figures at /metrics (DOMAIN §6.1): p50/p90 time to claim and post-claim time to
first action over 7 and 30 days, and the escalation funnel (escalated → claimed → first action).
The ticker refreshes them in every process; every value is computed in SQL.

Cross-tenant by design, so it reads through the admin engine: the app role is confined to one
account by RLS. The queries return aggregates only (counts and percentiles; no row, id or text
leaves the database) and the exported series carry no account label.

Deployment: DATABASE_URL must be the schema-owner role (it runs the migrations and backs the admin
engine; in the embedded and test Postgres it is a superuser). Tenant tables use FORCE ROW LEVEL
SECURITY, which binds the owner too, so migration 0004 gives the role that ran the migrations a
SELECT-only policy on `session_handoffs` (and nothing else). Any other role without BYPASSRLS reads
zero rows here: the gauges read NaN and the refresh logs a warning once.

Every replica exports the same fleet-wide values: aggregate across replicas with max(), not
sum(). The funnel counters follow the database totals: each refresh adds the growth since this
process's previous refresh (the first refresh exports the whole total, so a restart does not look
like a counter reset; rows deleted with their session never make a counter go down)."""
from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy import text

from bot import metrics
from storage.db import Database
from storage.repositories import HandoffRepo

log = logging.getLogger(__name__)

WINDOWS = (7, 30)
FUNNEL_STAGES = ("escalated", "claimed", "first_action")
FUNNEL_SQL = text(
    "SELECT count(*) AS escalated, count(claimed_at) AS claimed, count(first_action_at) AS first_action "
    "FROM session_handoffs"
)
SEES_ALL_TENANTS_SQL = text(
    "SELECT r.rolsuper OR r.rolbypassrls OR EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = 'session_handoffs' "
    "AND p.policyname = 'owner_reads_aggregates' AND r.rolname = ANY(p.roles)) "
    "FROM pg_roles r WHERE r.rolname = current_user")


def _gauge_value(value: Any) -> float:
    return math.nan if value is None else float(value)  # no data in the window is not "0 seconds"


class EscalationMetrics:
    """One per process (it remembers the funnel totals it has already exported)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._exported = dict.fromkeys(FUNNEL_STAGES, 0)
        self._checked_role = False

    async def refresh(self) -> None:
        try:
            async with self.db.admin_tx() as conn:
                await self._warn_if_rls_binds(conn)
                # The `metrics` command's own query; on the admin engine it spans every account.
                repo = HandoffRepo(conn, None)  # type: ignore[arg-type]
                windows = {days: await repo.claim_metrics(days) for days in WINDOWS}
                funnel = (await conn.execute(FUNNEL_SQL)).one()._mapping
        except Exception as exc:
            log.warning("escalation metrics refresh failed", extra={"error": repr(exc)})
            return
        for days, m in windows.items():
            window = f"{days}d"
            for q in ("p50", "p90"):
                metrics.CLAIM_SECONDS.labels(q, window).set(_gauge_value(m[f"claim_{q}"]))
                metrics.FIRST_ACTION_SECONDS.labels(q, window).set(_gauge_value(m[f"action_{q}"]))
        for stage in FUNNEL_STAGES:
            total = int(funnel[stage])
            if total > self._exported[stage]:
                metrics.ESCALATIONS.labels(stage).inc(total - self._exported[stage])
                self._exported[stage] = total
            else:
                metrics.ESCALATIONS.labels(stage)  # export the series even before the first event

    async def _warn_if_rls_binds(self, conn) -> None:
        if self._checked_role:
            return
        self._checked_role = True
        if not (await conn.execute(SEES_ALL_TENANTS_SQL)).scalar():
            log.warning("DATABASE_URL's role has neither SUPERUSER nor BYPASSRLS nor the migration owner's read policy: "
                        "row-level security hides every tenant from the cross-tenant escalation metrics, which will "
                        "read as empty (run the migrations as this role)")
