"""SlackSender against FakeSlack over real HTTP: references, threads, DMs, edits, and every kind
of failure turned into the outbox's retry decision (DeliveryFailed)."""
from __future__ import annotations

import aiohttp
import pytest

from adapters.slack.client import build_web_client
from adapters.slack.config import SlackOptions
from adapters.slack.pacing import ChannelPacer
from adapters.slack.sender import SlackSender
from adapters.slack.tokens import NotInstalled, StaticTokens
from core.errors import DeliveryFailed
from core.views import TextView
from tests.fakes.slack import FakeSlack

CHANNEL = "C0SENDER1"
NO_RETRIES = SlackOptions(post_interval_s=0.0, rate_limit_retries=0)


@pytest.fixture
async def fake():
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as session:
        yield session


def make_sender(fake: FakeSlack, session, options: SlackOptions = NO_RETRIES, token: str | None = None) -> SlackSender:
    client = build_web_client(fake.api_url, session, options)
    return SlackSender(client, StaticTokens(token or fake.token), ChannelPacer(options.post_interval_s))


def dest(fake: FakeSlack, **kw) -> dict:
    return {"platform": "slack", "workspace_id": fake.team_id, "channel_id": CHANNEL, **kw}


async def test_post_returns_a_reference_whose_thread_id_starts_or_continues_a_thread(fake, session) -> None:
    sender = make_sender(fake, session)
    root = await sender.post(dest(fake), TextView(text="root"))
    reply = await sender.post(dest(fake, thread_id=root["ts"]), TextView(text="in thread"))
    assert root == {"channel_id": CHANNEL, "ts": root["ts"], "thread_id": root["ts"], "team_id": fake.team_id}
    assert reply["thread_id"] == root["ts"] and reply["ts"] != root["ts"]
    assert [m["text"] for m in fake.thread(CHANNEL, root["ts"])] == ["root", "in thread"]


async def test_a_user_destination_is_a_direct_message(fake, session) -> None:
    ref = await make_sender(fake, session).post({"workspace_id": fake.team_id, "user_id": "U0SENIOR1"},
                                                 TextView(text="An escalation is waiting"))
    assert fake.calls_to("conversations.open")[0].params["users"] == "U0SENIOR1"
    assert ref["channel_id"].startswith("D") and fake.messages(ref["channel_id"])[0]["text"] == "An escalation is waiting"


async def test_update_edits_in_place_and_reposts_a_message_that_is_gone(fake, session) -> None:
    sender = make_sender(fake, session)
    root = await sender.post(dest(fake), TextView(text="root"))
    card = await sender.post(dest(fake, thread_id=root["ts"]), TextView(text="v1"))
    assert await sender.update(card, TextView(text="v2")) == card
    assert fake.message(CHANNEL, card["ts"])["text"] == "v2"

    await sender.client.chat_delete(token=fake.token, channel=CHANNEL, ts=card["ts"])
    again = await sender.update(card, TextView(text="v3"))
    assert again["ts"] != card["ts"] and again["thread_id"] == root["ts"]
    assert fake.message(CHANNEL, again["ts"])["text"] == "v3"


@pytest.mark.parametrize("error, hint", [("channel_not_found", "invited"), ("not_in_channel", "/invite @FlowPilot"),
                                         ("is_archived", "archived"), ("msg_too_long", "too long")])
async def test_channel_problems_are_permanent_with_a_clear_message(fake, session, error, hint) -> None:
    fake.fail_next("chat.postMessage", 200, error=error)
    with pytest.raises(DeliveryFailed) as failed:
        await make_sender(fake, session).post(dest(fake), TextView(text="x"))
    assert failed.value.permanent and error in str(failed.value) and hint in str(failed.value)


async def test_a_bad_token_or_missing_install_is_permanent(fake, session) -> None:
    with pytest.raises(DeliveryFailed) as bad:
        await make_sender(fake, session, token="xoxb-not-a-real-token").post(dest(fake), TextView(text="x"))
    assert bad.value.permanent and "invalid_auth" in str(bad.value)

    class Nowhere:
        async def bot_token(self, team_id):
            raise NotInstalled(f"FlowPilot is not installed in Slack workspace {team_id}")

    sender = SlackSender(build_web_client(fake.api_url, session, NO_RETRIES), Nowhere())
    with pytest.raises(DeliveryFailed) as missing:
        await sender.post(dest(fake), TextView(text="x"))
    assert missing.value.permanent and "not installed" in str(missing.value)


async def test_rate_limits_and_outages_are_retryable(fake, session) -> None:
    sender = make_sender(fake, session)
    fake.fail_next("chat.postMessage", 429, retry_after=7)
    with pytest.raises(DeliveryFailed) as limited:
        await sender.post(dest(fake), TextView(text="x"))
    assert not limited.value.permanent and limited.value.retry_after == 7.0 and limited.value.status == 429

    await fake.down("503")
    with pytest.raises(DeliveryFailed) as outage:
        await sender.post(dest(fake), TextView(text="x"))
    assert not outage.value.permanent and outage.value.status == 503

    await fake.down("refuse")
    with pytest.raises(DeliveryFailed) as refused:
        await sender.post(dest(fake), TextView(text="x"))
    assert not refused.value.permanent and "unreachable" in str(refused.value)
    await fake.up()
    assert (await sender.post(dest(fake), TextView(text="back"))).get("ts")


async def test_a_long_retry_after_is_left_to_the_outbox_a_short_one_is_waited_out(fake, session) -> None:
    sender = make_sender(fake, session, SlackOptions(post_interval_s=0, rate_limit_retries=2,
                                                     max_inline_retry_after_s=5))
    fake.fail_next("chat.postMessage", 429, retry_after=30)
    with pytest.raises(DeliveryFailed) as long_wait:
        await sender.post(dest(fake), TextView(text="x"))
    assert long_wait.value.retry_after == 30.0 and len(fake.calls_to("chat.postMessage")) == 1

    fake.fail_next("chat.postMessage", 429, retry_after=1)
    await sender.post(dest(fake), TextView(text="once"))
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["once"]


async def test_blocks_slack_rejects_are_sent_again_as_text(fake, session) -> None:
    fake.fail_next("chat.postMessage", 200, error="msg_blocks_too_long")
    ref = await make_sender(fake, session).post(dest(fake), TextView(text="## Long\n**answer**"))
    message = fake.message(CHANNEL, ref["ts"])
    assert "blocks" not in message and message["text"] == "*Long*\n*answer*"
