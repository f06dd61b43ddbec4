"""POST /slack/events on the real app: bolt verifies Slack's signature before anything touches the
database, and answers Slack's URL verification."""
from __future__ import annotations

import json
import time

import pytest

from tests.fakes.slack_signing import (
    FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, event_body, message_event, slash_command_body, url_verification_body,
)
from tests.integration.slack_fixtures import slack_bot

BODIES = {
    "slash command": (slash_command_body(text="new Printer queue stuck"), FORM_CONTENT_TYPE),
    "event": (event_body(message_event(text="hello", thread_ts="1690000000.000100")), JSON_CONTENT_TYPE),
}


@pytest.fixture
async def bot(db, database_url):
    async with slack_bot(database_url) as bot:
        yield bot


@pytest.mark.parametrize("kind", BODIES)
async def test_unverifiable_requests_get_401_and_write_nothing(bot, kind: str) -> None:
    body, content_type = BODIES[kind]
    before = await bot.counts()

    forged = await bot.post_signed(body, content_type, secret="not-the-signing-secret")
    stale = await bot.post_signed(body, content_type, timestamp=int(time.time()) - 301)
    unsigned = await bot.post_signed(body, content_type, headers={"Content-Type": content_type})

    assert [forged.status, stale.status, unsigned.status] == [401, 401, 401]
    assert await bot.counts() == before
    assert not bot.fake.calls_to("chat.postMessage") and not bot.fake.calls_to("chat.postEphemeral")


async def test_url_verification_is_answered_only_when_signed(bot) -> None:
    body = url_verification_body("challenge-token-123")
    signed = await bot.post_signed(body, JSON_CONTENT_TYPE)
    assert signed.status == 200
    assert json.loads(await signed.text()) == {"challenge": "challenge-token-123"}
    forged = await bot.post_signed(body, JSON_CONTENT_TYPE, secret="wrong")
    assert forged.status == 401


async def test_a_signed_command_for_help_answers_the_user_ephemerally(bot) -> None:
    resp = await bot.command("help")
    assert resp.status == 200
    ephemeral = await bot.fake.wait_for(lambda: bot.fake.ephemerals("U0ENGINEER"))
    assert "FlowPilot commands" in ephemeral[0]["text"]
    assert "&lt;problem&gt;" in ephemeral[0]["text"]  # escaped, so Slack shows the placeholder
    assert not bot.fake.messages()


async def test_edits_bot_messages_and_top_level_chatter_are_acknowledged_and_ignored(bot) -> None:
    from tests.fakes.slack_signing import DEFAULT_BOT_ID

    edited = {**message_event(text="edited", thread_ts="1690000000.000100"), "subtype": "message_changed"}
    own = {**message_event(text="a card", thread_ts="1690000000.000100"), "bot_id": DEFAULT_BOT_ID,
           "user": "U0FPBOT01"}
    other_bot = {**message_event(text="beep", thread_ts="1690000000.000100"), "bot_id": "B0OTHER01"}
    top_level = message_event(text="lunch?")
    for event in (edited, own, other_bot, top_level):
        assert (await bot.event(event)).status == 200
    # the one real thread reply after them is the only thing that reaches the core
    await bot.event(message_event(text="a reply", thread_ts="1690000000.000100"))
    calls = await bot.copilot.wait_calls(1)
    assert [(kind, reply.ignored) for kind, _, reply in calls] == [("message", True)]
