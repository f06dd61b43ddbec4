"""The composition root: settings → database → core services, model, PSA, channels, workers."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from adapters.anthropic import AnthropicLanguageModel
from bot.escalation_metrics import EscalationMetrics
from bot.metrics import PrometheusUsageRecorder
from bot.settings import Settings
from bot.workers import JobHandler, Runtime
from bot.psa import ConnectWiseGateway, ticket_context_provider
from core import flows, handoffs, resolution, turns, updates
from core.copilot import Copilot
from core.ports import ChannelSender
from storage.db import Database, redact_url
from bot.database import resolve_database_url  # noqa: F401  (re-exported for callers)
from storage.uow import Store

log = logging.getLogger(__name__)


@dataclass
class Components:
    settings: Settings
    db: Database
    store: Store
    copilot: Copilot
    llm: Any
    runtime: Runtime
    http: aiohttp.ClientSession
    extras: dict[str, Any] = field(default_factory=dict)

    async def close(self) -> None:
        await self.runtime.stop()
        if hasattr(self.llm, "aclose"):
            await self.llm.aclose()
        await self.http.close()
        await self.db.dispose()


def build_llm(settings: Settings) -> AnthropicLanguageModel:
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
    return AnthropicLanguageModel(api_key=key, base_url=settings.anthropic_base_url, models=settings.model_ids(),
                                  timeout_s=settings.ai_request_timeout_seconds, recorder=PrometheusUsageRecorder())


async def build(settings: Settings, db_url: str, senders: dict[str, ChannelSender] | None = None,
                llm: Any = None) -> Components:
    db = Database.connect(db_url, pool_size=settings.db_pool_size)
    log.info("database", extra={"url": redact_url(db.url)})
    store = Store(db, job_max_attempts=settings.job_max_attempts)
    llm = llm or build_llm(settings)
    if not llm.configured:
        log.warning("ANTHROPIC_API_KEY is not set: AI turns and summaries are off; everything else works")
    http = aiohttp.ClientSession()
    psa = ConnectWiseGateway(settings, http)
    copilot = Copilot(store, bootstrap_admins=settings.admin_ids())
    flows.register(copilot, psa=psa if psa.enabled else None, reping_minutes=settings.escalation_reping_minutes)
    turn_deps = turns.TurnDeps(llm=llm, ticket_context=ticket_context_provider(store, psa))
    gate = psa if psa.enabled else None
    handlers = {
        turns.TURN_JOB: JobHandler(run=lambda ctx: turns.run_turn(ctx, turn_deps), give_up=turns.on_turn_given_up),
        handoffs.SUMMARY_JOB: JobHandler(
            run=lambda ctx: handoffs.run_summary(ctx, llm, settings.escalation_summary_timeout_seconds)),
        handoffs.REPING_JOB: JobHandler(
            run=lambda ctx: handoffs.run_reping(ctx, settings.escalation_reping_minutes, settings.escalation_reping_max)),
        handoffs.PSA_ESCALATION_JOB: JobHandler(run=lambda ctx: resolution.run_escalation_post(ctx, llm, gate),
                                                give_up=resolution.on_escalation_post_given_up),
        resolution.PREVIEW_JOB: JobHandler(run=lambda ctx: resolution.run_preview(ctx, llm)),
        resolution.POST_JOB: JobHandler(run=lambda ctx: resolution.run_post(ctx, gate),
                                        give_up=resolution.on_post_given_up),
        updates.UPDATE_JOB: JobHandler(run=lambda ctx: updates.run_update(ctx, llm, gate)),
        updates.VARIANT_JOB: JobHandler(run=lambda ctx: updates.run_variant(ctx, llm)),
        updates.SYNTHESIS_JOB: JobHandler(run=lambda ctx: updates.run_synthesis(ctx, llm),
                                          give_up=updates.on_synthesis_given_up),
        flows.PSA_TEST_JOB: JobHandler(run=lambda ctx: flows.run_psa_test(ctx, psa)),
    }
    runtime = Runtime(store=store, handlers=handlers, senders=dict(senders or {}), lease_s=settings.job_lease_seconds,
                      poll_s=settings.poll_seconds, backoff_base=settings.backoff_base_seconds,
                      backoff_cap=settings.backoff_cap_seconds, outbox_max_attempts=settings.outbox_max_attempts,
                      job_workers=settings.workers, outbox_workers=settings.workers)
    escalation_metrics = EscalationMetrics(db)
    runtime.periodic.append(("escalation_metrics", settings.ticker_seconds, escalation_metrics.refresh))
    return Components(settings=settings, db=db, store=store, copilot=copilot, llm=llm, runtime=runtime, http=http,
                      extras={"psa": psa, "escalation_metrics": escalation_metrics})
