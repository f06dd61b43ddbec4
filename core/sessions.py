"""The session status machine (DOMAIN §3.1) and the ownership rule (§6.6)."""
from __future__ import annotations

import uuid

from core.errors import Conflict, Forbidden, NotFound
from core.model import Person, Role, Session, SessionStatus

S = SessionStatus

# operation -> the statuses it is allowed from, and the status it leads to
TRANSITIONS: dict[str, tuple[frozenset[SessionStatus], SessionStatus]] = {
    "pause": (frozenset({S.ACTIVE}), S.PAUSED),
    "resume": (frozenset({S.PAUSED}), S.ACTIVE),
    "close": (frozenset({S.ACTIVE, S.PAUSED}), S.ABANDONED),
    "resolve": (frozenset({S.ACTIVE, S.PAUSED, S.REQUESTING_ESCALATION, S.ESCALATED}), S.RESOLVED),
    "escalate": (frozenset({S.ACTIVE, S.PAUSED, S.RESOLVED}), S.ESCALATED),
    "claim": (frozenset({S.ESCALATED, S.REQUESTING_ESCALATION}), S.ACTIVE),
}

_NEXT_STEP = {
    S.ACTIVE: "Keep troubleshooting in the thread.",
    S.PAUSED: "Reply in the thread to resume it.",
    S.ESCALATED: "It is waiting for a senior to pick it up.",
    S.REQUESTING_ESCALATION: "It is waiting for a senior to pick it up.",
    S.RESOLVED: "Start a new session for a new problem.",
    S.ABANDONED: "Start a new session for a new problem.",
}


def check_transition(session: Session, operation: str) -> SessionStatus:
    """The status `operation` leads to, or Conflict naming the current state and what to do."""
    allowed, target = TRANSITIONS[operation]
    if session.status not in allowed:
        if operation == "resolve" or session.status == target:
            msg = f"Session is already {session.status.value}."
        else:
            msg = f"Can't {operation} a session that is {session.status.value}."
        raise Conflict(f"{msg} {_NEXT_STEP[session.status]}", status=session.status.value)
    return target


def apply_transition(session: Session, operation: str) -> SessionStatus:
    session.status = check_transition(session, operation)
    return session.status


CHAT_STATUSES = frozenset({S.ACTIVE, S.PAUSED, S.ESCALATED, S.REQUESTING_ESCALATION})


def check_can_chat(session: Session, person: Person) -> None:
    """Chat turns: owner or claimer only (the one ownership rule), and not in a closed session."""
    if not session.is_owner(person.id):
        raise Forbidden("This is not your session: only the engineer who started it, or the senior who "
                        "picked it up, can talk to FlowPilot here.")
    if session.status not in CHAT_STATUSES:
        raise Conflict(f"Session is {session.status.value}. {_NEXT_STEP[session.status]}",
                       status=session.status.value)


def require_role(person: Person, role: Role, rule: str) -> None:
    if not person.role.at_least(role):
        raise Forbidden(rule)


def require_session(session: Session | None) -> Session:
    if session is None:
        raise NotFound("Session not found.")
    return session


def new_session_id() -> uuid.UUID:
    return uuid.uuid4()
