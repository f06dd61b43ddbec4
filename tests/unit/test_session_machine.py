"""The session status machine (DOMAIN §3.1, §13.14–15) and who may chat (§6.6), without a database.

The expected table below is written from DOMAIN, not from core/sessions.py, so a drift in
TRANSITIONS shows up as a failing pair."""
from __future__ import annotations

import uuid

import pytest

from core.errors import Conflict, Forbidden, NotFound
from core.model import Person, Role, Session, SessionStatus
from core.sessions import (
    TRANSITIONS, apply_transition, check_can_chat, check_transition, require_role, require_session,
)

S = SessionStatus
ALL = list(SessionStatus)

# operation -> {from: to} for the allowed pairs; every other status is a conflict (DOMAIN §3.1)
EXPECTED: dict[str, dict[SessionStatus, SessionStatus]] = {
    "pause": {S.ACTIVE: S.PAUSED},
    "resume": {S.PAUSED: S.ACTIVE},  # automatic on the next owner chat turn
    "close": {S.ACTIVE: S.ABANDONED, S.PAUSED: S.ABANDONED},  # §13.15
    "resolve": {S.ACTIVE: S.RESOLVED, S.PAUSED: S.RESOLVED, S.REQUESTING_ESCALATION: S.RESOLVED,
                S.ESCALATED: S.RESOLVED},
    "escalate": {S.ACTIVE: S.ESCALATED, S.PAUSED: S.ESCALATED, S.RESOLVED: S.ESCALATED},
    "claim": {S.ESCALATED: S.ACTIVE, S.REQUESTING_ESCALATION: S.ACTIVE},  # §6.5, §13.14
}

PAIRS = [(op, status) for op in EXPECTED for status in ALL]


def _person(role: Role = Role.ENGINEER) -> Person:
    return Person(id=uuid.uuid4(), account_id=uuid.uuid4(), display_name="p", role=role)


def _session(status: SessionStatus, owner: Person | None = None, claimer: Person | None = None) -> Session:
    owner = owner or _person()
    return Session(id=uuid.uuid4(), account_id=owner.account_id, user_id=owner.id, status=status,
                   escalated_to_id=claimer.id if claimer else None)


def test_every_operation_of_domain_is_defined_and_no_other():
    assert set(TRANSITIONS) == set(EXPECTED)


@pytest.mark.parametrize("operation,status", PAIRS, ids=[f"{o}-from-{s.value}" for o, s in PAIRS])
def test_each_operation_from_each_status(operation: str, status: SessionStatus):
    session = _session(status)
    target = EXPECTED[operation].get(status)
    if target is not None:
        assert check_transition(session, operation) == target
        assert session.status == status  # checking alone changes nothing
        assert apply_transition(session, operation) == target
        assert session.status == target
        return
    with pytest.raises(Conflict) as err:
        apply_transition(session, operation)
    assert err.value.category == "conflict"
    assert status.value in str(err.value)  # the message names the current state
    assert err.value.detail["status"] == status.value
    assert session.status == status  # a refused operation leaves the session as it was


@pytest.mark.parametrize("status", [s for s in ALL if s not in EXPECTED["resolve"]])
def test_resolve_from_a_closed_state_says_session_is_already(status: SessionStatus):
    with pytest.raises(Conflict, match=rf"^Session is already {status.value}"):
        check_transition(_session(status), "resolve")


def test_escalating_an_escalated_session_is_a_blocked_no_op():
    with pytest.raises(Conflict, match=r"^Session is already escalated"):
        check_transition(_session(S.ESCALATED), "escalate")


def test_requesting_escalation_is_never_a_target():
    """The legacy in-transit state is read and accepted, never written (§13.14)."""
    assert all(target != S.REQUESTING_ESCALATION for _allowed, target in TRANSITIONS.values())


CHAT_OK = {S.ACTIVE, S.PAUSED, S.ESCALATED, S.REQUESTING_ESCALATION}


@pytest.mark.parametrize("status", ALL, ids=[s.value for s in ALL])
@pytest.mark.parametrize("who", ["owner", "claimer"])
def test_owner_and_claimer_may_chat_only_in_open_states(status: SessionStatus, who: str):
    owner, claimer = _person(), _person(Role.SENIOR)
    session = _session(status, owner=owner, claimer=claimer)
    actor = owner if who == "owner" else claimer
    if status in CHAT_OK:
        check_can_chat(session, actor)  # accepted: no error
        return
    with pytest.raises(Conflict) as err:
        check_can_chat(session, actor)
    assert status.value in str(err.value)
    assert err.value.detail["status"] == status.value


@pytest.mark.parametrize("status", ALL, ids=[s.value for s in ALL])
@pytest.mark.parametrize("role", [Role.ENGINEER, Role.SENIOR, Role.ADMIN])
def test_anyone_else_gets_forbidden_not_your_session(status: SessionStatus, role: Role):
    session = _session(status, claimer=_person(Role.SENIOR))
    with pytest.raises(Forbidden, match="not your session"):
        check_can_chat(session, _person(role))


def test_the_originator_keeps_ownership_after_a_claim():
    owner, claimer = _person(), _person(Role.SENIOR)
    session = _session(S.ACTIVE, owner=owner, claimer=claimer)
    assert session.is_owner(owner.id) and session.is_owner(claimer.id)
    assert not session.is_owner(uuid.uuid4())


def test_role_gate_and_missing_session():
    require_role(_person(Role.ENGINEER), Role.ENGINEER, "rule")
    with pytest.raises(Forbidden, match="^Only seniors$"):
        require_role(_person(Role.ENGINEER), Role.SENIOR, "Only seniors")
    with pytest.raises(Forbidden):
        require_role(_person(Role.VIEWER), Role.ENGINEER, "engineers only")
    with pytest.raises(NotFound, match="^Session not found"):
        require_session(None)
    session = _session(S.ACTIVE)
    assert require_session(session) is session
