"""What we know (DOMAIN §3.7), the task lane's stable ids (§2.3, §4.4) and exactly which writes
bump `state_version` (§3.8), on real Postgres."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from core import facts, fixes, lane
from core.errors import Conflict, FlowPilotError, Forbidden, InvalidInput, NotFound
from core.markers import ActionMarker, QuestionMarker, parse_markers
from core.model import Fact, FactSource, Fix, FixStatus, LaneKind, LaneStatus, Person, Role, Session
from core.sessions import require_session
from core.turns import apply_reply


# ----------------------------------------------------------------------------- helpers
async def tenant(store, name: str = "acme") -> tuple[uuid.UUID, Person, Session]:
    account = await store.ensure_workspace("console", f"ws-{name}-{uuid.uuid4().hex[:6]}", name)
    async with store.unit(account) as uow:
        person = Person(id=uuid.uuid4(), account_id=account, display_name=f"{name} engineer", role=Role.ENGINEER)
        await uow.people.add(person)
        session = Session(id=uuid.uuid4(), account_id=account, user_id=person.id, title="Outlook keeps asking")
        await uow.sessions.add(session)
    return account, person, session


async def run(store, account: uuid.UUID, session_id: uuid.UUID, op) -> Any:
    """`op(uow, session)` in one committed unit; a refusal is returned, not raised (and whatever
    the service wrote before refusing would be committed, so it would show)."""
    async with store.unit(account) as uow:
        session = require_session(await uow.sessions.get(session_id, lock=True))
        try:
            return await op(uow, session)
        except FlowPilotError as exc:
            return exc


async def version(db, session_id: uuid.UUID) -> int:
    async with db.admin.connect() as conn:
        return (await conn.execute(text("SELECT state_version FROM ai_sessions WHERE id = :i"),
                                   dict(i=session_id))).scalar_one()


async def fact_rows(db, session_id: uuid.UUID) -> list[dict[str, Any]]:
    async with db.admin.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM session_facts WHERE session_id = :s ORDER BY created_at, id"),
                                   dict(s=session_id))).all()
    return [dict(r._mapping) for r in rows]


async def add_fact(store, account, session, source: FactSource, text_: str = "Only users on VPN are affected",
                   ref: uuid.UUID | None = None) -> uuid.UUID:
    async with store.unit(account) as uow:
        fact = Fact(id=uuid.uuid4(), session_id=session.id, text=text_, source_type=source,
                    created_by=session.user_id, source_ref=ref)
        await uow.facts.add(fact)
    return fact.id


def q(text_: str, context: str | None = None) -> QuestionMarker:
    return QuestionMarker(text=text_, context=context)


def a(label: str, command: str | None = None) -> ActionMarker:
    return ActionMarker(label=label, command=command, description="shows the state")


# ----------------------------------------------------------------------------- facts
async def test_add_note_is_always_a_user_note_and_bumps(store, db):
    account, person, session = await tenant(store)
    v0 = await version(db, session.id)
    fact = await run(store, account, session.id,
                     lambda uow, s: facts.add_note(uow, s, person.id, "  Started after the KB5034441 update  ",
                                                   summary="rules in the update"))
    assert isinstance(fact, Fact)
    [row] = await fact_rows(db, session.id)
    assert (row["text"], row["source_type"], row["source_ref"], row["source_summary"], row["created_by"]) == (
        "Started after the KB5034441 update", "user_note", None, "rules in the update", person.id)
    assert await version(db, session.id) == v0 + 1


async def test_add_note_input_rules(store, db):
    account, person, session = await tenant(store)
    v0 = await version(db, session.id)
    for kwargs, field in [(dict(text=""), "text"), (dict(text="   "), "text"), (dict(text="x" * 2001), "text"),
                          (dict(text="ok", summary="s" * 201), "summary"),
                          (dict(text="ok", source_ref=uuid.uuid4()), "source_ref")]:
        result = await run(store, account, session.id, lambda uow, s: facts.add_note(uow, s, person.id, **kwargs))
        assert isinstance(result, InvalidInput) and result.field == field, (kwargs, result)
    assert await fact_rows(db, session.id) == [] and await version(db, session.id) == v0


async def test_lengths_at_the_limit_are_accepted(store, db):
    account, person, session = await tenant(store)
    await run(store, account, session.id,
              lambda uow, s: facts.add_note(uow, s, person.id, "x" * 2000, summary="s" * 200))
    [row] = await fact_rows(db, session.id)
    assert len(row["text"]) == 2000 and len(row["source_summary"]) == 200


async def test_list_is_oldest_first_with_server_computed_editable(store):
    account, person, session = await tenant(store)
    ids = [await add_fact(store, account, session, src, f"fact {i}") for i, src in enumerate(FactSource)]
    deleted = await add_fact(store, account, session, FactSource.USER_NOTE, "gone")
    await run(store, account, session.id, lambda uow, s: facts.delete(uow, s, deleted))
    listed = await run(store, account, session.id, lambda uow, s: facts.list_facts(uow, s))
    assert [f.id for f in listed] == ids
    assert {f.source_type: f.editable for f in listed} == {
        FactSource.QUESTION: False, FactSource.DIAGNOSTIC_CHECK: False,
        FactSource.USER_NOTE: True, FactSource.AI_SYNTHESIS: True}


async def test_facts_added_in_one_turn_list_in_the_order_they_were_added(store):
    account, person, session = await tenant(store)
    texts = [f"fact number {i}" for i in range(12)]

    async def promote_all(uow, s):
        for t in texts:
            await facts.promote(uow, s, person.id, "ai_synthesis", None, t)

    await run(store, account, session.id, promote_all)
    listed = await run(store, account, session.id, lambda uow, s: facts.list_facts(uow, s))
    assert [f.text for f in listed] == texts


async def test_notes_and_syntheses_can_be_edited(store, db):
    account, _, session = await tenant(store)
    for source in (FactSource.USER_NOTE, FactSource.AI_SYNTHESIS):
        fact_id = await add_fact(store, account, session, source)
        v0 = await version(db, session.id)
        await run(store, account, session.id, lambda uow, s: facts.edit(uow, s, fact_id, text=" Only VPN users "))
        await run(store, account, session.id, lambda uow, s: facts.edit(uow, s, fact_id, summary="scope"))
        [row] = [r for r in await fact_rows(db, session.id) if r["id"] == fact_id]
        assert (row["text"], row["source_summary"], row["source_type"]) == ("Only VPN users", "scope", source.value)
        assert row["updated_at"] > row["created_at"]
        assert await version(db, session.id) == v0 + 2


async def test_facts_from_the_lane_cannot_be_edited(store, db):
    account, _, session = await tenant(store)
    for source in (FactSource.QUESTION, FactSource.DIAGNOSTIC_CHECK):
        fact_id = await add_fact(store, account, session, source, ref=uuid.uuid4())
        before, v0 = await fact_rows(db, session.id), await version(db, session.id)
        for kwargs in (dict(text="reworded"), dict(summary="x"), {}):
            result = await run(store, account, session.id, lambda uow, s: facts.edit(uow, s, fact_id, **kwargs))
            assert isinstance(result, Forbidden), (source, kwargs, result)
        assert await fact_rows(db, session.id) == before and await version(db, session.id) == v0


async def test_edit_input_rules(store, db):
    account, _, session = await tenant(store)
    fact_id = await add_fact(store, account, session, FactSource.USER_NOTE)
    before, v0 = await fact_rows(db, session.id), await version(db, session.id)
    for kwargs, field in [({}, "text"), (dict(text=" "), "text"), (dict(text="x" * 2001), "text"),
                          (dict(summary="s" * 201), "summary")]:
        result = await run(store, account, session.id, lambda uow, s: facts.edit(uow, s, fact_id, **kwargs))
        assert isinstance(result, InvalidInput) and result.field == field, (kwargs, result)
    assert await fact_rows(db, session.id) == before and await version(db, session.id) == v0


async def test_every_source_type_can_be_deleted_once(store, db):
    account, _, session = await tenant(store)
    for source in FactSource:
        fact_id = await add_fact(store, account, session, source,
                                 ref=uuid.uuid4() if source in (FactSource.QUESTION, FactSource.DIAGNOSTIC_CHECK)
                                 else None)
        v0 = await version(db, session.id)
        deleted = await run(store, account, session.id, lambda uow, s: facts.delete(uow, s, fact_id))
        assert isinstance(deleted, Fact) and deleted.deleted_at is not None, source
        assert await version(db, session.id) == v0 + 1
        for op in (lambda uow, s: facts.delete(uow, s, fact_id), lambda uow, s: facts.edit(uow, s, fact_id, text="x")):
            result = await run(store, account, session.id, op)
            assert isinstance(result, NotFound), (source, result)
        assert await version(db, session.id) == v0 + 1
    rows = await fact_rows(db, session.id)
    assert len(rows) == 4 and all(r["deleted_at"] is not None for r in rows)  # soft delete: rows stay


async def test_facts_of_another_session_or_tenant_are_not_found(store, db):
    account, _, session = await tenant(store)
    other_account, _, other_session = await tenant(store, "other")
    async with store.unit(account) as uow:
        second = Session(id=uuid.uuid4(), account_id=account, user_id=session.user_id)
        await uow.sessions.add(second)
    in_second = await add_fact(store, account, second, FactSource.USER_NOTE)
    of_other_tenant = await add_fact(store, other_account, other_session, FactSource.USER_NOTE)
    for fact_id in (in_second, of_other_tenant, uuid.uuid4()):
        for op in (lambda uow, s: facts.delete(uow, s, fact_id), lambda uow, s: facts.edit(uow, s, fact_id, text="x")):
            result = await run(store, account, session.id, op)
            assert isinstance(result, NotFound) and not isinstance(result, Forbidden)
    assert [r["deleted_at"] for r in await fact_rows(db, second.id)] == [None]
    assert [r["text"] for r in await fact_rows(db, other_session.id)] == ["Only users on VPN are affected"]


@pytest.mark.parametrize("proposed,raw,ok", [
    ("fact", None, True), (None, "raw output", True),
    (None, None, False), ("fact", "raw output", False), ("  ", None, False), ("", "  ", False),
    (None, "r" * 10000, True), (None, "r" * 10001, False),
])
def test_promote_needs_exactly_one_input(proposed, raw, ok):
    if ok:
        facts.check_promote_inputs(proposed, raw)
    else:
        with pytest.raises(InvalidInput):
            facts.check_promote_inputs(proposed, raw)


async def test_promote_rules(store, db):
    account, person, session = await tenant(store)
    item = uuid.uuid4()

    def promote(source, ref, text_="Mailbox is 49.9 GB of 50 GB", summary=None):
        return run(store, account, session.id,
                   lambda uow, s: facts.promote(uow, s, person.id, source, ref, text_, summary))

    v0 = await version(db, session.id)
    refused = [await promote("user_note", None), await promote("ai_synthesis", item), await promote("rumour", None),
               await promote("question", item, text_="x" * 2001), await promote("question", item, summary="s" * 201),
               await promote("question", item, text_="  ")]
    assert all(isinstance(r, InvalidInput) for r in refused), refused
    assert await fact_rows(db, session.id) == [] and await version(db, session.id) == v0

    assert isinstance(await promote("question", item), Fact)
    assert isinstance(await promote("diagnostic_check", uuid.uuid4(), summary="rules out quota"), Fact)
    assert isinstance(await promote("ai_synthesis", None), Fact)
    rows = await fact_rows(db, session.id)
    assert [(r["source_type"], r["source_ref"] is not None) for r in rows] == [
        ("question", True), ("diagnostic_check", True), ("ai_synthesis", False)]
    assert await version(db, session.id) == v0 + 3  # the missing lane targets are tolerated (pitfall 10)


# ----------------------------------------------------------------------------- lane
async def active_lane(store, account, session_id):
    async with store.unit(account) as uow:
        return await uow.lane.active(session_id)


async def test_exact_text_keeps_the_id_and_the_answer(store, db):
    account, person, session = await tenant(store)
    v0 = await version(db, session.id)
    first = await run(store, account, session.id, lambda uow, s: lane.replace_lane(
        uow, s, [q("Does it happen off VPN?", "scope"), q("Which Outlook build?")],
        [a("Check credential manager", "cmdkey /list")]))
    ids = {i.text: i.id for i in first}
    answered = ids["Does it happen off VPN?"]
    await run(store, account, session.id, lambda uow, s: lane.respond(uow, s, answered, "No, only on VPN", person.id))

    second = await run(store, account, session.id, lambda uow, s: lane.replace_lane(
        uow, s, [q("Which Outlook build?"), q("Does it happen off VPN?"), q("Does it happen off VPN ?")],
        [a("Check credential manager", None)]))

    by_text = {i.text: i for i in second}
    assert by_text["Does it happen off VPN?"].id == answered
    assert by_text["Which Outlook build?"].id == ids["Which Outlook build?"]
    assert by_text["Does it happen off VPN ?"].id not in ids.values()  # not an exact match: a new item
    assert by_text["Check credential manager"].id == ids["Check credential manager"]
    stored = {i.id: i for i in await active_lane(store, account, session.id)}
    kept = stored[answered]
    assert (kept.response, kept.status, kept.responded_by, kept.context) == (
        "No, only on VPN", LaneStatus.ANSWERED, person.id, "scope")
    assert stored[ids["Check credential manager"]].command is None  # now a GUI-only step
    questions = sorted((i for i in stored.values() if i.kind == LaneKind.QUESTION), key=lambda i: i.position)
    assert [i.text for i in questions] == ["Which Outlook build?", "Does it happen off VPN?", "Does it happen off VPN ?"]
    assert await version(db, session.id) == v0  # lane changes never bump


async def test_dropped_items_leave_the_lane_and_can_no_longer_be_answered(store, db):
    account, person, session = await tenant(store)
    first = await run(store, account, session.id, lambda uow, s: lane.replace_lane(
        uow, s, [q("Q1"), q("Q2")], [a("C1")]))
    ids = {i.text: i.id for i in first}
    await run(store, account, session.id, lambda uow, s: lane.replace_lane(uow, s, [q("Q2")], []))
    assert [i.id for i in await active_lane(store, account, session.id)] == [ids["Q2"]]
    for dropped in (ids["Q1"], ids["C1"]):
        result = await run(store, account, session.id, lambda uow, s: lane.respond(uow, s, dropped, "x", person.id))
        assert isinstance(result, Conflict), result
    # an item that comes back after being dropped is a new item
    third = await run(store, account, session.id, lambda uow, s: lane.replace_lane(uow, s, [q("Q1")], []))
    assert third[0].id != ids["Q1"]


async def test_a_turn_without_questions_or_actions_clears_the_lane(store, db):
    account, _, session = await tenant(store)
    await run(store, account, session.id, lambda uow, s: lane.replace_lane(uow, s, [q("Q1")], [a("C1")]))
    assert len(await active_lane(store, account, session.id)) == 2
    assert await run(store, account, session.id, lambda uow, s: lane.replace_lane(uow, s, [], [])) == []
    assert await active_lane(store, account, session.id) == []


async def test_a_question_repeated_in_one_turn_is_one_item(store):
    account, _, session = await tenant(store)
    await run(store, account, session.id, lambda uow, s: lane.replace_lane(uow, s, [q("Q1")], []))
    for turn in ([q("Q1"), q("Q1"), q("Q2"), q("Q2")], [q("Q2"), q("Q1"), q("Q2")]):
        await run(store, account, session.id, lambda uow, s: lane.replace_lane(uow, s, turn, []))
        items = await active_lane(store, account, session.id)
        assert sorted(i.text for i in items) == ["Q1", "Q2"], [i.text for i in items]


async def test_a_question_and_a_check_with_the_same_text_are_different_items(store):
    account, _, session = await tenant(store)
    items = await run(store, account, session.id, lambda uow, s: lane.replace_lane(uow, s, [q("Restart?")],
                                                                                   [a("Restart?")]))
    assert len({i.id for i in items}) == 2


async def test_lane_status_rules(store):
    account, person, session = await tenant(store)
    items = await run(store, account, session.id, lambda uow, s: lane.replace_lane(uow, s, [q("Q")], [a("C")]))
    question, check = items
    for item_id, status in ((question.id, LaneStatus.DONE), (question.id, LaneStatus.FAILED),
                            (check.id, LaneStatus.SKIPPED)):
        result = await run(store, account, session.id,
                           lambda uow, s: lane.set_status(uow, s, item_id, status, person.id))
        assert isinstance(result, InvalidInput), (status, result)
    result = await run(store, account, session.id, lambda uow, s: lane.respond(uow, s, question.id, "  ", person.id))
    assert isinstance(result, InvalidInput)
    result = await run(store, account, session.id, lambda uow, s: lane.respond(uow, s, uuid.uuid4(), "x", person.id))
    assert isinstance(result, NotFound)


# ----------------------------------------------------------------------------- what bumps state_version (§3.8)
async def test_state_version_moves_only_for_the_writes_domain_lists(store, db):
    account, person, session = await tenant(store)
    expected = await version(db, session.id)

    async def step(op, bumps: int) -> Any:
        nonlocal expected
        result = await run(store, account, session.id, op)
        assert not isinstance(result, FlowPilotError), result
        expected += bumps
        assert await version(db, session.id) == expected, (op, bumps)
        return result

    # does not bump: lane changes, answers and statuses
    items = await step(lambda uow, s: lane.replace_lane(uow, s, [q("Q1")], [a("C1")]), 0)
    await step(lambda uow, s: lane.respond(uow, s, items[0].id, "yes", person.id), 0)
    await step(lambda uow, s: lane.set_status(uow, s, items[1].id, LaneStatus.DONE, person.id), 0)
    await step(lambda uow, s: lane.replace_lane(uow, s, [], []), 0)
    # bumps: fact create / edit / delete, promote
    note = await step(lambda uow, s: facts.add_note(uow, s, person.id, "note"), 1)
    await step(lambda uow, s: facts.edit(uow, s, note.id, text="edited"), 1)
    await step(lambda uow, s: facts.delete(uow, s, note.id), 1)
    await step(lambda uow, s: facts.promote(uow, s, person.id, "question", items[0].id, "VPN only"), 1)
    # fixes: supersession bumps once; a proposal, "Not yet" and a repeated apply do not
    fix, _ = await step(lambda uow, s: fixes.supersede_with(uow, s, fixes.NewFix("Reset creds", "Clear them.", 80)), 1)
    await step(lambda uow, s: fixes.store_proposal(uow, s, str(fix.id), "success", "it connected"), 0)
    await step(lambda uow, s: fixes.clear_proposal(uow, s, fix.id), 0)
    await step(lambda uow, s: fixes.clear_proposal(uow, s, fix.id), 0)
    await step(lambda uow, s: fixes.mark_applied(uow, s, fix.id), 1)
    await step(lambda uow, s: fixes.mark_applied(uow, s, fix.id), 0)
    await step(lambda uow, s: fixes.record_outcome(uow, s, fix.id, FixStatus.APPLIED_PARTIAL, "half"), 1)
    await step(lambda uow, s: fixes.mark_applied(uow, s, fix.id), 1)  # Finish it
    await step(lambda uow, s: fixes.record_outcome(uow, s, fix.id, FixStatus.APPLIED_SUCCESS), 1)
    # refused writes do not bump either
    refused = await run(store, account, session.id,
                        lambda uow, s: fixes.record_outcome(uow, s, fix.id, FixStatus.APPLIED_FAILED))
    assert isinstance(refused, Conflict) and await version(db, session.id) == expected


REPLY = """Looks like cached credentials.
[QUESTIONS]
[{"text": "Does it happen off VPN?"}]
[/QUESTIONS]
[PROMOTE]
[{"source_type": "ai_synthesis", "text": "Prompts started after the password change"},
 {"source_type": "question", "source_ref": "%s", "text": "Only on VPN"}]
