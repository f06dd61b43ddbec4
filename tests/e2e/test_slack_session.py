"""A troubleshooting session driven entirely through Slack: signed requests into the real app
(bolt + workers + Postgres), cards out to FakeSlack, the model played by FakeAnthropic."""
from __future__ import annotations

import asyncio
import json

import pytest

from tests.fakes.slack_signing import DEFAULT_USER_ID
from tests.integration.slack_fixtures import has_button, slack_bot

FIRST_REPLY = """Let's narrow it down.
[QUESTIONS]
[{"text": "Does it happen for every user?", "context": "scope"}]
[/QUESTIONS]
[ACTIONS]
[{"label": "Check the spooler", "command": "Get-Service Spooler", "description": "Shows if it runs"}]
[/ACTIONS]"""

SECOND_REPLY = """Then it is the server. Restart the spooler.
[SUGGEST_FIX]
{"title": "Restart the print spooler", "description": "Run Restart-Service Spooler on PRN-01.", "confidence": 80}
[/SUGGEST_FIX]"""


class GatedModel:
    """Holds every model answer until the test opens the gate; answers from a script."""

    def __init__(self, *replies: str) -> None:
        self.gate = asyncio.Event()
        self.replies = list(replies)

    async def __call__(self, body: dict) -> str:
        await self.gate.wait()
        return self.replies.pop(0)


def user_texts(request_body: dict) -> str:
    content = request_body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(block.get("text", "") for block in content if block.get("type") == "text")


@pytest.fixture
async def bot(db, database_url):
    async with slack_bot(database_url) as bot:
        yield bot


async def test_a_session_from_slash_command_to_fix_outcome(bot) -> None:
    fake, ai = bot.fake, bot.ai
    model = GatedModel(FIRST_REPLY, SECOND_REPLY)
    ai.responder = model

    # 1. The command is acknowledged before the model has answered anything.
    resp = await bot.command("new Printer queue stuck #48291")
    assert resp.status == 200
    assert all(r.status == 0 for r in ai.requests), "the model answered before Slack got its ack"

    # 2. The header card is a top-level post; "thinking…" waits in its thread while the model works.
    header = (await fake.wait_for(lambda: bot.roots()))[0]
    assert "Printer queue stuck · CW #48291" in header["text"]
    assert header["blocks"][0]["type"] == "header"
    working = (await fake.wait_for(lambda: bot.thread(header["ts"])))[0]
    assert "thinking" in working["text"]
    assert all(r.status == 0 for r in ai.requests)
    model.gate.set()

    # 3. The reply replaces "thinking…" (same message) and the lane card follows in the thread.
    await fake.wait_for(lambda: "Let's narrow it down" in fake.message(bot.channel, working["ts"])["text"])
    lane = await fake.wait_for(lambda: next((m for m in bot.thread(header["ts"]) if has_button(m, "answer")), None))
    assert "Does it happen for every user?" in json.dumps(lane["blocks"])
    assert "Get-Service Spooler" in json.dumps(lane["blocks"])
    assert [m["ts"] for m in bot.thread(header["ts"])] == [working["ts"], lane["ts"]]
    ephemeral = fake.ephemerals(DEFAULT_USER_ID)
    assert ephemeral and "Started a FlowPilot session" in ephemeral[0]["text"]

    # 4. Answer → a modal opens at once; submitting it runs the next turn with the answer in it.
    assert (await bot.click(lane, "answer")).status == 200
    opened = (await fake.wait_for(lambda: fake.views_opened))[0]
    assert opened["title"]["text"] == "Answer"
    submitted = await bot.submit(opened, "Yes, every user on floor 2")
    assert submitted.status == 200 and (await submitted.text()) == ""  # empty body closes the modal
    await fake.wait_for(lambda: len(ai.requests) >= 2 and ai.requests[1].status == 200)
    assert "Yes, every user on floor 2" in user_texts(ai.requests[1].body)

    # 5. The fix card arrives; outcome clicks edit that same message (chat.update on its ts).
    fix = await fake.wait_for(lambda: next((m for m in bot.thread(header["ts"]) if has_button(m, "fix_applied")),
                                           None))
    assert "Restart the print spooler" in fix["text"]
    await bot.click(fix, "fix_applied")
    applied = await fake.wait_for(lambda: [u for u in fake.updates(fix["ts"]) if "Applied" in json.dumps(u["blocks"])])
    assert applied[-1]["ts"] == fix["ts"]
    await bot.click(fake.message(bot.channel, fix["ts"]), "fix_worked")
    await fake.wait_for(lambda: "It worked" in json.dumps(fake.message(bot.channel, fix["ts"])["blocks"]))
    fix_posts = [m for m in bot.thread(header["ts"]) if "Restart the print spooler" in m["text"]]
    assert len(fix_posts) == 1, "outcomes must edit the fix card, not post new ones"
    notices = await fake.wait_for(lambda: [e["text"] for e in fake.ephemerals(DEFAULT_USER_ID)
                                           if "Recorded" in e["text"]])
    assert "Recorded: applied success." in notices
    assert any("Marked as applied" in e["text"] for e in fake.ephemerals(DEFAULT_USER_ID))


async def test_a_mention_starts_a_session_in_its_own_thread_and_others_are_told_it_is_not_theirs(bot) -> None:
    fake, ai = bot.fake, bot.ai
    ai.reply_text(FIRST_REPLY)
    fake.add_user("U0OTHER01", name="olga", real_name="Olga Other")

    mention_ts = "1690000001.000100"
    assert (await bot.mention("the VPN drops every hour", ts=mention_ts)).status == 200
    header = (await fake.wait_for(lambda: bot.thread(mention_ts)))[0]
    assert "the VPN drops every hour" in header["text"] and header["thread_ts"] == mention_ts
    await fake.wait_for(lambda: any(has_button(m, "answer") for m in bot.thread(mention_ts)))

    await bot.reply_in_thread(mention_ts, "I think it is the firewall", user="U0OTHER01")
    refusal = await fake.wait_for(lambda: fake.ephemerals("U0OTHER01"))
    assert refusal[0]["thread_ts"] == mention_ts
    assert len(ai.requests) == 1, "a non-owner's reply must not start a turn"
