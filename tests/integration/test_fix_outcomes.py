"""The fix outcome machine on real Postgres (DOMAIN §3.2–§3.5, §13.1–§13.3, §13.6).

Every refused operation runs in a unit of work that still COMMITS (the error is caught inside
it), so a service that wrote anything before refusing would show in the re-read row."""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from core import fixes
from core.commands import Actor, Inbound, Where
from core.copilot import Copilot
from core.errors import Conflict, FlowPilotError, InvalidInput, NotFound
from core.model import Fix, FixStatus, Person, Platform, Role, Session
from core.sessions import require_session

F = FixStatus
OUTCOMES = [F.APPLIED_SUCCESS, F.APPLIED_FAILED, F.APPLIED_PARTIAL, F.APPLIED_PENDING, F.DISMISSED]
NOTES = "  Printer came back for two users  "
TERMINAL_MSG = "Fix is already in terminal status '{}'"
SUPERSEDED_MSG = "This fix was superseded by a newer suggestion"
PARTIAL_MSG = "notes are required when outcome is applied_partial"
PENDING_MSG = "a reason is required when outcome is applied_pending"

# name -> (status, applied, extra columns): the states a fix can be in when the engineer acts
FROM_STATES: dict[str, tuple[FixStatus, bool, dict[str, Any]]] = {
    "proposed": (F.PROPOSED, False, {}),
    "verifying": (F.PROPOSED, True, {}),
    "verifying_after_finish_it": (F.PROPOSED, True, {"partial_notes": "did the first half"}),
    "partial": (F.APPLIED_PARTIAL, True, {"partial_notes": "did the first half"}),
    "pending": (F.APPLIED_PENDING, True, {"pending_reason": "waiting for the overnight sync",
                                          "partial_notes": "did the first half"}),
    "success": (F.APPLIED_SUCCESS, True, {"verified": True}),
    "failed": (F.APPLIED_FAILED, True, {"verified": True, "failure_reason": "still jammed"}),
    "dismissed": (F.DISMISSED, False, {}),
    "dismissed_after_apply": (F.DISMISSED, True, {}),
}
ALLOWED_FROM = {F.PROPOSED, F.APPLIED_PARTIAL, F.APPLIED_PENDING}


# ----------------------------------------------------------------------------- helpers
async def tenant(store, name: str = "acme") -> tuple[uuid.UUID, Person, Session]:
    account = await store.ensure_workspace("console", f"ws-{name}-{uuid.uuid4().hex[:6]}", name)
    async with store.unit(account) as uow:
        person = Person(id=uuid.uuid4(), account_id=account, display_name=f"{name} engineer", role=Role.ENGINEER)
        await uow.people.add(person)
        session = Session(id=uuid.uuid4(), account_id=account, user_id=person.id, title="Printer queue stuck")
        await uow.sessions.add(session)
    return account, person, session


async def add_fix(store, account: uuid.UUID, session_id: uuid.UUID, state: str = "proposed", *,
                  proposal: bool = True, superseded: bool = False) -> uuid.UUID:
    status, applied, extra = FROM_STATES[state]
    extra = dict(extra)
    verified = extra.pop("verified", False)
    async with store.unit(account) as uow:
        an_hour_ago = await uow.now() - timedelta(hours=1)
        fix_id = uuid.uuid4()
        await uow.fixes.add(Fix(
            id=fix_id, session_id=session_id, title="Restart the print spooler", description="Restart it.",
            confidence_pct=70, status=status, applied_at=an_hour_ago if applied else None,
            verified_at=an_hour_ago if verified else None,
            ai_outcome_proposal={"fix_id": str(fix_id), "outcome": "success", "reason": "it printed"}
            if proposal else None,
            superseded_at=an_hour_ago if superseded else None, **extra))
    return fix_id


async def fix_row(db, fix_id: uuid.UUID) -> dict[str, Any]:
    async with db.admin.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM session_suggested_fixes WHERE id = :i"),
                                  dict(i=fix_id))).one()
    return dict(row._mapping)


async def version(db, session_id: uuid.UUID) -> int:
    async with db.admin.connect() as conn:
        return (await conn.execute(text("SELECT state_version FROM ai_sessions WHERE id = :i"),
                                   dict(i=session_id))).scalar_one()


