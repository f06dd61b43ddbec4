"""Domain types: enums for every state machine and plain dataclasses for the entities.

Plain data only: no I/O, no platform or SQL types. storage/ maps rows to these."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

PLATFORM_ACCOUNT_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


class Platform(StrEnum):
    SLACK = "slack"
    TEAMS = "teams"
    CONSOLE = "console"


class Role(StrEnum):
    VIEWER = "viewer"
    ENGINEER = "engineer"
    SENIOR = "senior"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def at_least(self, other: "Role") -> bool:
        return self.rank >= other.rank


_ROLE_RANK = {Role.VIEWER: 0, Role.ENGINEER: 1, Role.SENIOR: 2, Role.ADMIN: 3}


class SessionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    REQUESTING_ESCALATION = "requesting_escalation"  # legacy: read and accepted, never written
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    ABANDONED = "abandoned"


class FixStatus(StrEnum):
    PROPOSED = "proposed"
    APPLIED_SUCCESS = "applied_success"
    APPLIED_FAILED = "applied_failed"
    APPLIED_PARTIAL = "applied_partial"
    APPLIED_PENDING = "applied_pending"
    DISMISSED = "dismissed"

    @property
    def terminal(self) -> bool:
        return self in (FixStatus.APPLIED_SUCCESS, FixStatus.APPLIED_FAILED, FixStatus.DISMISSED)


class FactSource(StrEnum):
    QUESTION = "question"
    DIAGNOSTIC_CHECK = "diagnostic_check"
    USER_NOTE = "user_note"
    AI_SYNTHESIS = "ai_synthesis"


class LaneKind(StrEnum):
    QUESTION = "question"
    CHECK = "check"


class LaneStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"  # a question with an answer, or a check with pasted output
    SKIPPED = "skipped"
    DONE = "done"
    FAILED = "failed"  # a check that "didn't work"


class SummaryStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


@dataclass
class Account:
    id: uuid.UUID
    name: str


@dataclass
class Person:
    id: uuid.UUID
    account_id: uuid.UUID
    display_name: str
    role: Role = Role.ENGINEER
    email: str | None = None


@dataclass
class Identity:
    platform: Platform
    workspace_id: str  # Slack team id / Teams tenant id / "console"
    external_user_id: str
    person_id: uuid.UUID


@dataclass
class ChatThread:
    """Where a session lives: one thread on one platform."""

    platform: Platform
    workspace_id: str
    channel_id: str
    thread_id: str  # Slack thread_ts; Teams reply-chain root conversation id


@dataclass
class Session:
    id: uuid.UUID
    account_id: uuid.UUID
    user_id: uuid.UUID
    status: SessionStatus = SessionStatus.ACTIVE
    escalated_to_id: uuid.UUID | None = None
    intake_type: str = "free_text"
    intake_content: dict[str, Any] = field(default_factory=dict)
    title: str | None = None
    problem_summary: str | None = None
    problem_domain: str | None = None
    psa_ticket_id: str | None = None
    psa_connection_id: uuid.UUID | None = None
    state_version: int = 0
    resolved_at: datetime | None = None
    resolution_summary: str | None = None
    escalation_reason: str | None = None
    resolution_note_markdown: str | None = None
    resolution_note_posted_at: datetime | None = None
    resolution_note_external_id: str | None = None
    escalation_package_markdown: str | None = None
    escalation_package_posted_at: datetime | None = None
    escalation_package_external_id: str | None = None
    escalation_package: dict[str, Any] | None = None
    is_branching: bool = False
    active_branch_id: uuid.UUID | None = None
    thread: ChatThread | None = None
    created_at: datetime | None = None

    def is_owner(self, person_id: uuid.UUID) -> bool:
        """The one ownership rule (DOMAIN §6.6): originator or claimer."""
        return person_id == self.user_id or (
            self.escalated_to_id is not None and person_id == self.escalated_to_id
        )


@dataclass
class Message:
    id: uuid.UUID
    session_id: uuid.UUID
    role: str  # "user" | "assistant"
    content: str  # always the stripped display text
    author_id: uuid.UUID | None = None
    created_at: datetime | None = None


@dataclass
class LaneItem:
    id: uuid.UUID
    session_id: uuid.UUID
    kind: LaneKind
    text: str  # question text, or check label
    status: LaneStatus = LaneStatus.OPEN
    context: str | None = None  # question justification
    command: str | None = None  # check: exact command (None for GUI-only steps)
    description: str | None = None  # check: what the output reveals
    action_type: str | None = None
    response: str | None = None  # the answer, or the pasted output
    responded_by: uuid.UUID | None = None
    position: int = 0
    active: bool = True  # False once a later turn dropped it from the lane


@dataclass
class Fact:
    id: uuid.UUID
    session_id: uuid.UUID
    text: str
    source_type: FactSource
    created_by: uuid.UUID
    source_ref: uuid.UUID | None = None
    source_summary: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def editable(self) -> bool:
        return self.source_type in (FactSource.USER_NOTE, FactSource.AI_SYNTHESIS)


@dataclass
class Fix:
    id: uuid.UUID
    session_id: uuid.UUID
    title: str
    description: str
    confidence_pct: int
    status: FixStatus = FixStatus.PROPOSED
    script_template_id: uuid.UUID | None = None
    ai_drafted_script: str | None = None
    ai_drafted_parameters: dict[str, Any] | None = None
    user_decision: str | None = None
    applied_at: datetime | None = None
    verified_at: datetime | None = None
    partial_notes: str | None = None
    failure_reason: str | None = None
    pending_reason: str | None = None
    ai_outcome_proposal: dict[str, Any] | None = None
    superseded_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.superseded_at is None


@dataclass
class Handoff:
    id: uuid.UUID
    account_id: uuid.UUID
    session_id: uuid.UUID
    handed_off_by: uuid.UUID
    intent: str = "escalate"
    target_user_id: uuid.UUID | None = None
    reason: str | None = None
    claimed_by: uuid.UUID | None = None
    claimed_at: datetime | None = None
    snapshot: dict[str, Any] = field(default_factory=dict)
    summary_status: SummaryStatus = SummaryStatus.PENDING
    summary_prose: str | None = None
    what_we_know: list[str] | None = None
    likely_cause: str | None = None
    suggested_steps: list[str] | None = None
    confidence: str | None = None
    audience_variants: dict[str, Any] = field(
        default_factory=lambda: {"client_update": None, "email_draft": None}
    )
    reping_count: int = 0
    next_reping_at: datetime | None = None
    first_action_at: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.claimed_by is None and self.closed_at is None
