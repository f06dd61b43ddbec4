"""FlowPilot as it runs in production, for the reliability and security suite.

`world(...)` serves the real aiohttp application (bot.app.create_app) with Slack (bolt AsyncApp) and
Teams (botbuilder CloudAdapter) mounted, real job workers and outbox dispatchers, and real Postgres.
The real SDK clients talk over HTTP to FakeSlack, FakeBotConnector (+ FakeOpenIdIssuer, whose RS256
channel tokens the SDK validates) and FakeAnthropic. Slack requests are signed with the signing
secret exactly as Slack signs them; Teams activities carry a channel token from the fake issuer.

Synchronisation is by state, never by sleeping: FakeSlack/FakeBotConnector `wait_for`, the
recording copilot (every listener's core call), and database polls with deadlines (`eventually`)."""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterable

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from adapters.slack.config import SlackOptions
from adapters.slack.mount import OPTIONS_KEY
from adapters.teams.sender import RetryPolicy
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from bot.app import create_app
from bot.wiring import Components, build
from core.prompts.chat import CHAT_SYSTEM_PROMPT
from tests.fakes.anthropic import FakeAnthropic, TextReply, example_for_schema
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_signing import DEFAULT_CHANNEL_ID, DEFAULT_USER_ID
from tests.fakes.teams import (
    FakeBotConnector, FakeOpenIdIssuer, _error, teams_card_action_invoke, teams_channel_message,
)
from tests.harness import FAKE_KEY, test_settings
from tests.integration.slack_fixtures import RecordingCopilot, SlackBot, clear_slack_tables

SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"
APP_ID = "5f3c2a1e-7b9d-4c8e-a6f0-2d4b6e8a0c13"
APP_PASSWORD = "fake-client-secret"
TENANT_ID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d"
# Tables an unauthenticated request must never touch, and the ones effects are counted in.
WRITE_TABLES = ("inbound_events", "accounts", "workspaces", "people", "identities", "ai_sessions", "jobs",
                "outbox", "conversation_refs")
