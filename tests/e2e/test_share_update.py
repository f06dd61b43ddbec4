"""Share update and audience variants (DOMAIN §8), end to end with FakeConnectWise and
FakeAnthropic: an interim internal note on the ticket and a summary in the thread that change
neither the session's status nor its state_version; after an escalation, the saved summary is
reused (ticket notes instantly, client/email tone shifts once each, then cached)."""
from __future__ import annotations

import uuid

from sqlalchemy import text

from core.model import SessionStatus
from tests.e2e.test_resolve_connectwise import (
    ADMIN, NEW_ID, SUMMARY, TICKET, flowpilot_with_cw, last_user_text, load_session, posted_notes, start, thread_of,
    wait_text,
)
from tests.harness import console_inbound

UPDATE = "The spooler was found stopped; it is restarted and printing is being watched."
CLIENT_UPDATE = "Hello, quick update: we found the cause of the printer trouble and are working on it."
EMAIL_DRAFT = "Subject: Printer issue update\n\nHi Pat, we are still on the front-desk printer."


def variant_for(body) -> str:
    user = last_user_text_of(body)
    return CLIENT_UPDATE if "Audience: client_update" in user else EMAIL_DRAFT


def last_user_text_of(body) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


async def steps_of(db, sid: str) -> list[dict]:
    async with db.admin.begin() as conn:
        rows = (await conn.execute(text("SELECT * FROM ai_session_steps WHERE session_id = :s ORDER BY step_order"),
                                   {"s": uuid.UUID(sid)})).all()
    return [dict(r._mapping) for r in rows]


async def load_handoff(h, hid: str):
    account = await h.store.ensure_workspace("console", "console-ws")
    async with h.store.unit(account) as uow:
        return await uow.handoffs.get(uuid.UUID(hid))


