"""Modal submissions the core refuses keep the modal open with the error on the field and record
nothing (DOMAIN pitfall 17); a corrected submission then goes through."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from tests.integration.slack_fixtures import has_button, slack_bot

FIX_REPLY = """Restart the spooler.
[SUGGEST_FIX]
{"title": "Restart the print spooler", "description": "Run Restart-Service Spooler on PRN-01.", "confidence": 70}
[/SUGGEST_FIX]"""


@pytest.fixture
async def bot(db, database_url):
    async with slack_bot(database_url) as bot:
        yield bot


async def fix_state(bot) -> tuple[str, str | None]:
    async with bot.comps.db.admin.connect() as conn:
        row = (await conn.execute(text("SELECT status, partial_notes FROM session_suggested_fixes"))).one()
    return row[0], row[1]


async def applied_fix_card(bot) -> dict:
    bot.ai.reply_text(FIX_REPLY)
    await bot.command("new Printer queue stuck")
    header = (await bot.fake.wait_for(lambda: bot.roots()))[0]
    fix = await bot.fake.wait_for(lambda: next((m for m in bot.thread(header["ts"]) if has_button(m, "fix_applied")),
                                               None))
    await bot.click(fix, "fix_applied")
    await bot.fake.wait_for(lambda: has_button(bot.fake.message(bot.channel, fix["ts"]), "fix_partial"))
    return bot.fake.message(bot.channel, fix["ts"])


async def test_empty_partial_notes_keep_the_modal_open_and_record_nothing(bot) -> None:
    fix = await applied_fix_card(bot)
    await bot.click(fix, "fix_partial")
    opened = (await bot.fake.wait_for(lambda: bot.fake.views_opened))[0]
    assert opened["blocks"][0]["label"]["text"] == "What was done, and what is left?"
    before_state, before_counts = await fix_state(bot), await bot.counts()

    refused = await bot.submit(opened, "   ")
    body = json.loads(await refused.text())
    assert refused.status == 200
    assert body["response_action"] == "errors"
    assert "notes are required" in body["errors"][opened["blocks"][0]["block_id"]]
    assert await fix_state(bot) == before_state == ("proposed", None)
    assert await bot.counts() == before_counts  # no outbox row, no job, no de-dupe row

    accepted = await bot.submit(opened, "Done on 2 of 3 PCs")
    assert accepted.status == 200 and await accepted.text() == ""
    assert await fix_state(bot) == ("applied_partial", "Done on 2 of 3 PCs")
    await bot.fake.wait_for(lambda: "Done on 2 of 3 PCs" in json.dumps(bot.fake.message(bot.channel, fix["ts"])))


async def test_a_stale_click_is_answered_ephemerally(bot) -> None:
    fix = await applied_fix_card(bot)
    await bot.click(fix, "fix_worked")
    await bot.fake.wait_for(lambda: "It worked" in json.dumps(bot.fake.message(bot.channel, fix["ts"])["blocks"]))
    await bot.click(fix, "fix_worked")  # the old card's button, clicked again
    refusal = await bot.fake.wait_for(lambda: [e for e in bot.fake.ephemerals("U0ENGINEER") if "terminal" in e["text"]])
    assert refusal[0]["text"].startswith(":warning:")


async def test_a_form_from_a_command_opens_as_a_modal_and_field_errors_land_on_their_field(db, database_url) -> None:
    from storage.secrets import generate_key
    from tests.fakes.slack_signing import FORM_CONTENT_TYPE, view_submission_body

    async with slack_bot(database_url, FLOWPILOT_ADMINS="U0ENGINEER", FLOWPILOT_SECRET_KEY=generate_key()) as bot:
        assert (await bot.command("psa connect")).status == 200
        form = (await bot.fake.wait_for(lambda: bot.fake.views_opened))[0]
        assert form["callback_id"] == "fp:form" and form["title"]["text"] == "Connect ConnectWise"
        block_ids = [b["block_id"] for b in form["blocks"] if b["type"] == "input"]
        assert block_ids[:4] == ["f:site_url", "f:company_id", "f:public_key", "f:private_key"]

        values = {bid: {"value": {"type": "plain_text_input", "value": ""}} for bid in block_ids}
        values["f:site_url"]["value"]["value"] = "https://cw.example.com"
        body = view_submission_body(callback_id="fp:form", view_id=form["id"], values=values,
                                    private_metadata=form["private_metadata"])
        refused = json.loads(await (await bot.post_signed(body, FORM_CONTENT_TYPE)).text())
        assert refused == {"response_action": "errors", "errors": {"f:company_id": "Company id is required."}}
