"""One chat turn's persistence on real Postgres (DOMAIN §4.3, §4.4): `core.turns.run_turn` with a
scripted model and a minimal job context, so each case can set up exactly the rows it needs.
The end-to-end path (workers, SDK, fake API) is covered in tests/e2e/test_ai_turns.py."""
from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from core import fixes, turns
from core.model import Fix, LaneItem, LaneKind, LaneStatus, Person, Role, Session
from core.ports import ChatReply, ChatRequest

_job_ids = itertools.count(900_000)


class ScriptedModel:
    """A LanguageModel that answers chat turns from a list and records the requests."""

    def __init__(self, *replies: str, configured: bool = True) -> None:
        self.replies = list(replies)
        self.requests: list[ChatRequest] = []
        self.configured = configured

    async def chat(self, request: ChatRequest) -> ChatReply:
        self.requests.append(request)
        return ChatReply(text=self.replies.pop(0))

    async def generate(self, request):  # not used by turns
        raise AssertionError("a chat turn never calls generate")


@dataclass
class JobCtx:
    """core.ports.JobContext without a queue: `complete` just records that it was called."""

    store: Any
    account_id: uuid.UUID
    payload: dict[str, Any]
    job_id: int
    kind: str = turns.TURN_JOB
    attempts: int = 1
    max_attempts: int = 3
    completed: bool = False

    def unit(self):
        return self.store.unit(self.account_id)

    async def complete(self, uow) -> None:
        self.completed = True


async def tenant(store) -> tuple[uuid.UUID, Person]:
    account = await store.ensure_workspace("console", f"ws-turns-{uuid.uuid4().hex[:6]}")
    async with store.unit(account) as uow:
        person = Person(id=uuid.uuid4(), account_id=account, display_name="Erin Engineer", role=Role.ENGINEER)
        await uow.people.add(person)
    return account, person


async def new_session(store, account: uuid.UUID, person: Person) -> uuid.UUID:
    async with store.unit(account) as uow:
        session = Session(id=uuid.uuid4(), account_id=account, user_id=person.id, title="Outlook prompts",
                          intake_content={"origin": {"platform": "console", "workspace_id": "ws", "channel_id": "c"}})
        await uow.sessions.add(session)
    return session.id


async def turn(store, account: uuid.UUID, person: Person, session_id: uuid.UUID, words: str,
               model: ScriptedModel) -> JobCtx:
    """The engineer's message (stored and enqueued as the Copilot does), then the turn job."""
    async with store.unit(account) as uow:
        session = await uow.sessions.get(session_id, lock=True)
        message = await turns.submit_message(uow, session, person, words)
    ctx = JobCtx(store, account, {"session_id": str(session_id), "message_id": str(message.id)}, next(_job_ids))
    await turns.run_turn(ctx, turns.TurnDeps(llm=model))
    assert ctx.completed
    return ctx


async def rows(db, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with db.admin.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(text(sql), params)).all()]


async def version(db, session_id: uuid.UUID) -> int:
    return (await rows(db, "SELECT state_version FROM ai_sessions WHERE id = :s", s=session_id))[0]["state_version"]


def block(name: str, body: Any) -> str:
    return f"[{name}]\n{json.dumps(body)}\n[/{name}]"


QUESTION = {"text": "Does the prompt appear on VPN too?"}


