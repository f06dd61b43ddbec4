"""Issue 7, Resolve and ConnectWise, end to end: real workers, the real anthropic SDK against
FakeAnthropic, the real ConnectWise client against FakeConnectWise, real Postgres, and the
console channel. Every assertion is about what an engineer sees in the thread, what lands on
the ticket, or what the session row says afterwards."""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from core.model import FixStatus, SessionStatus
from core.prompts.artifacts import (
    AUDIENCE_VARIANT_PROMPT, ESCALATION_PACKAGE_PROMPT, ESCALATION_SUMMARY_PROMPT, FACT_SYNTHESIS_PROMPT,
    RESOLUTION_NOTE_PROMPT, STATUS_UPDATE_PROMPT,
)
from core.prompts.chat import CHAT_SYSTEM_PROMPT
from storage.secrets import generate_key
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.connectwise import FakeConnectWise
from tests.harness import console_inbound, running
from tests.harness import test_settings as make_settings

TICKET = 48291
NEW_ID, RESOLVED_ID, ESCALATED_ID = 1, 17, 23
ADMIN = "U-admin"
API_MEMBER_ID = 178  # the fake's id for notes posted through the API (seeded notes use 42)

PROMPTS = {
    "resolution_note": RESOLUTION_NOTE_PROMPT, "escalation_package": ESCALATION_PACKAGE_PROMPT,
    "escalation_summary": ESCALATION_SUMMARY_PROMPT, "status_update": STATUS_UPDATE_PROMPT,
    "audience_variant": AUDIENCE_VARIANT_PROMPT, "fact_synthesis": FACT_SYNTHESIS_PROMPT,
    "chat": CHAT_SYSTEM_PROMPT,
}
CHAT_REPLY = "Let's check the print spooler first."
NOTE_V1 = ("## Problem\nThe front-desk printer was offline.\n\n## What we confirmed\n- The spooler was stuck.\n\n"
           "## Root cause\nA corrupt print job.\n\n## Resolution\nCleared the queue; printing works.")
SUMMARY = {"summary_prose": "Front-desk printer offline; spooler restarts do not hold.",
           "what_we_know": ["Spooler stuck"], "likely_cause": "Corrupt driver", "suggested_steps": ["Reinstall driver"],
           "confidence": "medium"}
PACKAGE = ("## Problem\nThe printer went offline.\n\n## What we've confirmed\n- Spooler stuck.\n\n"
           "## What we've tried\n- Restarted the spooler.\n\n## Current hypothesis\nDriver.\n\n"
           "## Suggested next steps\n- Reinstall the driver.")


def task_of(body: Any) -> str:
    """Which generator made a request, told apart by its (static, cached) system prompt."""
    system = body.get("system", "") if isinstance(body, dict) else ""
    text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system)
    for task, prompt in PROMPTS.items():
        if prompt[:120] in text:
            return task
    return "unknown"


class Model:
    """Answers FakeAnthropic requests by task (jobs run concurrently, so a FIFO script would race)
    and counts the calls each task made."""

    def __init__(self, fake: FakeAnthropic) -> None:
        self.fake = fake
        self.replies: dict[str, Any] = {"chat": CHAT_REPLY, "resolution_note": NOTE_V1,
                                        "escalation_summary": SUMMARY, "escalation_package": PACKAGE}
        fake.responder = self._respond

    def _respond(self, body: dict[str, Any]) -> Any:
        reply = self.replies.get(task_of(body), "Fake reply.")
        return reply(body) if callable(reply) else reply

    def calls(self, task: str) -> list[Any]:
        return [r for r in self.fake.requests if task_of(r.body) == task]


def cw_settings(cw: FakeConnectWise, **overrides: Any):
    values: dict[str, Any] = dict(
        FLOWPILOT_SECRET_KEY=generate_key(), CW_CLIENT_ID=cw.client_id, CW_SITE_URL=cw.url,
        CW_COMPANY_ID=cw.company_id, CW_PUBLIC_KEY=cw.public_key, CW_PRIVATE_KEY=cw.private_key,
        CW_RESOLVED_STATUS_ID=RESOLVED_ID, CW_ESCALATED_STATUS_ID=ESCALATED_ID, FLOWPILOT_ADMINS=ADMIN)
    values.update(overrides)
    return make_settings(**values)