async def attempt(store, account: uuid.UUID, session_id: uuid.UUID, op) -> tuple[Any, Any]:
    """Run `op(uow, session)` and commit whatever it did, even when it refuses.
    Returns (transaction time, result or the FlowPilotError raised)."""
    async with store.unit(account) as uow:
        session = require_session(await uow.sessions.get(session_id, lock=True))
        now = await uow.now()
        try:
            return now, await op(uow, session)
        except FlowPilotError as exc:
            return now, exc


async def assert_untouched(db, fix_id, session_id, before_row, before_version) -> None:
    assert await fix_row(db, fix_id) == before_row
    assert await version(db, session_id) == before_version


def expected_after(before: dict[str, Any], outcome: FixStatus, notes: str | None, now) -> dict[str, Any]:
    """DOMAIN §3.2 'Writes per outcome', applied to the whole row: nothing else may change."""
    exp = dict(before, status=outcome.value, ai_outcome_proposal=None)
    if outcome != F.DISMISSED and before["applied_at"] is None:
        exp["applied_at"] = now
    if outcome in (F.APPLIED_SUCCESS, F.APPLIED_FAILED):
        exp["verified_at"] = now
    clean = (notes or "").strip()
    if outcome == F.APPLIED_FAILED:
        exp["failure_reason"] = clean or None
    elif outcome == F.APPLIED_PARTIAL:
        exp["partial_notes"] = clean
    elif outcome == F.APPLIED_PENDING:
        exp["pending_reason"] = clean
    return exp


# ----------------------------------------------------------------------------- record outcome
async def test_record_outcome_every_status_times_every_outcome(store, db):
    for state in FROM_STATES:
        for outcome in OUTCOMES:
            await _check_record_outcome(store, db, state, outcome)


async def _check_record_outcome(store, db, state: str, outcome: FixStatus) -> None:
    case = f"{state} -> {outcome.value}"
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, state)
    before, v0 = await fix_row(db, fix_id), await version(db, session.id)

    now, result = await attempt(store, account, session.id,
                                lambda uow, s: fixes.record_outcome(uow, s, fix_id, outcome, NOTES))

    status = FROM_STATES[state][0]
    if status in ALLOWED_FROM:
        assert isinstance(result, Fix), (case, result)
        after = await fix_row(db, fix_id)
        assert after == expected_after(before, outcome, NOTES, now), case
        assert await version(db, session.id) == v0 + 1, case
        if outcome == F.APPLIED_PENDING:
            assert after["verified_at"] is None, case  # pending is never verified
        return
    assert isinstance(result, Conflict), (case, result)
    assert str(result).startswith(TERMINAL_MSG.format(status.value)), case
    await assert_untouched(db, fix_id, session.id, before, v0)


@pytest.mark.parametrize("outcome,message", [(F.APPLIED_PARTIAL, PARTIAL_MSG), (F.APPLIED_PENDING, PENDING_MSG)])
async def test_missing_notes_is_invalid_input_before_the_terminal_check(store, db, outcome, message):
    account, _, session = await tenant(store)
    for state in FROM_STATES:  # terminal states included: the notes check runs first
        for notes in (None, "", "   \n "):
            fix_id = await add_fix(store, account, session.id, state)
            before, v0 = await fix_row(db, fix_id), await version(db, session.id)
            _, result = await attempt(store, account, session.id,
                                      lambda uow, s: fixes.record_outcome(uow, s, fix_id, outcome, notes))
            assert isinstance(result, InvalidInput), (state, notes, result)
            assert str(result) == message and result.field == "notes"
            await assert_untouched(db, fix_id, session.id, before, v0)


async def test_failed_without_a_reason_stores_null(store, db):
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, "verifying")
    await attempt(store, account, session.id,
                  lambda uow, s: fixes.record_outcome(uow, s, fix_id, F.APPLIED_FAILED, "   "))
    row = await fix_row(db, fix_id)
    assert row["status"] == "applied_failed" and row["failure_reason"] is None and row["verified_at"] is not None


async def test_notes_are_limited_to_500_characters(store, db):
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, "verifying")
    before, v0 = await fix_row(db, fix_id), await version(db, session.id)
    _, result = await attempt(store, account, session.id,
                              lambda uow, s: fixes.record_outcome(uow, s, fix_id, F.APPLIED_PARTIAL, "x" * 501))
    assert isinstance(result, InvalidInput) and result.field == "notes"
    await assert_untouched(db, fix_id, session.id, before, v0)
    await attempt(store, account, session.id,
                  lambda uow, s: fixes.record_outcome(uow, s, fix_id, F.APPLIED_PARTIAL, "x" * 500))
    assert (await fix_row(db, fix_id))["partial_notes"] == "x" * 500