# ----------------------------------------------------------------------------- facts
async def test_one_bad_promote_is_skipped_and_the_rest_of_the_turn_persists(store, db):
    account, person = await tenant(store)
    sid = await new_session(store, account, person)
    orphan = uuid.uuid4()  # a reworded item's old id: tolerated, kept as the fact's provenance
    model = ScriptedModel("Narrowing down.\n" + "\n".join([
        block("QUESTIONS", [QUESTION]),
        block("PROMOTE", {"source_type": "question", "source_ref": str(orphan), "text": "It fails on VPN.",
                          "summary": "rules out the office network"}),
        block("PROMOTE", {"source_type": "diagnostic_check", "text": "x" * 2001}),  # over the fact limit
        block("PROMOTE", {"source_type": "ai_synthesis", "source_ref": str(orphan), "text": "Auth is the cause."}),
        block("SUGGEST_FIX", {"title": "Reset the credential cache", "description": "Clear it.", "confidence": 61}),
    ]))
    v0 = await version(db, sid)
    await turn(store, account, person, sid, "It fails on VPN as well.", model)

    stored = await rows(db, "SELECT source_type, source_ref, text, source_summary FROM session_facts "
                            "WHERE session_id = :s ORDER BY created_at, text", s=sid)
    assert sorted(stored, key=lambda r: r["text"]) == [
        {"source_type": "ai_synthesis", "source_ref": None, "text": "Auth is the cause.", "source_summary": None},
        {"source_type": "question", "source_ref": orphan, "text": "It fails on VPN.",
         "source_summary": "rules out the office network"}]
    assert [r["text"] for r in await rows(db, "SELECT text FROM lane_items WHERE session_id = :s", s=sid)] == [
        QUESTION["text"]]
    assert len(await rows(db, "SELECT id FROM session_suggested_fixes WHERE session_id = :s", s=sid)) == 1
    assert await version(db, sid) == v0 + 3  # two facts and one fix; the lane never bumps


# ----------------------------------------------------------------------------- fix outcome proposals
async def test_an_outcome_proposal_only_lands_on_this_sessions_active_fix(store, db):
    account, person = await tenant(store)
    sid, other_sid = await new_session(store, account, person), await new_session(store, account, person)

    async def add_fix(session_id: uuid.UUID, title: str) -> Fix:
        async with store.unit(account) as uow:
            session = await uow.sessions.get(session_id, lock=True)
            fix, _ = await fixes.supersede_with(uow, session, fixes.NewFix(title=title, description="d", confidence=60))
        return fix

    first = await add_fix(sid, "Restart the spooler")
    active = await add_fix(sid, "Clear the queue")  # supersedes `first`
    elsewhere = await add_fix(other_sid, "Reinstall the driver")
    v0 = await version(db, sid)
    for fix_id in (str(elsewhere.id), str(first.id), "fix-1"):  # another session's, superseded, not a UUID
        await turn(store, account, person, sid, "It works now.", ScriptedModel(
            "Good.\n" + block("QUESTIONS", [QUESTION]) + "\n"
            + block("FIX_OUTCOME", {"fix_id": fix_id, "outcome": "success", "reason": "it works"})))
    proposals = await rows(db, "SELECT id, status, ai_outcome_proposal FROM session_suggested_fixes")
    assert all(r["ai_outcome_proposal"] is None and r["status"] == "proposed" for r in proposals)
    assert await version(db, sid) == v0

    # a proposal for the fix that the same reply supersedes is dropped: §4.3 supersedes first
    await turn(store, account, person, sid, "Partly done.", ScriptedModel(
        "Next.\n" + "\n".join([
            block("QUESTIONS", [QUESTION]),
            block("SUGGEST_FIX", {"title": "Rebuild the profile", "description": "d", "confidence": 70}),
            block("FIX_OUTCOME", {"fix_id": str(active.id), "outcome": "partial", "reason": "half"})])))
    (row,) = await rows(db, "SELECT superseded_at, ai_outcome_proposal FROM session_suggested_fixes WHERE id = :i",
                        i=active.id)
    assert row["superseded_at"] is not None and row["ai_outcome_proposal"] is None

    # and the one that names the active fix is stored as a proposal only
    (newest,) = await rows(db, "SELECT id FROM session_suggested_fixes WHERE session_id = :s AND superseded_at IS NULL",
                           s=sid)
    v1 = await version(db, sid)
    await turn(store, account, person, sid, "Only half of it applied.", ScriptedModel(
        "Noted.\n" + block("QUESTIONS", [QUESTION]) + "\n"
        + block("FIX_OUTCOME", {"fix_id": str(newest["id"]), "outcome": "PARTIAL", "reason": "half applied"})))
    (row,) = await rows(db, "SELECT status, ai_outcome_proposal FROM session_suggested_fixes WHERE id = :i",
                        i=newest["id"])
    assert row == {"status": "proposed", "ai_outcome_proposal": {"fix_id": str(newest["id"]), "outcome": "partial",
                                                                 "reason": "half applied"}}
    assert await version(db, sid) == v1


