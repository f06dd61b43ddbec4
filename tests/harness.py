"""An in-process FlowPilot for tests: real Postgres, real workers, real anthropic SDK against
the fake Anthropic server, the console sender (plus any platform senders a test adds)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from adapters.console.sender import ConsoleSender
from bot.settings import Settings
from bot.wiring import Components, build
from core.commands import Actor, Inbound, Where
from core.model import Platform
from tests.fakes.anthropic import FakeAnthropic

FAKE_KEY = "sk-test-fake-key"


def test_settings(**overrides: Any) -> Settings:
    values = dict(
        ANTHROPIC_API_KEY=FAKE_KEY, FLOWPILOT_POLL_SECONDS=0.5, FLOWPILOT_BACKOFF_BASE_SECONDS=0.05,
        FLOWPILOT_BACKOFF_CAP_SECONDS=0.5, FLOWPILOT_JOB_LEASE_SECONDS=30, FLOWPILOT_WORKERS=2,
        AI_REQUEST_TIMEOUT_SECONDS=5,
    )
    values.update(overrides)
    # None is passed through on purpose: ANTHROPIC_API_KEY=None must mean "no key" even when the
    # environment running the tests has one (init values beat environment variables).
    return Settings(**values)


@dataclass
class Harness:
    comps: Components
    fake_ai: FakeAnthropic
    console: ConsoleSender
    senders: dict[str, Any] = field(default_factory=dict)

    @property
    def copilot(self):
        return self.comps.copilot

    @property
    def store(self):
        return self.comps.store


def console_inbound(user: str = "U-eng", name: str = "Erin Engineer", thread: str | None = None,
                    event_id: str | None = None, workspace: str = "console-ws", channel: str = "console") -> Inbound:
    return Inbound(actor=Actor(Platform.CONSOLE, workspace, user, name),
                   where=Where(Platform.CONSOLE, workspace, channel, thread), event_id=event_id)


@contextlib.asynccontextmanager
async def running(database_url: str, *, settings: Settings | None = None, senders: dict[str, Any] | None = None,
                  start_workers: bool = True, fake_ai: FakeAnthropic | None = None):
    own_fake = fake_ai is None
    fake_ai = fake_ai or FakeAnthropic(api_key=FAKE_KEY)
    if own_fake:
        await fake_ai.start()
    settings = settings or test_settings()
    if settings.anthropic_base_url is None:
        settings = settings.model_copy(update={"anthropic_base_url": fake_ai.url})
    console = ConsoleSender()
    all_senders = {"console": console, **(senders or {})}
    comps = await build(settings, database_url, senders=all_senders)
    if start_workers:
        await comps.runtime.start()
    try:
        yield Harness(comps=comps, fake_ai=fake_ai, console=console, senders=all_senders)
    finally:
        await comps.close()
        if own_fake:
            await fake_ai.stop()
