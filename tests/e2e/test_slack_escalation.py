"""Escalation through Slack: the reason modal, the core's follow-up form replacing it (the fix
intercept), the escalation card in the seniors' channel, and the pickup editing that card."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.fakes.slack_signing import FORM_CONTENT_TYPE, view_submission_body
from tests.integration.slack_fixtures import has_button, slack_bot

ADMIN = "U0SENIOR1"
SECOND = "U0SENIOR2"
SENIORS = "C0SENIORS"
FIX_REPLY = """Restart the spooler.
[SUGGEST_FIX]
{"title": "Restart the print spooler", "description": "Run Restart-Service Spooler on PRN-01.", "confidence": 70}
[/SUGGEST_FIX]"""


@pytest.fixture
async def bot(db, database_url):
    async with slack_bot(database_url, FLOWPILOT_ADMINS=f"{ADMIN},{SECOND}") as bot:
        bot.fake.add_user(ADMIN, name="sam", real_name="Sam Senior")
        bot.fake.add_user(SECOND, name="sue", real_name="Sue Senior")
        bot.fake.add_channel(SENIORS, "escalations")
        yield bot


async def session_with_header(bot, reply: str = "Let's look.") -> dict:
    bot.ai.reply_text(reply)
    await bot.command("new Printer queue stuck")
    return (await bot.fake.wait_for(lambda: bot.roots()))[0]


async def open_modal(bot, message: dict, action: str, count: int) -> dict:
    await bot.click(message, action)
    return (await bot.fake.wait_for(lambda: len(bot.fake.views_opened) >= count and bot.fake.views_opened))[count - 1]


async def test_escalate_with_an_open_fix_asks_for_its_outcome_in_the_same_modal(bot) -> None:
    header = await session_with_header(bot, FIX_REPLY)
    fix = await bot.fake.wait_for(lambda: next((m for m in bot.thread(header["ts"]) if has_button(m, "fix_applied")),
                                               None))
    await bot.click(fix, "fix_applied")
    await bot.fake.wait_for(lambda: has_button(bot.fake.message(bot.channel, fix["ts"]), "fix_worked"))

    reason_modal = await open_modal(bot, bot.fake.message(bot.channel, header["ts"]), "escalate", 1)
    follow = json.loads(await (await bot.submit(reason_modal, "Out of ideas")).text())
    assert follow["response_action"] == "update" and follow["view"]["callback_id"] == "fp:form"
    outcome_block = follow["view"]["blocks"][1]
    assert outcome_block["element"]["type"] == "radio_buttons"

    values = {"f:outcome": {"value": {"type": "radio_buttons", "selected_option": {"value": "failed"}}},
              "f:notes": {"value": {"type": "plain_text_input", "value": "still jammed"}}}
    body = view_submission_body(callback_id="fp:form", view_id=reason_modal["id"], values=values,
                                private_metadata=follow["view"]["private_metadata"])
    done = await bot.post_signed(body, FORM_CONTENT_TYPE)
    assert done.status == 200 and await done.text() == ""
    notice = await bot.fake.wait_for(lambda: [e for e in bot.fake.ephemerals("U0ENGINEER") if "escalated" in e["text"]])
    assert notice[0]["text"].startswith("Fix outcome recorded and escalated.")
    await bot.fake.wait_for(lambda: "didn't work" in json.dumps(bot.fake.message(bot.channel, fix["ts"])["blocks"]))
    async with bot.comps.db.admin.connect() as conn:
        assert (await conn.execute(text("SELECT status FROM session_suggested_fixes"))).scalar_one() == "applied_failed"
        assert (await conn.execute(text("SELECT count(*) FROM session_handoffs"))).scalar_one() == 1


async def test_the_escalation_card_reaches_the_seniors_channel_and_a_pickup_claims_it(bot) -> None:
    resp = await bot.command("seniors here", user_id=ADMIN, channel_id=SENIORS, channel_name="escalations")
    assert resp.status == 200
    await bot.fake.wait_for(lambda: bot.fake.ephemerals(ADMIN))

    header = await session_with_header(bot)
    await bot.fake.wait_for(lambda: len(bot.thread(header["ts"])) >= 1)
    reason_modal = await open_modal(bot, header, "escalate", 1)
    closed = await bot.submit(reason_modal, "Customer is waiting")
    assert closed.status == 200 and await closed.text() == ""

    card = (await bot.fake.wait_for(lambda: [m for m in bot.fake.messages(SENIORS) if has_button(m, "claim")]))[0]
    assert "Printer queue stuck" in card["text"]
    await bot.click(card, "claim", user_id=ADMIN)
    claimed = await bot.fake.wait_for(
        lambda: [u for u in bot.fake.updates(card["ts"], SENIORS) if "Claimed by" in json.dumps(u["blocks"])])
    assert not has_button({"blocks": claimed[-1]["blocks"]}, "claim")
    context = await bot.fake.wait_for(
        lambda: [m for m in bot.thread(header["ts"]) if "Handoff context" in json.dumps(m.get("blocks"))])
    assert f"<@{ADMIN}>" in json.dumps(context[0]["blocks"])

    # A second senior clicks the card as they still see it: told who has it, and the card is corrected.
    await bot.fake.wait_for(lambda: "Analyzing" not in json.dumps(bot.fake.message(SENIORS, card["ts"])["blocks"]))
    edits = len(bot.fake.updates(card["ts"], SENIORS))
    await bot.click(card, "claim", user_id=SECOND)
    told = await bot.fake.wait_for(lambda: bot.fake.ephemerals(SECOND))
    assert told[0]["text"].startswith(":warning:") and "sam" in told[0]["text"]
    await bot.fake.wait_for(lambda: len(bot.fake.updates(card["ts"], SENIORS)) > edits)
    assert "Claimed by sam" in json.dumps(bot.fake.updates(card["ts"], SENIORS)[-1]["blocks"])