async def test_an_outcome_can_never_be_taken_back_or_invented(store, db):
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, "partial")
    before, v0 = await fix_row(db, fix_id), await version(db, session.id)
    for outcome in ("proposed", "worked", ""):
        _, result = await attempt(store, account, session.id,
                                  lambda uow, s: fixes.record_outcome(uow, s, fix_id, outcome, NOTES))
        assert isinstance(result, InvalidInput) and result.field == "outcome", (outcome, result)
    await assert_untouched(db, fix_id, session.id, before, v0)


# ----------------------------------------------------------------------------- lookups and supersession
async def test_a_superseded_fix_is_a_conflict_before_any_other_check(store, db):
    account, _, session = await tenant(store)
    for state in ("verifying", "partial", "success"):
        fix_id = await add_fix(store, account, session.id, state, superseded=True)
        before, v0 = await fix_row(db, fix_id), await version(db, session.id)
        for outcome in OUTCOMES:
            for notes in (NOTES, None):  # missing notes and terminal status both lose to "superseded"
                _, result = await attempt(store, account, session.id,
                                          lambda uow, s: fixes.record_outcome(uow, s, fix_id, outcome, notes))
                assert isinstance(result, Conflict), (state, outcome, notes, result)
                assert str(result).startswith(SUPERSEDED_MSG)
        await assert_untouched(db, fix_id, session.id, before, v0)


async def test_every_action_on_a_superseded_fix_is_a_conflict(store, db):
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, "partial", superseded=True)
    before, v0 = await fix_row(db, fix_id), await version(db, session.id)
    for operation in ("mark_applied", "clear_proposal", "confirm_proposal"):
        _, result = await attempt(store, account, session.id,
                                  lambda uow, s: getattr(fixes, operation)(uow, s, fix_id))
        assert isinstance(result, Conflict) and str(result).startswith(SUPERSEDED_MSG), (operation, result)
    await assert_untouched(db, fix_id, session.id, before, v0)


async def test_a_fix_of_another_session_or_tenant_is_not_found(store, db):
    account, _, session = await tenant(store)
    other_account, _, other_session = await tenant(store, "other")
    in_another_session = await add_fix(store, account, (await _second_session(store, account, session)).id)
    of_another_tenant = await add_fix(store, other_account, other_session.id)
    operations = {
        "record_outcome": lambda fid: lambda uow, s: fixes.record_outcome(uow, s, fid, F.APPLIED_SUCCESS),
        "mark_applied": lambda fid: lambda uow, s: fixes.mark_applied(uow, s, fid),
        "clear_proposal": lambda fid: lambda uow, s: fixes.clear_proposal(uow, s, fid),
        "confirm_proposal": lambda fid: lambda uow, s: fixes.confirm_proposal(uow, s, fid),
    }
    rows = {fid: await fix_row(db, fid) for fid in (in_another_session, of_another_tenant)}
    v0 = await version(db, session.id)
    for name, op in operations.items():
        for fix_id in (in_another_session, of_another_tenant, uuid.uuid4()):
            _, result = await attempt(store, account, session.id, op(fix_id))
            assert isinstance(result, NotFound), (name, result)  # never forbidden: existence must not leak
            assert str(result).startswith("Suggested fix not found")
    assert {fid: await fix_row(db, fid) for fid in rows} == rows
    assert await version(db, session.id) == v0


async def test_another_tenants_session_is_not_found(store):
    account, _, _ = await tenant(store)
    _, _, other_session = await tenant(store, "other")
    async with store.unit(account) as uow:
        with pytest.raises(NotFound, match="^Session not found"):
            require_session(await uow.sessions.get(other_session.id))


async def _account_of(db, session_id) -> uuid.UUID:
    async with db.admin.connect() as conn:
        return (await conn.execute(text("SELECT account_id FROM ai_sessions WHERE id = :i"),
                                   dict(i=session_id))).scalar_one()


async def _second_session(store, account, session: Session) -> Session:
    async with store.unit(account) as uow:
        second = Session(id=uuid.uuid4(), account_id=account, user_id=session.user_id, title="Another problem")
        await uow.sessions.add(second)
    return second


