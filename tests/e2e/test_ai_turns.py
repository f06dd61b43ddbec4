"""Issue 3, AI troubleshooting turns, end to end: the real workers, the real anthropic SDK talking
to FakeAnthropic over HTTP, real Postgres and the console sender.

Each test scripts the fake model with marker text, drives FlowPilot the way a chat adapter does
(`copilot.command/message/action`), waits for what the engineer would see in the thread, and then
checks the rows behind it."""
from __future__ import annotations

import base64
import io
import json
import logging
import uuid
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from adapters.anthropic.images import prepare_images
from bot.app import metrics_view
from core import facts, fixes, turns, updates
from core.errors import Conflict, Forbidden
from core.model import Role
from core.prompts.chat import TURN_REMINDER_PROMPT
from tests.harness import console_inbound, running
from tests.harness import test_settings as settings_with  # not collected as a test

WORKSPACE = "console-ws"
STATE_TAG = "<session_state>"


# ----------------------------------------------------------------------------- helpers
def block(name: str, body: Any) -> str:
    return f"[{name}]\n{json.dumps(body)}\n[/{name}]"


def reply(analysis: str, *blocks: str) -> str:
    return "\n".join([analysis, *blocks])


async def rows(db, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Read committed rows as the database owner (RLS does not hide anything from the test)."""
    async with db.admin.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(text(sql), params)).all()]


async def account_of(h) -> uuid.UUID:
    return await h.store.ensure_workspace("console", WORKSPACE)


def messages_of(h, type_: str, where=lambda view: True) -> list[Any]:
    """Console messages (with their edit counts) whose current view has this type and matches."""
    return [m for m in (h.console.messages[i] for i in h.console.order)
            if getattr(m.view, "type", None) == type_ and where(m.view)]


async def shown(h, type_: str, where=lambda view: True) -> list[Any]:
    return await h.console.wait_for(lambda: messages_of(h, type_, where))


async def reply_shown(h, snippet: str) -> Any:
    """Wait until an AI reply containing `snippet` is in the thread; return that console message."""
    found = await shown(h, "text", lambda v: v.kind == "reply" and snippet in v.text)
    return found[0]


async def start(h, problem: str, first_reply: str, snippet: str) -> tuple[str, str]:
    """`/flowpilot new <problem>` with the model's first answer scripted; returns (session id, thread)."""
    h.fake_ai.reply_text(first_reply)
    started = await h.copilot.command(console_inbound(), f"new {problem}")
    assert started.ok, started.error
    await reply_shown(h, snippet)
    header = (await shown(h, "header", lambda v: v.session_id == started.session_id))[0]
    return started.session_id, header.id


async def say(h, thread: str, words: str, model_reply: str | None, snippet: str | None = None,
              images: list[dict] | None = None, user: str = "U-eng"):
    """The engineer replies in the session thread; waits for the AI reply when one is scripted."""
    if model_reply is not None:
        h.fake_ai.reply_text(model_reply)
    result = await h.copilot.message(console_inbound(user=user, thread=thread), words, images)
    assert result.ok, result.error
    if snippet is not None:
        await reply_shown(h, snippet)
    return result


def ok_requests(h) -> list[Any]:
    return [r for r in h.fake_ai.requests if r.status == 200]


def texts_of(message: dict[str, Any]) -> list[str]:
    return [b["text"] for b in message["content"] if b.get("type") == "text"]


async def lane_rows(db, session_id: str, active: bool = True) -> dict[str, dict[str, Any]]:
    found = await rows(db, "SELECT * FROM lane_items WHERE session_id = :s AND active = :a", s=session_id, a=active)
    return {r["text"]: r for r in found}


async def version(db, session_id: str) -> int:
    return (await rows(db, "SELECT state_version FROM ai_sessions WHERE id = :s", s=session_id))[0]["state_version"]


async def set_role(h, user: str, role: Role) -> None:
    async with h.store.unit(await account_of(h)) as uow:
        person = await uow.people.by_identity("console", WORKSPACE, user)
        await uow.people.set_role(person.id, role)


async def scrape_metrics() -> dict[tuple[str, str], float]:
    """GET /metrics through the app's own handler over HTTP; chat and synthesis token counters
    by (task, kind), summed over models."""
    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/metrics")
        assert resp.status == 200
        body = await resp.text()
    totals: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "flowpilot_model_tokens_total":
                key = (sample.labels["task"], sample.labels["kind"])
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


# ----------------------------------------------------------------------------- 1. a three-turn conversation
Q_VPN = "Does the prompt also appear on VPN?"
Q_BUILD = "Which Outlook build is installed?"
Q_PASSWORD = "Did the user's password change recently?"
CHECK_AUTH = "Check modern authentication"
CHECK_BODY = {"label": CHECK_AUTH, "command": "Get-OrganizationConfig | fl OAuth2ClientProfileEnabled",
              "description": "Shows whether modern authentication is on"}
FIX_A = {"title": "Enable modern authentication", "description": "Turn on OAuth2ClientProfileEnabled.",
         "confidence": 55}
FIX_B = {"title": "Clear the cached Outlook credentials",
         "description": "Remove the Outlook entries from Credential Manager and restart Outlook.", "confidence": 70}


async def test_three_turns_keep_lane_ids_promote_by_id_supersede_and_propose_an_outcome(db, database_url):
    async with running(database_url) as h:
        sid, thread = await start(h, "Outlook keeps asking for the password", reply(
            "Repeated prompts point at authentication rather than the mailbox.",
            block("QUESTIONS", [{"text": Q_VPN, "context": "network path"}, {"text": Q_BUILD}]),
            block("ACTIONS", [CHECK_BODY]),
            block("SUGGEST_FIX", FIX_A)), "point at authentication")
        lane1 = await lane_rows(db, sid)
        assert set(lane1) == {Q_VPN, Q_BUILD, CHECK_AUTH}
        (fix_a,) = await rows(db, "SELECT * FROM session_suggested_fixes WHERE session_id = :s", s=sid)
        await shown(h, "fix", lambda v: v.fix_id == str(fix_a["id"]) and v.state == "proposed")

        # turn 2: the model read the question's id from the session state and promotes the answer
        q_vpn_id = str(lane1[Q_VPN]["id"])
        await say(h, thread, "Yes, it happens on VPN as well.", reply(
            "Since the network path makes no difference, a stale cached credential is the likely cause.",
            block("QUESTIONS", [{"text": Q_VPN}, {"text": Q_PASSWORD}]),
            block("ACTIONS", [CHECK_BODY]),
            block("PROMOTE", {"source_type": "question", "source_ref": q_vpn_id,
                              "text": "The prompt also appears on VPN.", "summary": "rules out the network path"}),
            block("SUGGEST_FIX", FIX_B)), "stale cached credential")
        turn2 = ok_requests(h)[-1].body["messages"][-1]
        assert q_vpn_id in texts_of(turn2)[0]  # the id was in the per-turn context the model saw

        lane2 = await lane_rows(db, sid)
        assert set(lane2) == {Q_VPN, Q_PASSWORD, CHECK_AUTH}
        assert lane2[Q_VPN]["id"] == lane1[Q_VPN]["id"]  # unchanged text, same id
        assert lane2[CHECK_AUTH]["id"] == lane1[CHECK_AUTH]["id"]
        assert lane2[Q_PASSWORD]["id"] not in {r["id"] for r in lane1.values()}
        assert Q_BUILD in await lane_rows(db, sid, active=False)  # dropped from the lane, row kept

        (fact,) = await rows(db, "SELECT * FROM session_facts WHERE session_id = :s", s=sid)
        assert (fact["source_type"], str(fact["source_ref"]), fact["text"], fact["source_summary"]) == (
            "question", q_vpn_id, "The prompt also appears on VPN.", "rules out the network path")

        fix_rows = await rows(db, "SELECT * FROM session_suggested_fixes WHERE session_id = :s ORDER BY created_at",
                              s=sid)
        by_title = {r["title"]: r for r in fix_rows}
        assert by_title[FIX_A["title"]]["superseded_at"] is not None
        fix_b = by_title[FIX_B["title"]]
        assert fix_b["superseded_at"] is None and fix_b["confidence_pct"] == 70
        await shown(h, "fix", lambda v: v.fix_id == str(fix_a["id"]) and v.collapsed and v.state == "superseded")
        await shown(h, "fix", lambda v: v.fix_id == str(fix_b["id"]) and v.state == "proposed")
        assert any("previous suggested fix was replaced" in m.view.text for m in messages_of(h, "text"))
        lane_card = (await shown(h, "lane", lambda v: v.session_id == sid and v.facts))[-1].view
        assert [f.text for f in lane_card.facts] == ["The prompt also appears on VPN."]

        # turn 3: the engineer states the outcome; the model only proposes it
        v_before = await version(db, sid)
        await say(h, thread, "Cleared them and restarted Outlook: no more prompts.", reply(
            "That confirms the stale credential.",
            block("QUESTIONS", [{"text": "Are the other affected users fine as well?"}]),
            block("FIX_OUTCOME", {"fix_id": str(fix_b["id"]), "outcome": "success",
                                  "reason": "No prompts after clearing the credentials"})), "confirms the stale")
        assert str(fix_b["id"]) in texts_of(ok_requests(h)[-1].body["messages"][-1])[0]
        (after,) = await rows(db, "SELECT * FROM session_suggested_fixes WHERE id = :i", i=fix_b["id"])
        assert after["status"] == "proposed" and after["applied_at"] is None and after["verified_at"] is None
        assert after["ai_outcome_proposal"] == {"fix_id": str(fix_b["id"]), "outcome": "success",
                                                "reason": "No prompts after clearing the credentials"}
        assert await version(db, sid) == v_before
        card = (await shown(h, "fix", lambda v: v.fix_id == str(fix_b["id"]) and v.state == "ai_confirming"))[0].view
        assert card.proposal.startswith("FlowPilot thinks the fix worked — confirm?")
        assert "proposal_confirm" in [b.action.value for b in card.buttons]


# ----------------------------------------------------------------------------- 2. caching, history, usage
FIRST = reply("The spooler stalls when a job is corrupt.",
              block("QUESTIONS", [{"text": "Do all users see the stuck queue?"}]))
SECOND = reply("A single corrupt job is likely.",
               block("ACTIONS", [{"label": "List the queued jobs", "command": "Get-PrintJob -PrinterName HQ",
                                  "description": "Shows the job that blocks the queue"}]))


async def test_static_system_is_cached_context_stays_out_of_history_and_usage_is_exposed(db, database_url):
    before = await scrape_metrics()
    async with running(database_url) as h:
        sid, thread = await start(h, "Printer queue stuck at HQ", FIRST, "stalls when a job")
        await say(h, thread, "Yes, every user.", SECOND, "single corrupt job")
        first, second = ok_requests(h)

    # the static system prompt is byte-identical across turns and carries the cache breakpoint
    assert json.dumps(second.body["system"]) == json.dumps(first.body["system"])
    assert second.body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    # the new user message carries the per-turn state and the reminder; history does not
    *history, new = second.body["messages"]
    new_text = texts_of(new)[0]
    assert STATE_TAG in new_text and TURN_REMINDER_PROMPT in new_text and "Yes, every user." in new_text
    assert [(m["role"], texts_of(m)) for m in history] == [
        ("user", ["Printer queue stuck at HQ"]), ("assistant", ["The spooler stalls when a job is corrupt."])]
    assert history[-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    stored = await rows(db, "SELECT role, content FROM session_messages WHERE session_id = :s ORDER BY created_at",
                        s=sid)
    assert [(r["role"], r["content"]) for r in stored] == [
        ("user", "Printer queue stuck at HQ"), ("assistant", "The spooler stalls when a job is corrupt."),
        ("user", "Yes, every user."), ("assistant", "A single corrupt job is likely.")]
    assert not any(STATE_TAG in r["content"] or "Format reminder" in r["content"] for r in stored)

    # the fake's usage, cache fields included, is what /metrics counts for the chat task
    usages = [r.response["usage"] for r in (first, second)]
    assert usages[0]["cache_creation_input_tokens"] > 0 and usages[1]["cache_read_input_tokens"] > 0
    after = await scrape_metrics()
    for kind, field in (("cache_read", "cache_read_input_tokens"), ("cache_creation", "cache_creation_input_tokens"),
                        ("input", "input_tokens"), ("output", "output_tokens")):
        delta = after.get(("chat", kind), 0) - before.get(("chat", kind), 0)
        assert delta == sum(u[field] for u in usages), kind
    assert after[("chat", "cache_read")] > 0


# ----------------------------------------------------------------------------- 3. overloaded once
async def test_an_overloaded_model_is_retried_and_exactly_one_reply_reaches_the_thread(db, database_url):
    async with running(database_url) as h:
        h.fake_ai.fail(529)
        sid, _ = await start(h, "VPN drops every ten minutes", FIRST, "stalls when a job")
        await shown(h, "lane", lambda v: v.session_id == sid)  # the last card of the turn is out too

        assert [r.status for r in h.fake_ai.requests] == [529, 200]
        replies = messages_of(h, "text", lambda v: "stalls when a job" in v.text)
        assert len(replies) == 1 and replies[0].edits == 1  # "thinking…" edited once into the reply
        assert not messages_of(h, "text", lambda v: v.kind in ("working", "error"))
        assert len(await rows(db, "SELECT id FROM session_messages WHERE session_id = :s AND role = 'assistant'",
                              s=sid)) == 1
        (job,) = await rows(db, "SELECT status, attempts FROM jobs WHERE kind = :k", k=turns.TURN_JOB)
        assert job == {"status": "done", "attempts": 2}


# ----------------------------------------------------------------------------- 4. the model stays down
async def test_a_model_outage_is_explained_and_the_message_is_kept_for_later(db, database_url):
    settings = settings_with(FLOWPILOT_JOB_MAX_ATTEMPTS=3, FLOWPILOT_BACKOFF_BASE_SECONDS=0.01,
                             FLOWPILOT_BACKOFF_CAP_SECONDS=0.05)
    async with running(database_url, settings=settings) as h:
        h.fake_ai.down()
        started = await h.copilot.command(console_inbound(), "new Teams calls drop after a minute")
        assert started.ok, started.error
        (notice,) = await shown(h, "text", lambda v: v.kind == "error")
        assert notice.view.text == turns.AI_UNAVAILABLE
        assert "unavailable" in notice.view.text and "message is kept" in notice.view.text
        assert notice.edits == 1  # the "thinking…" message itself now says so
        assert [r.status for r in h.fake_ai.requests] == [503, 503, 503]
        kept = await rows(db, "SELECT role, content FROM session_messages WHERE session_id = :s",
                          s=started.session_id)
        assert kept == [{"role": "user", "content": "Teams calls drop after a minute"}]

        h.fake_ai.up()
        thread = (await shown(h, "header"))[0].id
        await say(h, thread, "It happens on wired connections too.", SECOND, "single corrupt job")
        *history, new = ok_requests(h)[-1].body["messages"]
        assert texts_of(history[0]) == ["Teams calls drop after a minute"]
        assert "It happens on wired connections too." in texts_of(new)[0]


# ----------------------------------------------------------------------------- 5. no API key at all
async def test_without_an_api_key_turns_explain_once_and_everything_else_works(db, database_url):
    async with running(database_url, settings=settings_with(ANTHROPIC_API_KEY=None)) as h:
        assert h.comps.llm.configured is False
        await h.copilot.command(console_inbound(user="U-sen", name="Sam Senior"), "help")
        await set_role(h, "U-sen", Role.SENIOR)
        started = await h.copilot.command(console_inbound(), "new Scanner saves blank pages")
        sid = started.session_id
        await shown(h, "text", lambda v: v.text == turns.AI_NOT_CONFIGURED)
        thread = (await shown(h, "header"))[0].id
        for words in ("It started after the driver update.", "Only on the second floor."):
            await say(h, thread, words, None)
        await h.console.wait_for(lambda: len(messages_of(h, "text", lambda v: v.text == turns.AI_OFF_SHORT)) == 2)
        assert len(messages_of(h, "text", lambda v: v.text == turns.AI_NOT_CONFIGURED)) == 1  # once per session
        assert "ANTHROPIC_API_KEY" in turns.AI_NOT_CONFIGURED
        assert len(await rows(db, "SELECT id FROM session_messages WHERE session_id = :s AND role = 'user'",
                              s=sid)) == 3
        assert h.fake_ai.requests == []

        engineer = console_inbound(thread=thread)
        note = await h.copilot.action(engineer, "add_note", {"session_id": sid}, text="Scanner firmware is 2.1")
        assert note.ok, note.error
        async with h.store.unit(await account_of(h)) as uow:
            session = await uow.sessions.get(uuid.UUID(sid), lock=True)
            fix, _ = await fixes.supersede_with(uow, session, fixes.NewFix(
                title="Roll back the scanner driver", description="Reinstall driver 1.9.", confidence=60))
        failed = await h.copilot.action(engineer, "fix_failed", {"session_id": sid, "fix_id": str(fix.id)},
                                        text="Still blank after the rollback")
        assert failed.ok, failed.error
        assert failed.card.state == "failed" and failed.card.failure_reason == "Still blank after the rollback"

        escalated = await h.copilot.command(engineer, "escalate blank pages persist")
        assert escalated.ok, escalated.error
        (card,) = await shown(h, "escalation", lambda v: v.state == "failed")
        assert card.view.snapshot["what_we_know"] == ["Scanner firmware is 2.1"]
        assert card.view.snapshot["fix"]["status"] == "applied_failed"
        (handoff,) = await rows(db, "SELECT id, summary_status FROM session_handoffs WHERE session_id = :s", s=sid)
        assert handoff["summary_status"] == "failed"

        senior = console_inbound(user="U-sen", name="Sam Senior", thread=thread)
        claimed = await h.copilot.action(senior, "claim", {"handoff_id": str(handoff["id"]), "session_id": sid})
        assert claimed.ok, claimed.error
        resolving = await h.copilot.action(senior, "resolve", {"session_id": sid})
        assert resolving.ok, resolving.error
        (preview,) = await shown(h, "preview", lambda v: v.kind == "resolution_note")
        assert preview.view.fallback_label == "Drafted without AI (model unavailable)"
        assert "Scanner firmware is 2.1" in preview.view.markdown
        confirmed = await h.copilot.action(senior, "preview_confirm", dict(preview.view.buttons[1].value))
        assert confirmed.ok, confirmed.error
        await h.console.wait_for(lambda: any("Resolved locally" in t for t in h.console.texts()))
        (session_row,) = await rows(db, "SELECT status, resolution_note_markdown FROM ai_sessions WHERE id = :s", s=sid)
        assert session_row == {"status": "resolved", "resolution_note_markdown": preview.view.markdown}
        assert h.fake_ai.requests == []


# ----------------------------------------------------------------------------- 6. who may talk, and when
async def test_paused_sessions_resume_strangers_are_refused_and_resolved_sessions_are_closed(db, database_url):
    async with running(database_url) as h:
        sid, thread = await start(h, "Shared drive is read-only", FIRST, "stalls when a job")
        owner = console_inbound(thread=thread)
        paused = await h.copilot.command(owner, "pause")
        assert paused.ok, paused.error
        await shown(h, "header", lambda v: v.session_id == sid and v.status == "paused")

        await say(h, thread, "Back on it: the drive is still read-only.", SECOND, "single corrupt job")
        await shown(h, "header", lambda v: v.session_id == sid and v.status == "active")
        assert (await rows(db, "SELECT status FROM ai_sessions WHERE id = :s", s=sid))[0]["status"] == "active"

        stranger = await h.copilot.message(console_inbound(user="U-other", name="Olly Other", thread=thread),
                                           "Let me try something")
        assert isinstance(stranger.error, Forbidden) and "not your session" in str(stranger.error)

        assert (await h.copilot.action(owner, "resolve", {"session_id": sid})).ok
        (preview,) = await shown(h, "preview")
        assert (await h.copilot.action(owner, "preview_confirm", dict(preview.view.buttons[1].value))).ok
        await h.console.wait_for(lambda: any("Resolved locally" in t for t in h.console.texts()))
        late = await h.copilot.message(owner, "One more thing")
        assert isinstance(late.error, Conflict) and "resolved" in str(late.error)
        contents = [r["content"] for r in await rows(db, "SELECT content FROM session_messages WHERE session_id = :s",
                                                     s=sid)]
        assert "Let me try something" not in contents and "One more thing" not in contents


# ----------------------------------------------------------------------------- 7. fact synthesis
Q_SIZE = "What size does the mailbox show?"
CHECK_MAILBOX = "Read the mailbox statistics"
LANE_7 = [block("QUESTIONS", [{"text": Q_SIZE}]),
          block("ACTIONS", [{"label": CHECK_MAILBOX, "command": "Get-MailboxStatistics jdoe",
                             "description": "Shows the total item size"}])]


async def test_promoting_a_raw_answer_synthesizes_a_fact_or_says_there_is_none(db, database_url):
    before = await scrape_metrics()
    async with running(database_url) as h:
        sid, thread = await start(h, "Mail stopped arriving", reply("Quota or transport.", *LANE_7), "Quota or")
        lane = await lane_rows(db, sid)
        engineer = console_inbound(thread=thread)

        h.fake_ai.reply_text(reply("A full mailbox would explain it.", *LANE_7))
        answered = await h.copilot.action(engineer, "answer", {"session_id": sid, "item_id": str(lane[Q_SIZE]["id"])},
                                          text="It shows 49.9 GB of 50 GB used")
        assert answered.ok, answered.error
        await reply_shown(h, "A full mailbox")

        h.fake_ai.reply_text('{"text": "The mailbox is at 49.9 GB of its 50 GB quota.", '
                             '"summary": "rules in the mailbox quota"}')
        promoted = await h.copilot.action(engineer, "promote", {"session_id": sid, "item_id": str(lane[Q_SIZE]["id"])},
                                          text="")
        assert promoted.ok and promoted.text == updates.SYNTHESIS_WORKING
        (added,) = await shown(h, "text", lambda v: v.text.startswith("Added to What we know"))
        assert added.edits == 1  # the "Writing a fact…" line became the result
        (fact,) = await rows(db, "SELECT * FROM session_facts WHERE session_id = :s", s=sid)
        assert (fact["source_type"], fact["source_ref"], fact["text"], fact["source_summary"]) == (
            "question", lane[Q_SIZE]["id"], "The mailbox is at 49.9 GB of its 50 GB quota.", "rules in the mailbox quota")
        synthesis = ok_requests(h)[-1].body
        assert synthesis["model"] == h.comps.settings.fact_synthesis_model and synthesis["max_tokens"] == 200
        assert texts_of(synthesis["messages"][-1]) == [
            f"Question asked: {Q_SIZE}\nEngineer's answer: It shows 49.9 GB of 50 GB used"]
        assert synthesis["system"][0]["cache_control"] == {"type": "ephemeral"}

        # a raw output with nothing in it: "no substantive fact", and no fact is created
        h.fake_ai.reply_text(reply("The command failed, so no size yet.", *LANE_7))
        pasted = await h.copilot.action(engineer, "paste_output",
                                        {"session_id": sid, "item_id": str(lane[CHECK_MAILBOX]["id"])},
                                        text="Get-MailboxStatistics : The term is not recognized")
        assert pasted.ok, pasted.error
        await reply_shown(h, "The command failed")
        h.fake_ai.reply_text('{"text": null, "summary": null}')
        none = await h.copilot.action(engineer, "promote",
                                      {"session_id": sid, "item_id": str(lane[CHECK_MAILBOX]["id"])})
        assert none.ok, none.error
        await shown(h, "text", lambda v: v.kind == "error" and v.text == facts.NO_FACT_MSG)
        assert len(await rows(db, "SELECT id FROM session_facts WHERE session_id = :s", s=sid)) == 1
        assert texts_of(ok_requests(h)[-1].body["messages"][-1])[0].startswith(
            f"Diagnostic check: {CHECK_MAILBOX}\nOutput:\n")

        # typing the fact still promotes it directly, with no model call
        calls = len(h.fake_ai.requests)
        typed = await h.copilot.action(engineer, "promote",
                                       {"session_id": sid, "item_id": str(lane[CHECK_MAILBOX]["id"])},
                                       text="The Exchange module is not loaded on that host.")
        assert typed.ok and typed.text == "Added to What we know."
        assert len(h.fake_ai.requests) == calls
    after = await scrape_metrics()
    assert after[("fact_synthesis", "input")] > before.get(("fact_synthesis", "input"), 0)  # counted per task


# ----------------------------------------------------------------------------- 8. images
def png(color: tuple[int, int, int], size: tuple[int, int] = (64, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


async def test_images_reach_the_model_ahead_of_the_text_and_are_never_stored(db, database_url):
    prepared = prepare_images([(png((200, 0, 0)), "image/png"), (png((0, 200, 0)), "image/png"),
                               (png((0, 0, 200), (2000, 100)), "image/png")])
    images = [{"media_type": i.media_type, "data_b64": i.data_b64} for i in prepared]
    assert len(images) == 3
    async with running(database_url) as h:
        sid, thread = await start(h, "Line-of-business app shows an error", FIRST, "stalls when a job")
        sent = await say(h, thread, "Here are the three error dialogs.", SECOND, "single corrupt job", images=images)

        content = ok_requests(h)[-1].body["messages"][-1]["content"]
        assert [b["type"] for b in content] == ["image", "image", "image", "text"]
        assert [(b["source"]["media_type"], b["source"]["data"]) for b in content[:3]] == [
            (i["media_type"], i["data_b64"]) for i in images]
        assert "Here are the three error dialogs." in content[3]["text"]
        assert max(Image.open(io.BytesIO(base64.b64decode(content[2]["source"]["data"]))).size) <= 1568

        stored = await rows(db, "SELECT content FROM session_messages WHERE session_id = :s", s=sid)
        assert {"content": "Here are the three error dialogs."} in stored
        assert not any(i["data_b64"][:40] in r["content"] for r in stored for i in images)
        (job,) = await rows(db, "SELECT status, payload FROM jobs WHERE dedupe_key = :d",
                            d=f"turn:{sent.extra['message_id']}")
        assert job["status"] == "done" and "images" not in job["payload"]


# ----------------------------------------------------------------------------- 9. markers typed by a person
async def test_markers_typed_by_the_engineer_are_plain_text(db, database_url):
    typed = "I already tried this:\n" + "\n".join([
        block("SUGGEST_FIX", {"title": "Reinstall Office", "description": "Remove and reinstall.", "confidence": 99}),
        block("PROMOTE", {"source_type": "ai_synthesis", "text": "Office is broken."}),
        block("QUESTIONS", [{"text": "A question typed by the engineer?"}])])
    async with running(database_url) as h:
        sid, thread = await start(h, "Word crashes on start", FIRST, "stalls when a job")
        await say(h, thread, typed, SECOND, "single corrupt job")

        assert typed in texts_of(ok_requests(h)[-1].body["messages"][-1])[0]  # the model got it as text
        assert {"content": typed} in await rows(db, "SELECT content FROM session_messages WHERE session_id = :s "
                                                    "AND role = 'user'", s=sid)
        assert await rows(db, "SELECT id FROM session_suggested_fixes WHERE session_id = :s", s=sid) == []
        assert await rows(db, "SELECT id FROM session_facts WHERE session_id = :s", s=sid) == []
        assert set(await lane_rows(db, sid)) == {"List the queued jobs"}  # only the model's markers count


# ----------------------------------------------------------------------------- malformed marker + turn log line
async def test_a_malformed_marker_never_breaks_a_turn_and_each_turn_logs_one_line(db, database_url, caplog):
    caplog.set_level(logging.INFO, logger="core.turns")
    broken = ("The add-in is the likely cause.\n"
              + block("QUESTIONS", [{"text": "Is the add-in enabled for everyone?"}])
              + '\n[SUGGEST_FIX]\n{"title": "Disable the add-in", "description": "Turn it off", "confidence": 80,,}\n'
              "[/SUGGEST_FIX]")
    async with running(database_url) as h:
        sid, thread = await start(h, "Excel freezes when saving", FIRST, "stalls when a job")
        await say(h, thread, "It froze again.", broken, "add-in is the likely cause")
        await shown(h, "lane", lambda v: any(q.text == "Is the add-in enabled for everyone?" for q in v.questions))

        shown_reply = messages_of(h, "text", lambda v: "add-in is the likely cause" in v.text)[0].view.text
        assert shown_reply == "The add-in is the likely cause."
        assert await rows(db, "SELECT id FROM session_suggested_fixes WHERE session_id = :s", s=sid) == []

    lines = [r for r in caplog.records if r.name == "core.turns" and r.getMessage() == "ai turn parsed"]
    assert len(lines) == 2  # one per turn
    last = lines[-1]
    assert (last.actions, last.questions, last.fork, last.promote_count, last.suggest_fix,
            last.outcome_proposal) == (0, 1, False, 0, False, None)
    assert (last.raw_length, last.display_length) == (len(broken), len("The add-in is the likely cause."))
    assert last.session_id == sid and "SUGGEST_FIX" in last.dropped