async def test_share_update_posts_an_internal_note_and_a_thread_summary_without_changing_state(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        model.replies["status_update"] = UPDATE
        sid = await start(h, f"new Printer down #{TICKET}")
        thread = thread_of(h, sid)
        assert (await h.copilot.command(console_inbound(thread=thread), "note Spooler service was stopped")).ok
        before = await load_session(h, sid)

        reply = await h.copilot.command(console_inbound(thread=thread), "update")
        assert reply.ok and reply.text == "Sharing a progress update."
        shown = await wait_text(h, lambda t: t.startswith("*Progress update*"))
        assert shown == f"*Progress update*\n{UPDATE}\n_Posted to CW #{TICKET} as an internal note._"

        notes = posted_notes(cw)
        assert len(notes) == 1 and notes[0]["text"] == UPDATE
        assert notes[0]["internalAnalysisFlag"] is True
        assert notes[0]["resolutionFlag"] is False and notes[0]["detailDescriptionFlag"] is False
        assert cw.calls_to("PATCH") == [] and cw.ticket(TICKET)["status"]["id"] == NEW_ID
        # the update was written from the session state (the fact is in the model's input)
        calls = model.calls("status_update")
        assert len(calls) == 1 and "Spooler service was stopped" in last_user_text(calls[0])

        after = await load_session(h, sid)
        assert after.status == before.status == SessionStatus.ACTIVE
        assert after.state_version == before.state_version
        steps = [s for s in await steps_of(db, sid) if s["step_type"] == "status_update"]
        assert len(steps) == 1
        assert steps[0]["account_id"] == after.account_id
        assert steps[0]["payload"]["text"] == UPDATE and steps[0]["payload"]["psa_note_id"] == str(notes[0]["id"])

        # a second update is a new message, not an edit of the first one
        model.replies["status_update"] = UPDATE + " Still fine an hour later."
        await h.copilot.action(console_inbound(), "share_update", {"session_id": sid})
        await wait_text(h, lambda t: t.startswith("*Progress update*") and "an hour later" in t)
        assert len([t for t in h.console.texts() if t.startswith("*Progress update*")]) == 2
        assert len(posted_notes(cw)) == 2


async def test_share_update_without_a_ticket_or_a_model_still_shares_in_the_thread(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, "new Outlook keeps asking for a password")
        thread = thread_of(h, sid)
        assert (await h.copilot.command(console_inbound(thread=thread), "note Only happens on VPN")).ok
        h.fake_ai.down()
        reply = await h.copilot.action(console_inbound(), "share_update", {"session_id": sid})
        assert reply.ok, reply.error
        shown = await wait_text(h, lambda t: t.startswith("*Progress update*"))
        assert "- Confirmed: Only happens on VPN" in shown
        assert shown.endswith("_(No ticket linked: not posted.)_")
        assert cw.calls_to("POST") == []
        steps = [s for s in await steps_of(db, sid) if s["step_type"] == "status_update"]
        assert len(steps) == 1 and steps[0]["payload"]["psa_note_id"] is None


async def test_share_update_reports_a_refused_ticket_note_in_the_thread(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        model.replies["status_update"] = UPDATE
        sid = await start(h, f"new Printer down #{TICKET}")
        cw.fail_next(f"POST /service/tickets/{TICKET}/notes", status=403)
        await h.copilot.command(console_inbound(thread=thread_of(h, sid)), "update")
        shown = await wait_text(h, lambda t: t.startswith("*Progress update*"))
        assert UPDATE in shown and f"⚠️ Not posted to CW #{TICKET}" in shown and "HTTP 403" in shown
        assert posted_notes(cw) == []


async def _escalated_with_summary(h, sid: str) -> str:
    route = await h.copilot.command(console_inbound(user=ADMIN, name="Ada Admin", channel="seniors"), "seniors here")
    assert route.ok, route.error
    esc = await h.copilot.command(console_inbound(thread=thread_of(h, sid)), "escalate spooler keeps dying")
    assert esc.ok, esc.error
    hid = esc.extra["handoff_id"]
    await h.console.wait_for(lambda: [v for v in h.console.views("escalation")
                                      if v.handoff_id == hid and v.state == "ready"])
    await wait_text(h, lambda t: t.startswith(f"Package posted to CW #{TICKET}"))
    return hid


async def test_audience_variants_reuse_the_saved_escalation_summary(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        model.replies["audience_variant"] = variant_for
        sid = await start(h, f"new Printer down #{TICKET}")
        hid = await _escalated_with_summary(h, sid)
        value = {"session_id": sid, "handoff_id": hid}
        requests_before = len(h.fake_ai.requests)

        notes = await h.copilot.action(console_inbound(), "audience", {**value, "audience": "ticket_notes"})
        assert notes.ok and notes.text == SUMMARY["summary_prose"]
        assert len(h.fake_ai.requests) == requests_before  # instant, no model call

        first = await h.copilot.action(console_inbound(), "audience", {**value, "audience": "client_update"})
        assert first.ok and first.text.startswith("Drafting it")
        shown = await wait_text(h, lambda t: t.startswith("*Client update*"))
        assert shown == f"*Client update* (copy it; not sent):\n{CLIENT_UPDATE}"
        calls = model.calls("audience_variant")
        assert len(calls) == 1
        assert calls[0].body["model"] == h.comps.settings.audience_variant_model  # the cheap tier
        assert SUMMARY["summary_prose"] in last_user_text(calls[0])  # a tone shift of the saved prose
        again = await h.copilot.action(console_inbound(), "audience", {**value, "audience": "client_update"})
        assert again.text == CLIENT_UPDATE and len(model.calls("audience_variant")) == 1

        await h.copilot.action(console_inbound(), "audience", {**value, "audience": "email_draft"})
        await wait_text(h, lambda t: t.startswith("*Email draft*"))
        assert len(model.calls("audience_variant")) == 2
        cached = await h.copilot.action(console_inbound(), "audience", {**value, "audience": "email_draft"})
        assert cached.text == EMAIL_DRAFT and len(model.calls("audience_variant")) == 2
        handoff = await load_handoff(h, hid)
        assert handoff.audience_variants == {"client_update": CLIENT_UPDATE, "email_draft": EMAIL_DRAFT}
        # variants are for copying: nothing new went to the ticket
        session = await load_session(h, sid)
        assert [n["text"] for n in posted_notes(cw)] == [session.escalation_package_markdown]

        # Share update while escalated: the saved summary goes to the ticket, no new summary is written
        await h.copilot.command(console_inbound(thread=thread_of(h, sid)), "update")
        shown = await wait_text(h, lambda t: t.startswith("*Progress update*"))
        assert SUMMARY["summary_prose"] in shown
        assert model.calls("status_update") == []
        assert posted_notes(cw)[-1]["text"] == SUMMARY["summary_prose"]
        assert posted_notes(cw)[-1]["internalAnalysisFlag"] is True


async def test_a_failed_variant_can_be_asked_for_again(db, database_url):
    async with flowpilot_with_cw(database_url, FLOWPILOT_JOB_MAX_ATTEMPTS=2) as (h, cw, model):
        model.replies["audience_variant"] = variant_for
        sid = await start(h, f"new Printer down #{TICKET}")
        hid = await _escalated_with_summary(h, sid)
        value = {"session_id": sid, "handoff_id": hid, "audience": "client_update"}
        h.fake_ai.down()
        await h.copilot.action(console_inbound(), "audience", value)
        failed = await wait_text(h, lambda t: t.startswith("Couldn't draft the client update"))
        assert "unavailable" in failed
        assert (await load_handoff(h, hid)).audience_variants.get("client_update") is None

        h.fake_ai.up()
        retry = await h.copilot.action(console_inbound(), "audience", value)
        assert retry.ok and retry.text.startswith("Drafting it")
        await wait_text(h, lambda t: t.startswith("*Client update*"))
        assert (await load_handoff(h, hid)).audience_variants["client_update"] == CLIENT_UPDATE


async def test_viewers_cannot_share_updates(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        assert (await h.copilot.command(console_inbound(user=ADMIN, name="Ada Admin"),
                                        "role <@UVIEW> viewer")).ok
        viewer = await h.copilot.action(console_inbound(user="UVIEW", name="Val Viewer"), "share_update",
                                        {"session_id": sid})
        assert viewer.error is not None and viewer.error.category == "forbidden"
        assert cw.calls_to("POST") == []