async def test_no_active_fix_is_not_found(store):
    account, _, session = await tenant(store)
    async with store.unit(account) as uow:
        with pytest.raises(NotFound, match="^No active suggested fix for this session"):
            await fixes.active_fix(uow, session)


async def test_supersession_replaces_every_active_fix_whatever_its_status(store, db):
    account, _, session = await tenant(store)
    old_superseded = await add_fix(store, account, session.id, "failed", superseded=True)
    states = {"pending": "applied_pending", "success": "applied_success", "verifying": "proposed"}
    active_ids = [await add_fix(store, account, session.id, state) for state in states]
    long_ago = (await fix_row(db, old_superseded))["superseded_at"]
    v0 = await version(db, session.id)

    now, (new_fix, superseded) = await attempt(store, account, session.id, lambda uow, s: fixes.supersede_with(
        uow, s, fixes.NewFix(title="Clear the queue folder", description="Delete the spool files.", confidence=140,
                             script_template_slug="no-such-template")))

    assert sorted(superseded) == sorted(active_ids)
    for fix_id, status in zip(active_ids, states.values()):
        row = await fix_row(db, fix_id)
        assert (row["superseded_at"], row["status"]) == (now, status)  # stamped; status kept
    assert (await fix_row(db, old_superseded))["superseded_at"] == long_ago  # not re-stamped
    row = await fix_row(db, new_fix.id)
    assert (row["status"], row["applied_at"], row["superseded_at"], row["script_template_id"]) == (
        "proposed", None, None, None)
    assert row["confidence_pct"] == 100  # clamped to the CHECK range
    assert await version(db, session.id) == v0 + 1
    async with store.unit(account) as uow:
        assert (await fixes.active_fix(uow, session)).id == new_fix.id
    # the card of an old fix can no longer act (§11.4)
    _, result = await attempt(store, account, session.id,
                              lambda uow, s: fixes.record_outcome(uow, s, active_ids[0], F.APPLIED_SUCCESS))
    assert isinstance(result, Conflict) and str(result).startswith(SUPERSEDED_MSG)


# ----------------------------------------------------------------------------- mark applied / Finish it
APPLY_MSG = "Apply is only valid from 'proposed' or 'applied_partial'; fix is already '{}'"


async def test_mark_applied_from_every_state(store, db):
    for state in FROM_STATES:
        await _check_mark_applied(store, db, state)


async def _check_mark_applied(store, db, state: str) -> None:
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, state)
    before, v0 = await fix_row(db, fix_id), await version(db, session.id)

    now, result = await attempt(store, account, session.id, lambda uow, s: fixes.mark_applied(uow, s, fix_id))

    status = FROM_STATES[state][0]
    after = await fix_row(db, fix_id)
    if status == F.PROPOSED and before["applied_at"] is None:  # Proposed → Verifying
        assert result[1] is True
        assert after == dict(before, applied_at=now)
        assert await version(db, session.id) == v0 + 1
    elif status == F.PROPOSED:  # already Verifying: idempotent, no second bump
        assert result[1] is False
        await assert_untouched(db, fix_id, session.id, before, v0)
    elif status == F.APPLIED_PARTIAL:  # Finish it: back to Verifying, re-stamped, notes kept
        assert result[1] is True
        assert after == dict(before, status="proposed", applied_at=now)
        assert after["applied_at"] > before["applied_at"]
        assert after["partial_notes"] == "did the first half"
        assert await version(db, session.id) == v0 + 1
    else:
        assert isinstance(result, Conflict), result
        assert str(result).startswith(APPLY_MSG.format(status.value))
        await assert_untouched(db, fix_id, session.id, before, v0)


async def test_repeated_mark_applied_keeps_the_first_stamp(store, db):
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, "proposed")
    first, _ = await attempt(store, account, session.id, lambda uow, s: fixes.mark_applied(uow, s, fix_id))
    v1 = await version(db, session.id)
    for _ in range(3):
        await attempt(store, account, session.id, lambda uow, s: fixes.mark_applied(uow, s, fix_id))
    assert (await fix_row(db, fix_id))["applied_at"] == first
    assert await version(db, session.id) == v1