def seed(cw: FakeConnectWise) -> None:
    cw.add_status(RESOLVED_ID, "Resolved")
    cw.add_status(ESCALATED_ID, "Escalated")
    cw.add_ticket(TICKET, "Front desk printer offline", status=(NEW_ID, "New"), company="Contoso Ltd",
                  contact="Pat Reception", description="The HP printer at reception shows offline since 9am.")
    cw.add_note(TICKET, "Customer power-cycled the printer; still offline.", member="Jane Tech")
    cw.add_configuration(TICKET, "PRN-FRONT-01", name="Reception HP LaserJet", type_name="Printer")


@contextlib.asynccontextmanager
async def flowpilot_with_cw(database_url: str, **overrides: Any):
    async with FakeConnectWise() as cw:
        seed(cw)
        async with running(database_url, settings=cw_settings(cw, **overrides)) as h:
            yield h, cw, Model(h.fake_ai)


# ----------------------------------------------------------------------------- helpers
async def load_session(h, sid: str):
    account = await h.store.ensure_workspace("console", "console-ws")
    async with h.store.unit(account) as uow:
        return await uow.sessions.get(uuid.UUID(sid))


async def load_fix(h, sid: str):
    account = await h.store.ensure_workspace("console", "console-ws")
    async with h.store.unit(account) as uow:
        return await uow.fixes.active(uuid.UUID(sid))


async def start(h, text: str) -> str:
    """`new …` and wait until the first AI turn has answered (its lane card is out)."""
    reply = await h.copilot.command(console_inbound(), text)
    assert reply.ok, reply.error
    sid = reply.session_id
    await h.console.wait_for(lambda: [v for v in h.console.views("lane") if v.session_id == sid])
    return sid


def thread_of(h, sid: str) -> str:
    return next(m.id for m in h.console.messages.values()
                if getattr(m.view, "type", None) == "header" and m.view.session_id == sid)


def preview_message(h, sid: str):
    return next((m for m in h.console.messages.values()
                 if getattr(m.view, "type", None) == "preview" and m.view.session_id == sid), None)


async def resolve_preview(h, sid: str, actor=None):
    """Press Resolve and wait for the (new or re-shown) preview card."""
    before = preview_message(h, sid)
    seen = (before.id, before.edits) if before else None
    reply = await h.copilot.action(actor or console_inbound(), "resolve", {"session_id": sid})
    assert reply.ok, reply.error

    def fresh():
        m = preview_message(h, sid)
        if m is None or (seen is not None and (m.id, m.edits) == seen):
            return None
        return m.view

    return reply, await h.console.wait_for(fresh)


def confirm_value(preview) -> dict[str, str]:
    button = next(b for b in preview.buttons if b.action == "preview_confirm")
    return dict(button.value)


async def confirm(h, preview, actor=None):
    reply = await h.copilot.action(actor or console_inbound(), "preview_confirm", confirm_value(preview))
    assert reply.ok, reply.error
    return reply


async def wait_text(h, predicate: Callable[[str], bool]) -> str:
    found = await h.console.wait_for(lambda: [t for t in h.console.texts() if predicate(t)])
    return found[-1]


def posted_notes(cw: FakeConnectWise) -> list[dict[str, Any]]:
    return [n for n in cw.notes(TICKET) if n.get("member", {}).get("id") == API_MEMBER_ID]


