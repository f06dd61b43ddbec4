"""The composition root: settings → database → core services, model, PSA, channels, workers."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from adapters.anthropic import AnthropicLanguageModel
from bot.metrics import PrometheusUsageRecorder
from bot.settings import Settings
from bot.workers import JobHandler, Runtime
from core import turns
from core.copilot import Copilot
from core.ports import ChannelSender
from storage.db import Database, redact_url
from storage.embedded import ensure_embedded
from storage.uow import Store

log = logging.getLogger(__name__)


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return ensure_embedded(settings.data_dir)


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
    copilot = Copilot(store, bootstrap_admins=settings.admin_ids())
    turn_deps = turns.TurnDeps(llm=llm)
    handlers = {
        turns.TURN_JOB: JobHandler(run=lambda ctx: turns.run_turn(ctx, turn_deps), give_up=turns.on_turn_given_up),
    }
    runtime = Runtime(store=store, handlers=handlers, senders=dict(senders or {}), lease_s=settings.job_lease_seconds,
                      poll_s=settings.poll_seconds, backoff_base=settings.backoff_base_seconds,
                      backoff_cap=settings.backoff_cap_seconds, outbox_max_attempts=settings.outbox_max_attempts,
                      job_workers=settings.workers, outbox_workers=settings.workers)
    http = aiohttp.ClientSession()
    return Components(settings=settings, db=db, store=store, copilot=copilot, llm=llm, runtime=runtime, http=http)