# ----------------------------------------------------------------------------- "Not yet"
async def test_clear_proposal_is_persisted_idempotent_and_does_not_bump(store, db):
    account, _, session = await tenant(store)
    for state in FROM_STATES:
        for proposal in (True, False):
            fix_id = await add_fix(store, account, session.id, state, proposal=proposal)
            before, v0 = await fix_row(db, fix_id), await version(db, session.id)
            for _ in range(2):  # the second "Not yet" clears an empty proposal: still fine
                _, result = await attempt(store, account, session.id,
                                          lambda uow, s: fixes.clear_proposal(uow, s, fix_id))
                assert isinstance(result, Fix) and result.ai_outcome_proposal is None, (state, result)
            assert await fix_row(db, fix_id) == dict(before, ai_outcome_proposal=None), state
            assert await version(db, session.id) == v0, state


# ----------------------------------------------------------------------------- AI proposals (§13.8)
async def test_a_fix_outcome_marker_is_only_a_proposal(store, db):
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, "verifying", proposal=False)
    before, v0 = await fix_row(db, fix_id), await version(db, session.id)
    await attempt(store, account, session.id,
                  lambda uow, s: fixes.store_proposal(uow, s, str(fix_id), "partial", "only one user tested"))
    proposal = {"fix_id": str(fix_id), "outcome": "partial", "reason": "only one user tested"}
    assert await fix_row(db, fix_id) == dict(before, ai_outcome_proposal=proposal)
    assert await version(db, session.id) == v0


async def test_a_proposal_for_a_closed_or_unknown_fix_is_ignored(store, db):
    account, _, session = await tenant(store)
    for state, superseded in (("success", False), ("dismissed", False), ("verifying", True)):
        fix_id = await add_fix(store, account, session.id, state, proposal=False, superseded=superseded)
        before = await fix_row(db, fix_id)
        _, result = await attempt(store, account, session.id,
                                  lambda uow, s: fixes.store_proposal(uow, s, str(fix_id), "success", None))
        assert result is None and await fix_row(db, fix_id) == before, state
    for bad_id in ("not-a-uuid", str(uuid.uuid4())):
        _, result = await attempt(store, account, session.id,
                                  lambda uow, s: fixes.store_proposal(uow, s, bad_id, "success", None))
        assert result is None


async def test_confirming_a_proposal_records_its_outcome(store, db):
    account, _, session = await tenant(store)
    for proposed, status in (("success", F.APPLIED_SUCCESS), ("failure", F.APPLIED_FAILED)):
        fix_id = await add_fix(store, account, session.id, "verifying", proposal=False)
        await attempt(store, account, session.id,
                      lambda uow, s: fixes.store_proposal(uow, s, str(fix_id), proposed, "the AI thinks so"))
        v0 = await version(db, session.id)
        await attempt(store, account, session.id, lambda uow, s: fixes.confirm_proposal(uow, s, fix_id))
        row = await fix_row(db, fix_id)
        assert (row["status"], row["ai_outcome_proposal"]) == (status.value, None), proposed
        assert await version(db, session.id) == v0 + 1


async def test_confirming_a_partial_proposal_needs_notes(store, db):
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, "verifying", proposal=False)
    await attempt(store, account, session.id,
                  lambda uow, s: fixes.store_proposal(uow, s, str(fix_id), "partial", "half done"))
    before, v0 = await fix_row(db, fix_id), await version(db, session.id)
    _, result = await attempt(store, account, session.id, lambda uow, s: fixes.confirm_proposal(uow, s, fix_id))
    assert isinstance(result, InvalidInput) and str(result) == PARTIAL_MSG
    await assert_untouched(db, fix_id, session.id, before, v0)
    await attempt(store, account, session.id,
                  lambda uow, s: fixes.confirm_proposal(uow, s, fix_id, notes="half done"))
    row = await fix_row(db, fix_id)
    assert (row["status"], row["partial_notes"]) == ("applied_partial", "half done")


async def test_confirming_without_a_proposal_is_a_conflict(store, db):
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, "verifying", proposal=False)
    _, result = await attempt(store, account, session.id, lambda uow, s: fixes.confirm_proposal(uow, s, fix_id))
    assert isinstance(result, Conflict)


