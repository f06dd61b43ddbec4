"""FlowPilot with Slack mounted, for tests: the real aiohttp app from bot.app.create_app (bolt
AsyncApp inside, real workers, real Postgres), FakeSlack as the Web API and FakeAnthropic as the
model. Requests are signed exactly as Slack signs them (tests/fakes/slack_signing.py)."""
from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from adapters.slack.config import SlackOptions
from adapters.slack.mount import OPTIONS_KEY
from bot.app import create_app
from bot.wiring import Components, build
from core.commands import Reply
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_signing import (
    DEFAULT_CHANNEL_ID, DEFAULT_USER_ID, FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, app_mention_event, block_action_body,
    event_body, message_event, new_trigger_id, plain_text_values, signed_headers, slash_command_body,
    view_submission_body,
)
from tests.harness import FAKE_KEY, test_settings

SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"
SLACK_TABLES = ("slack_installations", "slack_bots", "slack_oauth_states")
FAST = SlackOptions(post_interval_s=0.05)
COUNTED_TABLES = ("accounts", "people", "inbound_events", "ai_sessions", "jobs", "outbox")


class RecordingCopilot:
    """Wraps the real Copilot and records each call and its Reply, so a test can wait for the
    listeners that run after Slack's ack (bolt runs them in the background) to finish."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[tuple[str, Any, Reply]] = []
        self._changed = asyncio.Condition()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def _record(self, kind: str, inbound: Any, coro: Any) -> Reply:
        reply = await coro
        async with self._changed:
            self.calls.append((kind, inbound, reply))
            self._changed.notify_all()
        return reply

    async def message(self, inbound, text, images=None):
        return await self._record("message", inbound, self._inner.message(inbound, text, images))

    async def mention(self, inbound, text, images=None):
        return await self._record("mention", inbound, self._inner.mention(inbound, text, images))

    async def command(self, inbound, text):
        return await self._record("command", inbound, self._inner.command(inbound, text))

    async def action(self, inbound, action, value, text=None, fields=None):
        return await self._record("action", inbound, self._inner.action(inbound, action, value, text, fields))

    async def wait_calls(self, count: int, timeout: float = 10.0) -> list[tuple[str, Any, Reply]]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.calls) >= count), timeout)
            return list(self.calls)


@dataclass
class SlackBot:
    fake: FakeSlack
    ai: FakeAnthropic
    comps: Components
    http: TestClient
    copilot: RecordingCopilot
    secret: str = SIGNING_SECRET
    channel: str = DEFAULT_CHANNEL_ID
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ signed requests
    async def post_signed(self, body: str, content_type: str, *, secret: str | None = None,
                          timestamp: int | None = None, retry_num: int | None = None,
                          headers: dict[str, str] | None = None) -> ClientResponse:
        signed = signed_headers(body, secret or self.secret, content_type=content_type, timestamp=timestamp,
                                retry_num=retry_num)
        return await self.http.post("/slack/events", data=body.encode(), headers=headers if headers is not None
                                    else signed)

    async def command(self, text: str, **kw: Any) -> ClientResponse:
        kw.setdefault("response_url", self.fake.new_response_url(channel=kw.get("channel_id", self.channel),
                                                                 user=kw.get("user_id", DEFAULT_USER_ID)))
        return await self.post_signed(slash_command_body(text=text, **kw), FORM_CONTENT_TYPE)

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None,
                    **kw: Any) -> ClientResponse:
        return await self.post_signed(event_body(event, event_id=event_id, **kw), JSON_CONTENT_TYPE,
                                      retry_num=retry_num)

    async def reply_in_thread(self, thread_ts: str, text: str, **kw: Any) -> ClientResponse:
        return await self.event(message_event(text=text, thread_ts=thread_ts, channel=self.channel, **kw))

    async def mention(self, text: str, **kw: Any) -> ClientResponse:
        return await self.event(app_mention_event(text=text, channel=self.channel, **kw))

    async def click(self, message: dict[str, Any], action: str, *, user_id: str = DEFAULT_USER_ID,
                    trigger_id: str | None = None) -> ClientResponse:
        element = button(message, action)
        body = block_action_body(action_id=element["action_id"], value=element["value"],
                                 button_text=element["text"]["text"], message=message, channel_id=message["channel"],
                                 user_id=user_id, trigger_id=trigger_id or new_trigger_id())
        return await self.post_signed(body, FORM_CONTENT_TYPE)

    async def submit(self, opened_view: dict[str, Any], text_value: str, *, user_id: str = DEFAULT_USER_ID
                     ) -> ClientResponse:
        block_id = opened_view["blocks"][0]["block_id"]
        body = view_submission_body(callback_id=opened_view["callback_id"], view_id=opened_view["id"],
                                    private_metadata=opened_view["private_metadata"], user_id=user_id,
                                    values=plain_text_values({block_id: {"value": text_value}}))
        return await self.post_signed(body, FORM_CONTENT_TYPE)

    # ------------------------------------------------------------------ reading FakeSlack
    def roots(self) -> list[dict[str, Any]]:
        return [m for m in self.fake.messages(self.channel) if m.get("thread_ts") in (None, m["ts"])]

    def thread(self, ts: str) -> list[dict[str, Any]]:
        return [m for m in self.fake.thread(self.channel, ts) if m["ts"] != ts]

    async def counts(self) -> dict[str, int]:
        async with self.comps.db.admin.connect() as conn:
            return {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one() for t in COUNTED_TABLES}


def button(message: dict[str, Any], action: str) -> dict[str, Any]:
    for block in message.get("blocks") or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if json.loads(element["value"])["a"] == action:
                return element
    raise AssertionError(f"no {action} button in message {message.get('ts')}: {message.get('text')!r}")


def has_button(message: dict[str, Any], action: str) -> bool:
    try:
        button(message, action)
        return True
    except AssertionError:
        return False


async def clear_slack_tables(comps: Components) -> None:
    async with comps.db.admin.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(SLACK_TABLES)} RESTART IDENTITY"))


@contextlib.asynccontextmanager
async def slack_bot(database_url: str, *, options: SlackOptions = FAST, oauth: bool = False, **overrides: Any):
    fake = await FakeSlack().start()
    fake.add_user(DEFAULT_USER_ID, name="erin", real_name="Erin Engineer", email="erin@example.com")
    fake.add_channel(DEFAULT_CHANNEL_ID, "msp-support")
    ai = await FakeAnthropic(api_key=FAKE_KEY).start()
    values: dict[str, Any] = dict(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake.api_url,
                                  ANTHROPIC_BASE_URL=ai.url)
    if oauth:
        values.update(SLACK_CLIENT_ID=fake.client_id, SLACK_CLIENT_SECRET=fake.client_secret)
    else:
        values.update(SLACK_BOT_TOKEN=fake.token)
    values.update(overrides)
    settings = test_settings(**values)
    comps = await build(settings, database_url)
    comps.extras[OPTIONS_KEY] = options
    recording = RecordingCopilot(comps.copilot)
    comps.copilot = recording
    await clear_slack_tables(comps)
    client = TestClient(TestServer(create_app(settings, components=comps, run_migrations=False)))
    await client.start_server()  # on_startup mounts Slack, then starts the workers
    try:
        yield SlackBot(fake=fake, ai=ai, comps=comps, http=client, copilot=recording)
    finally:
        await client.close()  # on_cleanup closes the components (workers, sessions, pools)
        await ai.stop()
        await fake.stop()