FAST_SLACK = SlackOptions(post_interval_s=0.02)
# The Teams sender's in-process retries, shortened like the outbox backoff (Retry-After still rules).
FAST_TEAMS_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.05, max_delay_s=2.0)
TOKEN_RE = re.compile(r"tok-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


# --------------------------------------------------------------------------- the model
FIRST_TURN_MARKERS = """
[QUESTIONS]
[{"text": "Does it happen for every user?", "context": "scope"}]
[/QUESTIONS]
[SUGGEST_FIX]
{"title": "Restart the print spooler", "description": "Run Restart-Service Spooler.", "confidence": 70}
[/SUGGEST_FIX]"""


def last_user_text(body: dict[str, Any]) -> str:
    content = (body.get("messages") or [{}])[-1].get("content")
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def system_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    if isinstance(system, str):
        return system
    return "\n".join(b.get("text", "") for b in system or [] if isinstance(b, dict))


def is_chat(body: dict[str, Any]) -> bool:
    return CHAT_SYSTEM_PROMPT[:200] in system_text(body)


class ScriptedModel:
    """The fake model's responder. A chat turn answers "Reply for <token>." where <token> is the
    `tok-…` the engineer's message carries; a first turn (token ending in -T0) also proposes a
    question and a fix. Structured tasks get schema-shaped JSON, other text tasks a plain note.
    `turns` counts chat requests per token (one per AI turn actually run)."""

    def __init__(self) -> None:
        self.turns: Counter[str] = Counter()
        self.echo: Callable[[str], str] | None = None  # replaces the reply (prompt-injection tests)

    def __call__(self, body: dict[str, Any]) -> Any:
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            tool = next(t for t in body.get("tools", []) if t.get("name") == choice["name"])
            return example_for_schema(tool.get("input_schema", {"type": "object"}))
        fmt = (body.get("output_config") or {}).get("format")
        if fmt:
            return example_for_schema(fmt["schema"])
        if not is_chat(body):
            return TextReply("The issue was resolved by restarting the service.")
        user_text = last_user_text(body)
        if self.echo is not None:
            return TextReply(self.echo(user_text))
        found = TOKEN_RE.findall(user_text)
        token = found[-1] if found else "tok-none"
        self.turns[token] += 1
        return TextReply(f"Reply for {token}." + (FIRST_TURN_MARKERS if token.endswith("-T0") else ""))


# --------------------------------------------------------------------------- Teams
class FlakyConnector(FakeBotConnector):
    """FakeBotConnector that also fails a fraction of connector calls at random (reproducibly by
    seed), like FakeSlack.fail_rate: 429 with Retry-After, 500 or 503, before anything is stored."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rate = 0.0
        self._rng = random.Random(0)
        self._statuses: tuple[int, ...] = (429, 500, 503)
        self._retry_after = 1.0
        self.injected: Counter[int] = Counter()

    def fail_rate(self, rate: float, seed: int = 0, *, statuses: Iterable[int] = (429, 500, 503),
                  retry_after: float = 1.0) -> None:
        self._rate, self._rng = rate, random.Random(seed)
        self._statuses, self._retry_after = tuple(statuses), retry_after

    def _connector(self, handler):
        guarded = super()._connector(handler)

        async def flaky(request: web.Request) -> web.Response:
            if self._rate and not self._down and self._rng.random() < self._rate:
                status = self._rng.choice(self._statuses)
                self.injected[status] += 1
                response = _error(status, retry_after=self._retry_after if status == 429 else None)
                return await self._record(request, response, None)
            return await guarded(request)

        return flaky


@dataclass
class TeamsClient:
    """Posts activities to /api/messages the way the Bot Framework channel does."""

    http: TestClient
    issuer: FakeOpenIdIssuer
    connector: FakeBotConnector

    def auth(self, **claims: Any) -> str:
        return self.issuer.authorization(claims.pop("audience", APP_ID),
                                         claims.pop("service_url", self.connector.service_url), **claims)

    async def post(self, activity: dict[str, Any] | str, authorization: Any = ..., *,
                   content_type: str = "application/json") -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        authorization = self.auth() if authorization is ... else authorization
        if authorization is not None:
            headers["Authorization"] = authorization
        data = activity if isinstance(activity, (str, bytes)) else json.dumps(activity)
        resp = await self.http.post("/api/messages", data=data, headers=headers)
        raw = await resp.text()
        body = json.loads(raw) if raw and resp.content_type == "application/json" else raw
        return resp.status, body

    def message(self, text: str, *, channel: str, message_id: str | None = None, thread_root: str | None = None,
                user: str = "29:1aBcDeFgUser", aad: str = "6f1a8a9e-0000-4000-8000-00000000ada1",
                name: str = "Ada Engineer") -> dict[str, Any]:
        return teams_channel_message(service_url=self.connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID,
                                     text=text, channel_id=channel, message_id=message_id or new_teams_id(),
                                     thread_root_id=thread_root, user_id=user, user_name=name, aad_object_id=aad)

    def invoke(self, action: dict[str, Any], card_id: str, thread_root: str, *, channel: str,
               user: str = "29:1aBcDeFgUser", aad: str = "6f1a8a9e-0000-4000-8000-00000000ada1",
               name: str = "Ada Engineer", **inputs: str) -> dict[str, Any]:
        activity = teams_card_action_invoke(
            service_url=self.connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID, verb=action["verb"],
            data={**action["data"], **inputs}, card_activity_id=card_id, channel_id=channel,
            thread_root_id=thread_root, user_id=user, user_name=name)
        activity["from"]["aadObjectId"] = aad
        return activity


_teams_ids = iter(range(1_690_000_000_001, 10**15))


def new_teams_id() -> str:
    return str(next(_teams_ids))


def walk(node: Any) -> Iterable[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def execute_action(card: dict[str, Any], verb: str) -> dict[str, Any] | None:
    return next((n for n in walk(card) if n.get("type") == "Action.Execute" and n.get("verb") == verb), None)


def card_of(body: dict[str, Any]) -> dict[str, Any]:
    attachments = body.get("attachments") or [{}]
    return attachments[0].get("content") or {}


# --------------------------------------------------------------------------- the world
@dataclass
class World:
    comps: Components
    http: TestClient
    ai: FakeAnthropic
    model: ScriptedModel
    copilot: RecordingCopilot
    slack: SlackBot | None = None
    fake_slack: FakeSlack | None = None
    teams: TeamsClient | None = None
    connector: FlakyConnector | None = None
    issuer: FakeOpenIdIssuer | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    async def rows(self, query: str, **params: Any) -> list[Any]:
        async with self.comps.db.admin.connect() as conn:
            return list((await conn.execute(text(query), params)).all())

    async def scalar(self, query: str, **params: Any) -> Any:
        async with self.comps.db.admin.connect() as conn:
            return (await conn.execute(text(query), params)).scalar()

    async def counts(self, tables: Iterable[str] = WRITE_TABLES) -> dict[str, int]:
        async with self.comps.db.admin.connect() as conn:
            return {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in tables}

    async def busy(self) -> dict[str, int]:
        """Work still to do now: due or running jobs, undelivered outbox rows."""
        return {
            "jobs": await self.scalar("SELECT count(*) FROM jobs WHERE status = 'running' "
                                      "OR (status = 'pending' AND run_after <= now())"),
            "outbox": await self.scalar("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"),
        }

    async def settle(self, timeout: float = 30.0) -> None:
        """Every due job finished and every outbox row delivered or failed."""
        await eventually(lambda: self._idle(), timeout, "jobs and outbox to drain")

    async def _idle(self) -> bool:
        return not any((await self.busy()).values())


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `check` (a database read) until it is truthy; fail with `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def world(database_url: str, *, slack: bool = True, teams: bool = True, oauth: bool = False,
                slack_options: SlackOptions = FAST_SLACK, teams_retry: RetryPolicy | None = FAST_TEAMS_RETRY,
                **env: Any) -> AsyncIterator[World]:
    stack = contextlib.AsyncExitStack()
    async with stack:
        ai = await stack.enter_async_context(FakeAnthropic(api_key=FAKE_KEY))
        model = ScriptedModel()
        ai.responder = model
        values: dict[str, Any] = dict(ANTHROPIC_BASE_URL=ai.url, ESCALATION_REPING_MINUTES=600)
        fake_slack = issuer = connector = None
        if slack:
            fake_slack = await stack.enter_async_context(FakeSlack())
            fake_slack.add_user(DEFAULT_USER_ID, name="erin", real_name="Erin Engineer")
            fake_slack.add_channel(DEFAULT_CHANNEL_ID, "msp-support")
            values.update(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.api_url)
            if oauth:
                values.update(SLACK_CLIENT_ID=fake_slack.client_id, SLACK_CLIENT_SECRET=fake_slack.client_secret)
            else:
                values.update(SLACK_BOT_TOKEN=fake_slack.token)
        if teams:
            issuer = await stack.enter_async_context(FakeOpenIdIssuer())
            connector = await stack.enter_async_context(FlakyConnector(app_id=APP_ID, app_password=APP_PASSWORD))
            values.update(MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_PASSWORD=APP_PASSWORD,
                          MICROSOFT_APP_TENANT_ID=TENANT_ID, TEAMS_OPENID_METADATA_URL=issuer.metadata_url,
                          TEAMS_TOKEN_ISSUER=issuer.issuer, TEAMS_TOKEN_ENDPOINT=connector.token_url(TENANT_ID))
        values.update(env)
        settings = test_settings(**values)
        comps = await build(settings, database_url)
        comps.extras[OPTIONS_KEY] = slack_options
        recording = RecordingCopilot(comps.copilot)
        comps.copilot = recording
        await clear_slack_tables(comps)
        client = TestClient(TestServer(create_app(settings, components=comps, run_migrations=False),
                                       host="127.0.0.1"))
        await client.start_server()  # on_startup mounts the channels, then starts the workers
        stack.push_async_callback(client.close)  # on_cleanup closes the components
        w = World(comps=comps, http=client, ai=ai, model=model, copilot=recording, fake_slack=fake_slack,
                  connector=connector, issuer=issuer)
        if fake_slack is not None:
            # slack_sdk waits 0.5-1.5 s before its one in-call retry of a 5xx or a dropped
            # connection; shortened like the outbox backoff (a 429 still waits its Retry-After).
            for handler in comps.runtime.senders["slack"].client.retry_handlers:
                handler.interval_calculator = FixedValueRetryIntervalCalculator(0.05)
            w.slack = SlackBot(fake=fake_slack, ai=ai, comps=comps, http=client, copilot=recording,
                               secret=SIGNING_SECRET)
        if connector is not None:
            w.teams = TeamsClient(client, issuer, connector)
        if teams_retry is not None and "teams" in comps.extras:
            comps.extras["teams"].ops._retry = teams_retry
        yield w


def uid() -> str:
    return uuid.uuid4().hex[:8]