[/PROMOTE]
[SUGGEST_FIX]
{"title": "Clear cached credentials", "description": "Remove the Outlook entries in Credential Manager.",
 "confidence": 75}
[/SUGGEST_FIX]
[FIX_OUTCOME]
{"fix_id": "%s", "outcome": "success", "reason": "the engineer said it connected"}
[/FIX_OUTCOME]"""


async def test_one_ai_reply_bumps_once_per_fact_and_once_for_the_new_fix(store, db):
    account, person, session = await tenant(store)
    old_fix, _ = await run(store, account, session.id,
                           lambda uow, s: fixes.supersede_with(uow, s, fixes.NewFix("Repair profile", "Rebuild.", 50)))
    v0 = await version(db, session.id)
    parsed = parse_markers(REPLY % (uuid.uuid4(), old_fix.id))
    await run(store, account, session.id, lambda uow, s: apply_reply(uow, s, parsed, person.id))
    assert await version(db, session.id) == v0 + 3  # two facts + one supersession; lane and proposal: none
    async with store.unit(account) as uow:
        live = await uow.facts.live(session.id)
        active: Fix = await uow.fixes.active(session.id)
        old = await uow.fixes.get(old_fix.id)
    assert [f.source_type for f in live] == [FactSource.AI_SYNTHESIS, FactSource.QUESTION]
    assert active.title == "Clear cached credentials" and old.superseded_at is not None
    # the outcome marker names the fix this very reply superseded, so it is ignored
    assert old.ai_outcome_proposal is None and active.ai_outcome_proposal is None