# ----------------------------------------------------------------------------- a whole story
async def test_partial_finish_it_pending_then_worked(store, db):
    """Proposed → Verifying → Partial → Finish it → Pending → Worked, with every stamp."""
    account, _, session = await tenant(store)
    fix_id = await add_fix(store, account, session.id, "proposed", proposal=False)
    v0 = await version(db, session.id)
    applied, _ = await attempt(store, account, session.id, lambda uow, s: fixes.mark_applied(uow, s, fix_id))
    await attempt(store, account, session.id,
                  lambda uow, s: fixes.record_outcome(uow, s, fix_id, F.APPLIED_PARTIAL, "one of two servers"))
    assert (await fix_row(db, fix_id))["applied_at"] == applied
    finished, _ = await attempt(store, account, session.id, lambda uow, s: fixes.mark_applied(uow, s, fix_id))
    row = await fix_row(db, fix_id)
    assert (row["status"], row["applied_at"], row["partial_notes"]) == ("proposed", finished, "one of two servers")
    await attempt(store, account, session.id,
                  lambda uow, s: fixes.record_outcome(uow, s, fix_id, F.APPLIED_PENDING, "replication overnight"))
    row = await fix_row(db, fix_id)
    assert (row["status"], row["verified_at"], row["pending_reason"]) == ("applied_pending", None,
                                                                         "replication overnight")
    worked, _ = await attempt(store, account, session.id,
                              lambda uow, s: fixes.record_outcome(uow, s, fix_id, F.APPLIED_SUCCESS))
    row = await fix_row(db, fix_id)
    assert (row["status"], row["verified_at"], row["applied_at"]) == ("applied_success", worked, finished)
    assert (row["pending_reason"], row["partial_notes"]) == ("replication overnight", "one of two servers")
    assert await version(db, session.id) == v0 + 5


# ----------------------------------------------------------------------------- through the chat entry point
def _inbound(event: str | None = None) -> Inbound:
    return Inbound(actor=Actor(Platform.CONSOLE, "ws-chat", "U-eng", "Erin Engineer"),
                   where=Where(Platform.CONSOLE, "ws-chat", "console", None), event_id=event)


async def _outbox_count(db) -> int:
    async with db.admin.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM outbox"))).scalar_one()


async def test_a_refused_click_reports_the_rule_and_writes_nothing(store, db):
    copilot = Copilot(store)
    reply = await copilot.command(_inbound(), "new Printer queue stuck")
    assert reply.ok, reply.error
    session_id = uuid.UUID(reply.session_id)
    account = await _account_of(db, session_id)
    fix_id = await add_fix(store, account, session_id, "success")
    before, v0, sent = await fix_row(db, fix_id), await version(db, session_id), await _outbox_count(db)

    reply = await copilot.action(_inbound("click-1"), "fix_partial",
                                 {"session_id": str(session_id), "fix_id": str(fix_id)}, text="half of it")
    assert reply.error is not None and reply.error.category == "conflict"
    assert str(reply.error).startswith(TERMINAL_MSG.format("applied_success"))
    reply = await copilot.action(_inbound("click-2"), "fix_pending",
                                 {"session_id": str(session_id), "fix_id": str(fix_id)}, text=" ")
    assert reply.error is not None and reply.error.category == "invalid_input"
    assert str(reply.error) == PENDING_MSG
    await assert_untouched(db, fix_id, session_id, before, v0)
    assert await _outbox_count(db) == sent  # no card was re-published for a refused click

    reply = await copilot.action(_inbound("click-3"), "fix_worked",
                                 {"session_id": str(uuid.uuid4()), "fix_id": str(fix_id)})
    assert reply.error is not None and reply.error.category == "not_found"
    assert str(reply.error).startswith("Session not found")


async def test_an_accepted_click_writes_the_outcome_and_refreshes_the_card(store, db):
    copilot = Copilot(store)
    reply = await copilot.command(_inbound(), "new VPN drops every hour")
    session_id = uuid.UUID(reply.session_id)
    account = await _account_of(db, session_id)
    fix_id = await add_fix(store, account, session_id, "verifying")
    sent = await _outbox_count(db)
    reply = await copilot.action(_inbound("c-1"), "fix_worked", {"session_id": str(session_id), "fix_id": str(fix_id)})
    assert reply.ok, reply.error
    assert (await fix_row(db, fix_id))["status"] == "applied_success"
    assert await _outbox_count(db) == sent + 1  # the fix card, edited in place
    # a retried delivery of the same click is de-duplicated
    again = await copilot.action(_inbound("c-1"), "fix_worked", {"session_id": str(session_id), "fix_id": str(fix_id)})
    assert again.duplicate and await _outbox_count(db) == sent + 1