# ----------------------------------------------------------------------------- stable lane ids
async def test_a_repeated_item_keeps_its_id_and_answer_and_a_reworded_one_is_new(store, db):
    account, person = await tenant(store)
    sid = await new_session(store, account, person)
    checks = [{"label": "List the queued jobs", "command": "Get-PrintJob", "description": "shows the blocker"}]
    await turn(store, account, person, sid, "Queue is stuck.", ScriptedModel(
        "Start here.\n" + block("QUESTIONS", [QUESTION]) + "\n" + block("ACTIONS", checks)))
    async with store.unit(account) as uow:
        (question,) = [i for i in await uow.lane.active(sid) if i.kind == LaneKind.QUESTION]
        question.status, question.response, question.responded_by = LaneStatus.ANSWERED, "Yes, on VPN too", person.id
        await uow.lane.save(question)

    model = ScriptedModel("Next.\n" + "\n".join([
        block("QUESTIONS", [QUESTION, {"text": "does the prompt appear on VPN too?"}]),  # same + reworded
        block("ACTIONS", [dict(checks[0], command="Get-PrintJob -PrinterName HQ")])]))
    await turn(store, account, person, sid, "What next?", model)
    async with store.unit(account) as uow:
        lane: list[LaneItem] = await uow.lane.active(sid)
    by_text = {i.text: i for i in lane}
    kept = by_text[QUESTION["text"]]
    assert (kept.id, kept.status, kept.response) == (question.id, LaneStatus.ANSWERED, "Yes, on VPN too")
    assert by_text["does the prompt appear on VPN too?"].id != question.id
    assert by_text["List the queued jobs"].command == "Get-PrintJob -PrinterName HQ"  # refreshed, same row
    # the model saw the ids it must copy, in the new message only
    request = model.requests[0]
    assert str(question.id) in request.user_text
    assert all(str(question.id) not in m.content for m in request.history)


# ----------------------------------------------------------------------------- no model configured
async def test_without_a_model_the_full_explanation_is_posted_once_per_session(store, db):
    account, person = await tenant(store)
    sid, other_sid = await new_session(store, account, person), await new_session(store, account, person)
    off = ScriptedModel(configured=False)
    for session_id, words in ((sid, "first"), (sid, "second"), (sid, "third"), (other_sid, "elsewhere")):
        await turn(store, account, person, session_id, words, off)
    assert off.requests == []

    async def notices(session_id: uuid.UUID) -> list[str]:
        messages = await rows(db, "SELECT id FROM session_messages WHERE session_id = :s ORDER BY created_at",
                              s=session_id)
        out = []
        for m in messages:
            (card,) = await rows(db, "SELECT view FROM outbox WHERE card_key = :k AND view->>'kind' <> 'working'",
                                 k=turns.reply_card_key(m["id"]))
            out.append(card["view"]["text"])
        return out

    assert await notices(sid) == [turns.AI_NOT_CONFIGURED, turns.AI_OFF_SHORT, turns.AI_OFF_SHORT]
    assert await notices(other_sid) == [turns.AI_NOT_CONFIGURED]
    (flag,) = await rows(db, "SELECT intake_content FROM ai_sessions WHERE id = :s", s=sid)
    assert flag["intake_content"][turns.AI_OFF_EXPLAINED_FLAG] is True
    # every message is kept for a later configured turn; no assistant rows were invented
    assert [r["role"] for r in await rows(db, "SELECT role FROM session_messages WHERE session_id = :s",
                                          s=sid)] == ["user"] * 3
