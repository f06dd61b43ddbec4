"""Platform-neutral view models. Adapters render them as Block Kit, Adaptive Cards or text.

Buttons carry only ids and the `state_version` they were drawn at (`value`); a button whose
action needs text from the user declares it in `input` (Slack opens a modal, Teams shows an
Input.Text, the console prompts)."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, TypeAdapter


class Action(StrEnum):
    """Every action id a card can carry, in one place."""

    PAUSE = "pause"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    SHARE_UPDATE = "share_update"
    CONTEXT = "context"
    ANSWER = "answer"
    SKIP = "skip"
    PASTE_OUTPUT = "paste_output"
    CHECK_DONE = "check_done"
    CHECK_FAILED = "check_failed"
    ADD_NOTE = "add_note"
    EDIT_FACT = "edit_fact"
    DELETE_FACT = "delete_fact"
    PROMOTE = "promote"
    FIX_APPLIED = "fix_applied"
    FIX_WORKED = "fix_worked"
    FIX_FAILED = "fix_failed"
    FIX_PARTIAL = "fix_partial"
    FIX_PENDING = "fix_pending"
    FIX_DISMISS = "fix_dismiss"
    FIX_FINISH = "fix_finish"
    PROPOSAL_CONFIRM = "proposal_confirm"
    PROPOSAL_REJECT = "proposal_reject"
    INTERCEPT = "intercept"
    CLAIM = "claim"
    SUGGESTED_STEP = "suggested_step"
    PREVIEW_EDIT = "preview_edit"
    PREVIEW_CONFIRM = "preview_confirm"
    AUDIENCE = "audience"
    PSA_CONNECT = "psa_connect"
    HIDE_STEPS = "hide_steps"


class InputSpec(BaseModel):
    name: str = "text"
    label: str
    multiline: bool = False
    required: bool = True
    max_length: int = 500
    initial: str | None = None
    placeholder: str | None = None
    title: str | None = None  # modal / card title


class Button(BaseModel):
    action: Action
    label: str
    value: dict[str, str] = Field(default_factory=dict)
    style: Literal["primary", "danger"] | None = None
    input: InputSpec | None = None


class Mention(BaseModel):
    name: str
    external_id: str | None = None  # platform user id at the destination platform


class TextView(BaseModel):
    type: Literal["text"] = "text"
    kind: Literal["reply", "notice", "working", "error"] = "notice"
    text: str
    markdown: bool = True
    mentions: list[Mention] = Field(default_factory=list)
    mention_channel: bool = False  # Slack @here / Teams channel mention (re-pings)
    buttons: list[Button] = Field(default_factory=list)


class HeaderView(BaseModel):
    type: Literal["header"] = "header"
    session_id: str
    title: str
    status: str
    ticket_ref: str | None = None
    client: str | None = None
    priority: str | None = None
    owner_name: str | None = None
    claimer_name: str | None = None
    buttons: list[Button] = Field(default_factory=list)


class FactLine(BaseModel):
    id: str
    text: str
    source_type: str
    source_summary: str | None = None
    editable: bool
    buttons: list[Button] = Field(default_factory=list)


class LaneLine(BaseModel):
    id: str
    kind: Literal["question", "check"]
    text: str
    context: str | None = None
    command: str | None = None
    description: str | None = None
    status: str
    response: str | None = None
    buttons: list[Button] = Field(default_factory=list)


class LaneView(BaseModel):
    type: Literal["lane"] = "lane"
    session_id: str
    state_version: int
    facts: list[FactLine] = Field(default_factory=list)
    questions: list[LaneLine] = Field(default_factory=list)
    checks: list[LaneLine] = Field(default_factory=list)
    buttons: list[Button] = Field(default_factory=list)


class FixView(BaseModel):
    type: Literal["fix"] = "fix"
    session_id: str
    fix_id: str
    state: Literal["proposed", "verifying", "partial", "pending", "ai_confirming", "nudge",
                   "worked", "failed", "dismissed", "superseded"]
    title: str
    description: str
    confidence: int
    status: str
    applied_at: datetime | None = None
    partial_notes: str | None = None
    pending_reason: str | None = None
    failure_reason: str | None = None
    proposal: str | None = None  # "FlowPilot thinks the fix worked — confirm?"
    collapsed: bool = False
    buttons: list[Button] = Field(default_factory=list)


class EscalationView(BaseModel):
    type: Literal["escalation"] = "escalation"
    handoff_id: str
    session_id: str
    title: str
    state: Literal["analyzing", "ready", "failed", "claimed", "closed"]
    handed_off_by: str | None = None
    reason: str | None = None
    ticket_ref: str | None = None
    step_count: int = 0
    thread_link: str | None = None
    summary_prose: str | None = None
    what_we_know: list[str] = Field(default_factory=list)
    likely_cause: str | None = None
    suggested_steps: list[str] = Field(default_factory=list)
    confidence: str | None = None
    snapshot: dict[str, Any] = Field(default_factory=dict)
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    status_note: str | None = None
    psa_note: str | None = None
    buttons: list[Button] = Field(default_factory=list)


class HandoffContextView(BaseModel):
    type: Literal["handoff_context"] = "handoff_context"
    handoff_id: str
    session_id: str
    senior: Mention | None = None
    handed_off_by: str | None = None
    summary_prose: str | None = None
    confidence: str | None = None
    what_we_know: list[str] = Field(default_factory=list)
    tried: list[str] = Field(default_factory=list)
    likely_cause: str | None = None
    next_steps: list[str] = Field(default_factory=list)
    buttons: list[Button] = Field(default_factory=list)


class PreviewView(BaseModel):
    type: Literal["preview"] = "preview"
    session_id: str
    kind: str  # resolution_note | escalation_package | status_update
    markdown: str
    target_ticket_ref: str | None = None
    target_status: str | None = None
    state_version: int
    fallback_label: str | None = None
    buttons: list[Button] = Field(default_factory=list)


class ListItem(BaseModel):
    text: str
    buttons: list[Button] = Field(default_factory=list)


class ListView(BaseModel):
    type: Literal["list"] = "list"
    title: str
    items: list[ListItem] = Field(default_factory=list)
    empty_text: str = "Nothing here."


class FormField(BaseModel):
    name: str
    label: str
    kind: Literal["text", "multiline", "choice", "secret"] = "text"
    required: bool = True
    max_length: int = 500
    initial: str | None = None
    options: list[tuple[str, str]] = Field(default_factory=list)  # (value, label) for "choice"
    hint: str | None = None


class FormView(BaseModel):
    """A small form (Slack modal, Teams card with inputs, console prompts). Submitting calls
    `action` with `value` and the fields' values."""

    type: Literal["form"] = "form"
    title: str
    intro: str | None = None
    fields: list[FormField] = Field(default_factory=list)
    submit_label: str = "Submit"
    action: Action
    value: dict[str, str] = Field(default_factory=dict)


AnyView = Annotated[
    Union[TextView, HeaderView, LaneView, FixView, EscalationView, HandoffContextView, PreviewView, ListView,
          FormView],
    Field(discriminator="type"),
]
_adapter: TypeAdapter[Any] = TypeAdapter(AnyView)


def dump_view(view: BaseModel) -> dict[str, Any]:
    return view.model_dump(mode="json")


def load_view(data: dict[str, Any]) -> Any:
    return _adapter.validate_python(data)
