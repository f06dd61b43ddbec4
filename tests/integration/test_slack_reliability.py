"""Slack delivers at least once and rate-limits: retried events must have one effect, a 429 must
still end in exactly one message, and posts to one channel are paced to Slack's ~1/s."""
from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import pytest
from PIL import Image

from adapters.slack.client import build_web_client
from adapters.slack.config import SlackOptions
from adapters.slack.pacing import ChannelPacer
from adapters.slack.sender import SlackSender
from adapters.slack.tokens import StaticTokens
from core.views import TextView
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_signing import app_mention_event, message_event, new_event_id
from tests.integration.slack_fixtures import has_button, slack_bot

FIRST_REPLY = """Let's narrow it down.
[QUESTIONS]
[{"text": "Does it happen for every user?"}]
[/QUESTIONS]"""


@pytest.fixture
async def bot(db, database_url):
    async with slack_bot(database_url) as bot:
        yield bot


async def start_session(bot) -> str:
    bot.ai.reply_text(FIRST_REPLY)
    assert (await bot.command("new Printer queue stuck")).status == 200
    header = (await bot.fake.wait_for(lambda: bot.roots()))[0]
    await bot.fake.wait_for(lambda: any(has_button(m, "answer") for m in bot.thread(header["ts"])))
    return header["ts"]


def lane_cards(bot, thread_ts: str) -> list[dict]:
    return [m for m in bot.thread(thread_ts) if m["text"].startswith("What we know")]


async def test_an_event_retried_by_slack_has_exactly_one_effect(bot) -> None:
    thread_ts = await start_session(bot)
    calls_before, ai_before = len(bot.copilot.calls), len(bot.ai.requests)
    posts_before = len(bot.fake.calls_to("chat.postMessage"))
    bot.ai.reply_text("It is the print server then.")

    event, event_id = message_event(text="It happens for everyone", thread_ts=thread_ts), new_event_id()
    for retry_num in (None, 1, 2):  # the original, then Slack's retries with X-Slack-Retry-Num
        assert (await bot.event(event, event_id=event_id, retry_num=retry_num)).status == 200

    calls = (await bot.copilot.wait_calls(calls_before + 3))[calls_before:]
    assert [reply.duplicate for _, _, reply in calls].count(True) == 2
    await bot.fake.wait_for(lambda: len(lane_cards(bot, thread_ts)) == 2)  # the turn is fully delivered
    assert len(bot.ai.requests) == ai_before + 1
    assert len([m for m in bot.thread(thread_ts) if "It is the print server then." in m["text"]]) == 1
    assert len(bot.fake.calls_to("chat.postMessage")) == posts_before + 2  # "thinking…" (then edited) + lane


async def test_a_429_is_waited_out_and_the_card_is_posted_once(bot) -> None:
    bot.fake.fail_next("chat.postMessage", 429, retry_after=1)
    bot.ai.reply_text(FIRST_REPLY)
    await bot.command("new Printer queue stuck")
    await bot.fake.wait_for(lambda: bot.roots())
    thread_ts = bot.roots()[0]["ts"]
    await bot.fake.wait_for(lambda: lane_cards(bot, thread_ts))
    first_two = bot.fake.calls_to("chat.postMessage")[:2]
    assert [c.status for c in first_two] == [429, 200]
    assert len(bot.roots()) == 1 and "Printer queue stuck" in bot.roots()[0]["text"]


async def test_a_mention_inside_a_session_thread_is_one_turn_not_two(bot) -> None:
    thread_ts = await start_session(bot)
    ai_before, calls_before = len(bot.ai.requests), len(bot.copilot.calls)
    bot.ai.reply_text("Check the driver version.")
    ts = "1690000099.000100"
    text = "what should I check next?"
    # Slack sends both: a `message` (with the mention in its text) and an `app_mention`.
    await bot.event(message_event(text=f"<@U0FPBOT01> {text}", thread_ts=thread_ts, ts=ts))
    await bot.event(app_mention_event(text=text, thread_ts=thread_ts, ts=ts))
    await bot.fake.wait_for(lambda: len(lane_cards(bot, thread_ts)) == 2)
    assert len(bot.ai.requests) == ai_before + 1
    assert [kind for kind, _, _ in bot.copilot.calls[calls_before:]] == ["mention"]
    assert text in json.dumps(bot.ai.requests[-1].body)


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


async def test_an_image_in_a_thread_reply_reaches_the_model(bot) -> None:
    thread_ts = await start_session(bot)
    bot.ai.reply_text("That error code means the driver crashed.")
    screenshot = bot.fake.add_file(png_bytes(), name="error.png")
    await bot.event(message_event(text="here is the error", thread_ts=thread_ts, files=[screenshot]))
    await bot.fake.wait_for(lambda: len(lane_cards(bot, thread_ts)) == 2)
    assert bot.fake.downloads == [{"file_id": screenshot["id"], "path": bot.fake.downloads[0]["path"],
                                   "authorized": True}]
    content = bot.ai.requests[-1].body["messages"][-1]["content"]
    images = [block for block in content if block.get("type") == "image"]
    assert len(images) == 1 and images[0]["source"]["media_type"] == "image/jpeg"


async def test_posts_to_one_channel_are_paced_under_slacks_rate_limit() -> None:
    async with FakeSlack() as fake, aiohttp.ClientSession() as session:
        fake.limit_channel_rate(1.0, burst=1, retry_after=1)  # a 429 for anything faster than 1/s
        client = build_web_client(fake.api_url, session, SlackOptions(rate_limit_retries=0))
        sender = SlackSender(client, StaticTokens(fake.token), ChannelPacer(interval_s=1.0))
        dest = {"workspace_id": fake.team_id, "channel_id": "C0PACED01"}
        refs = await asyncio.gather(*(sender.post(dest, TextView(text=f"message {n}")) for n in range(3)))
        calls = fake.calls_to("chat.postMessage")
        assert [c.status for c in calls] == [200, 200, 200]
        assert [m["text"] for m in fake.messages("C0PACED01")] == ["message 0", "message 1", "message 2"]
        assert len({r["ts"] for r in refs}) == 3