def last_user_text(request) -> str:
    content = request.body["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


# ----------------------------------------------------------------------------- 1 + 2
async def test_ticket_is_linked_context_reaches_the_model_and_resolve_posts_one_verified_note(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")

        session = await load_session(h, sid)
        assert session.psa_ticket_id == str(TICKET) and session.psa_connection_id is not None
        assert h.console.texts()[0].startswith(f"== Printer down · CW #{TICKET} · active")
        # the ticket's summary, company, description, notes and configuration went into the turn
        user_text = last_user_text(model.calls("chat")[0])
        for expected in ("Front desk printer offline", "Contoso Ltd", "shows offline since 9am",
                         "Customer power-cycled the printer; still offline.", "Reception HP LaserJet"):
            assert expected in user_text
        # once the ticket was read, the header names the client
        header = await h.console.wait_for(
            lambda: [v for v in h.console.views("header") if v.session_id == sid and v.client == "Contoso Ltd"])
        assert header[-1].ticket_ref == f"CW #{TICKET}"
        session = await load_session(h, sid)
        assert session.intake_content["ticket_client"] == "Contoso Ltd"

        reply, preview = await resolve_preview(h, sid)
        assert "Drafting" in reply.text
        assert preview.markdown == NOTE_V1 and preview.target_ticket_ref == f"CW #{TICKET}"
        assert preview.fallback_label is None
        await confirm(h, preview)
        done = await wait_text(h, lambda t: t.startswith(f"Posted to CW #{TICKET}"))
        assert done == f"Posted to CW #{TICKET} · status verified: Resolved"

        notes = posted_notes(cw)
        assert len(notes) == 1
        assert notes[0]["resolutionFlag"] is True and notes[0]["internalAnalysisFlag"] is False
        assert notes[0]["text"] == NOTE_V1
        assert cw.ticket(TICKET)["status"] == {"id": RESOLVED_ID, "name": "Resolved"}
        session = await load_session(h, sid)
        assert session.status == SessionStatus.RESOLVED and session.resolved_at is not None
        assert session.resolution_note_external_id == str(notes[0]["id"])
        assert session.resolution_note_markdown == NOTE_V1
        assert session.resolution_note_posted_at is not None
        assert h.console.views("header")[-1].status == "resolved"


# ----------------------------------------------------------------------------- 3
async def test_a_silently_ignored_status_change_is_reported_and_retrying_never_posts_twice(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        cw.ignore_status_changes = True  # CW answers 200 and leaves the status alone
        _, preview = await resolve_preview(h, sid)
        await confirm(h, preview)
        warning = await wait_text(h, lambda t: "did NOT change" in t)
        assert f"Ticket {TICKET} status transition to {RESOLVED_ID} did not verify" in warning
        assert "observed 1 (New)" in warning
        session = await load_session(h, sid)
        assert session.status == SessionStatus.ACTIVE and session.resolved_at is None
        assert len(posted_notes(cw)) == 1
        # the draft that is already on the ticket can't be edited into something else
        edit = await h.copilot.action(console_inbound(), "preview_edit", confirm_value(preview), text="Other text")
        assert edit.error is not None and edit.error.category == "conflict"
        assert f"already on CW #{TICKET}" in str(edit.error)

        # the admin fixes the ticket in ConnectWise; Resolve again reuses the cached draft
        cw.ignore_status_changes = False
        _, again = await resolve_preview(h, sid)
        assert again.state_version == preview.state_version and again.markdown == preview.markdown
        await confirm(h, again)
        await wait_text(h, lambda t: t == f"Posted to CW #{TICKET} · status verified: Resolved")
        assert len(posted_notes(cw)) == 1  # no second note
        assert len(cw.calls_to("POST", f"/service/tickets/{TICKET}/notes")) == 1
        assert len(cw.calls_to("PATCH", f"/service/tickets/{TICKET}")) == 2  # only the status step again
        assert len(model.calls("resolution_note")) == 1
        session = await load_session(h, sid)
        assert session.status == SessionStatus.RESOLVED
        assert session.resolution_note_external_id == str(posted_notes(cw)[0]["id"])


# ----------------------------------------------------------------------------- 4
async def test_preview_is_cached_per_state_version(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        _, first = await resolve_preview(h, sid)
        _, second = await resolve_preview(h, sid)
        assert len(model.calls("resolution_note")) == 1  # the second one came from the Postgres cache
        assert second.state_version == first.state_version and second.markdown == first.markdown

        thread = thread_of(h, sid)
        added = await h.copilot.command(console_inbound(thread=thread), "note Spooler service was stopped")
        assert added.ok, added.error
        model.replies["resolution_note"] = NOTE_V1.replace("A corrupt print job.", "The spooler had stopped.")
        _, third = await resolve_preview(h, sid)
        assert len(model.calls("resolution_note")) == 2
        assert third.state_version > first.state_version
        assert "The spooler had stopped." in third.markdown
        assert "Spooler service was stopped" in last_user_text(model.calls("resolution_note")[1])

        # a stale draft can't be confirmed: the session changed since it was made
        stale = await h.copilot.action(console_inbound(), "preview_confirm", confirm_value(first))
        assert stale.error is not None and stale.error.category == "conflict"
        assert posted_notes(cw) == []


# ----------------------------------------------------------------------------- 5
async def test_an_unlinked_session_resolves_locally_and_keeps_the_note(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, "new Outlook keeps asking for a password")
        _, preview = await resolve_preview(h, sid)
        assert preview.target_ticket_ref is None and preview.target_status is None
        assert confirm_value(preview) and preview.buttons[-1].label == "Confirm & resolve"
        await confirm(h, preview)
        await wait_text(h, lambda t: t.startswith("Resolved locally (no PSA ticket)"))
        session = await load_session(h, sid)
        assert session.status == SessionStatus.RESOLVED
        assert session.resolution_note_markdown == NOTE_V1
        assert session.resolution_note_external_id is None
        assert cw.calls_to("POST") == [] and cw.calls_to("PATCH") == []


# ----------------------------------------------------------------------------- 6
async def test_resolve_works_without_the_model_and_says_so(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        thread = thread_of(h, sid)
        await h.copilot.command(console_inbound(thread=thread), "note The spooler service was stopped")
        h.fake_ai.down()
        _, preview = await resolve_preview(h, sid)
        assert preview.fallback_label == "Drafted without AI (model unavailable)"
        assert preview.markdown.startswith("## Problem")
        assert "The spooler service was stopped" in preview.markdown
        await confirm(h, preview)
        await wait_text(h, lambda t: t == f"Posted to CW #{TICKET} · status verified: Resolved")
        assert [n["text"] for n in posted_notes(cw)] == [preview.markdown]


async def test_resolve_works_with_no_model_key_configured(db, database_url):
    async with flowpilot_with_cw(database_url, ANTHROPIC_API_KEY=None) as (h, cw, model):
        reply = await h.copilot.command(console_inbound(), f"new Printer down #{TICKET}")
        sid = reply.session_id
        await wait_text(h, lambda t: "AI is not configured" in t)
        _, preview = await resolve_preview(h, sid)
        assert preview.fallback_label == "Drafted without AI (model unavailable)"
        await confirm(h, preview)
        await wait_text(h, lambda t: t == f"Posted to CW #{TICKET} · status verified: Resolved")
        assert len(posted_notes(cw)) == 1
        assert h.fake_ai.requests == []


async def test_a_posted_no_ai_draft_is_kept_when_resolve_is_pressed_again(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        h.fake_ai.down()
        cw.ignore_status_changes = True
        _, preview = await resolve_preview(h, sid)
        assert preview.fallback_label is not None
        await confirm(h, preview)
        await wait_text(h, lambda t: "did NOT change" in t)

        # the model is back, but the note on the ticket is the no-AI one: it is not redrafted
        h.fake_ai.up()
        cw.ignore_status_changes = False
        calls = len(model.calls("resolution_note"))
        _, again = await resolve_preview(h, sid)
        assert again.markdown == preview.markdown and again.fallback_label == preview.fallback_label
        await confirm(h, again)
        await wait_text(h, lambda t: t == f"Posted to CW #{TICKET} · status verified: Resolved")
        assert len(model.calls("resolution_note")) == calls
        assert [n["text"] for n in posted_notes(cw)] == [preview.markdown]
        assert (await load_session(h, sid)).resolution_note_markdown == preview.markdown


# ----------------------------------------------------------------------------- 7
FIX_REPLY = """Restart the spooler and clear the queue.
[SUGGEST_FIX]
{"title": "Clear the print queue", "description": "Stop the spooler, delete the queued jobs, start it.",
 "confidence": 80}
[/SUGGEST_FIX]"""


async def test_resolve_while_verifying_records_the_fix_as_worked_first(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        model.replies["chat"] = FIX_REPLY
        sid = await start(h, f"new Printer down #{TICKET}")
        fix_card = await h.console.wait_for(lambda: h.console.views("fix"))
        applied = await h.copilot.action(console_inbound(), "fix_applied", dict(fix_card[-1].buttons[0].value))
        assert applied.ok, applied.error
        assert (await load_fix(h, sid)).applied_at is not None

        reply, preview = await resolve_preview(h, sid)
        assert reply.text.startswith("Recorded the fix as worked.")
        fix = await load_fix(h, sid)
        assert fix.status == FixStatus.APPLIED_SUCCESS and fix.verified_at is not None
        assert "applied_success" in last_user_text(model.calls("resolution_note")[0])
        await h.console.wait_for(lambda: [v for v in h.console.views("fix") if v.status == "applied_success"])
        await confirm(h, preview)
        await wait_text(h, lambda t: t == f"Posted to CW #{TICKET} · status verified: Resolved")


# ----------------------------------------------------------------------------- 8
async def test_without_a_resolved_status_id_the_note_is_posted_and_the_status_left_alone(db, database_url):
    async with flowpilot_with_cw(database_url, CW_RESOLVED_STATUS_ID=None) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        _, preview = await resolve_preview(h, sid)
        assert preview.target_status == "status unchanged (not configured)"
        await confirm(h, preview)
        done = await wait_text(h, lambda t: t.startswith(f"Posted to CW #{TICKET}"))
        assert done == (f"Posted to CW #{TICKET} · No cw_resolved_status_id configured — note posted, "
                        "status unchanged.")
        assert cw.calls_to("PATCH") == []
        assert cw.ticket(TICKET)["status"]["id"] == NEW_ID
        assert len(posted_notes(cw)) == 1
        session = await load_session(h, sid)
        assert session.status == SessionStatus.RESOLVED
        assert session.resolution_note_external_id == str(posted_notes(cw)[0]["id"])


async def test_a_site_url_that_already_ends_with_the_api_path_is_not_doubled(db, database_url):
    async with FakeConnectWise() as cw:
        seed(cw)
        async with running(database_url, settings=cw_settings(cw, CW_SITE_URL=cw.api_url + "/")) as h:
            Model(h.fake_ai)
            sid = await start(h, f"new Printer down #{TICKET}")
            _, preview = await resolve_preview(h, sid)
            await confirm(h, preview)
            await wait_text(h, lambda t: t == f"Posted to CW #{TICKET} · status verified: Resolved")
            assert len(posted_notes(cw)) == 1


# ----------------------------------------------------------------------------- 13
async def test_a_connectwise_outage_during_the_post_is_retried_with_one_note(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        cw.fail_next(f"POST /service/tickets/{TICKET}/notes", status=500, times=2)
        _, preview = await resolve_preview(h, sid)
        await confirm(h, preview)
        await wait_text(h, lambda t: t == f"Posted to CW #{TICKET} · status verified: Resolved")
        attempts = cw.calls_to("POST", f"/service/tickets/{TICKET}/notes")
        assert [c.status for c in attempts] == [500, 500, 201]
        assert len(posted_notes(cw)) == 1
        assert (await load_session(h, sid)).status == SessionStatus.RESOLVED


async def test_a_status_step_failure_after_the_post_retries_only_the_status(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        cw.fail_next(f"PATCH /service/tickets/{TICKET}", status=503, times=1)
        _, preview = await resolve_preview(h, sid)
        await confirm(h, preview)
        await wait_text(h, lambda t: t == f"Posted to CW #{TICKET} · status verified: Resolved")
        assert len(cw.calls_to("POST", f"/service/tickets/{TICKET}/notes")) == 1
        assert [c.status for c in cw.calls_to("PATCH")] == [503, 200]
        assert len(posted_notes(cw)) == 1


async def test_a_rejected_post_is_reported_and_the_session_stays_open(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        cw.fail_next(f"POST /service/tickets/{TICKET}/notes", status=403, times=1)
        _, preview = await resolve_preview(h, sid)
        await confirm(h, preview)
        warning = await wait_text(h, lambda t: t.startswith(f"⚠️ Could not post to CW #{TICKET}"))
        assert "HTTP 403" in warning and "not resolved" in warning
        assert (await load_session(h, sid)).status == SessionStatus.ACTIVE
        assert posted_notes(cw) == []


# ----------------------------------------------------------------------------- 12
async def _escalate(h, sid: str, reason: str = "spooler keeps dying"):
    route = await h.copilot.command(console_inbound(user=ADMIN, name="Ada Admin", channel="seniors"), "seniors here")
    assert route.ok, route.error
    reply = await h.copilot.command(console_inbound(thread=thread_of(h, sid)), f"escalate {reason}")
    assert reply.ok, reply.error
    return reply.extra["handoff_id"]


def escalation_card(h, hid: str):
    return next(v for v in reversed(h.console.views("escalation")) if v.handoff_id == hid)


async def test_escalation_posts_the_package_as_an_internal_note_and_verifies_the_status(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        hid = await _escalate(h, sid)
        done = await wait_text(h, lambda t: t.startswith(f"Package posted to CW #{TICKET}"))
        assert done == f"Package posted to CW #{TICKET} · status verified: Escalated"
        notes = posted_notes(cw)
        assert len(notes) == 1 and notes[0]["text"] == PACKAGE
        assert notes[0]["internalAnalysisFlag"] is True
        assert notes[0]["resolutionFlag"] is False and notes[0]["detailDescriptionFlag"] is False
        assert cw.ticket(TICKET)["status"]["name"] == "Escalated"
        await h.console.wait_for(lambda: escalation_card(h, hid).psa_note == done)
        session = await load_session(h, sid)
        assert session.status == SessionStatus.ESCALATED
        assert session.escalation_package_external_id == str(notes[0]["id"])
        assert session.escalation_package_markdown == PACKAGE


async def test_escalation_post_failure_is_reported_without_undoing_the_escalation(db, database_url):
    async with flowpilot_with_cw(database_url, FLOWPILOT_JOB_MAX_ATTEMPTS=3) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        cw.fail_next(f"POST /service/tickets/{TICKET}/notes", status=503, times=50)
        hid = await _escalate(h, sid)
        warning = await wait_text(h, lambda t: t.startswith(f"⚠️ Not posted to CW #{TICKET}"))
        assert "HTTP 503" in warning and "The escalation itself stands" in warning
        await h.console.wait_for(lambda: (escalation_card(h, hid).psa_note or "").startswith(
            f"Not posted to CW #{TICKET}"))
        assert len(cw.calls_to("POST", f"/service/tickets/{TICKET}/notes")) == 3
        session = await load_session(h, sid)
        assert session.status == SessionStatus.ESCALATED
        assert posted_notes(cw) == []


async def test_escalation_status_retry_never_posts_a_second_package(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        cw.fail_next(f"PATCH /service/tickets/{TICKET}", status=500, times=2)
        await _escalate(h, sid)
        await wait_text(h, lambda t: t == f"Package posted to CW #{TICKET} · status verified: Escalated")
        assert len(posted_notes(cw)) == 1
        assert [c.status for c in cw.calls_to("PATCH")] == [500, 500, 200]
        assert len(model.calls("escalation_package")) == 1


async def test_escalation_status_that_does_not_verify_is_reported_as_posted_but_unchanged(db, database_url):
    async with flowpilot_with_cw(database_url) as (h, cw, model):
        sid = await start(h, f"new Printer down #{TICKET}")
        cw.ignore_status_changes = True
        hid = await _escalate(h, sid)
        warning = await wait_text(h, lambda t: t.startswith("⚠️") and "did not verify" in t)
        assert warning.startswith(f"⚠️ Package posted to CW #{TICKET}, but the status did not change")
        assert "The escalation itself stands" not in warning
        assert len(posted_notes(cw)) == 1
        await h.console.wait_for(lambda: "did not verify" in (escalation_card(h, hid).psa_note or ""))
        assert (await load_session(h, sid)).status == SessionStatus.ESCALATED
