"""Views built from stored state, and the outbox writes that show them in the session's thread.

Cards are always rebuilt from the database (never from parsed marker lists or in-memory
flags), so any card can be re-rendered at any time and every copy agrees."""
from __future__ import annotations

import uuid

from core.fixes import card_state
from core.model import Fact, Fix, FixStatus, LaneItem, LaneKind, LaneStatus, Session, SessionStatus
from core.ports import Destination, UnitOfWork
from core.views import (
    Action, Button, FactLine, FixView, HeaderView, InputSpec, LaneLine, LaneView, TextView,
)

OUTCOME_WORDS = {"success": "worked", "failure": "did not work", "partial": "was only partly applied"}


def session_lane_key(session_id: uuid.UUID) -> str:
    return f"session:{session_id}"


def session_destination(session: Session) -> Destination:
    if session.thread is not None:
        th = session.thread
        return Destination(platform=th.platform.value, workspace_id=th.workspace_id, channel_id=th.channel_id,
                           thread_id=th.thread_id)
    origin = session.intake_content.get("origin", {})
    return Destination(platform=origin.get("platform", "console"), workspace_id=origin.get("workspace_id", "-"),
                       channel_id=origin.get("channel_id"), root_card_key=f"header:{session.id}")


def _v(session: Session, **ids: object) -> dict[str, str]:
    value = {"session_id": str(session.id), "v": str(session.state_version)}
    value.update({k: str(v) for k, v in ids.items()})
    return value


# ----------------------------------------------------------------------------- header
def header_view(session: Session, owner_name: str | None, claimer_name: str | None,
                ticket_client: str | None = None, has_handoff: bool = False) -> HeaderView:
    buttons: list[Button] = []
    open_statuses = (SessionStatus.ACTIVE, SessionStatus.PAUSED, SessionStatus.ESCALATED,
                     SessionStatus.REQUESTING_ESCALATION)
    if session.status == SessionStatus.ACTIVE:
        buttons.append(Button(action=Action.PAUSE, label="Pause", value=_v(session)))
    if session.status in open_statuses:
        buttons.append(Button(action=Action.SHARE_UPDATE, label="Share update", value=_v(session)))
    if session.status in (SessionStatus.ACTIVE, SessionStatus.PAUSED, SessionStatus.RESOLVED):
        buttons.append(Button(action=Action.ESCALATE, label="Escalate", value=_v(session),
                              input=InputSpec(label="Why are you escalating?", required=False, max_length=500,
                                              title="Escalate to a senior")))
    if session.status in open_statuses:
        buttons.append(Button(action=Action.RESOLVE, label="Resolve", style="primary", value=_v(session)))
    if has_handoff:
        buttons.append(Button(action=Action.CONTEXT, label="Context", value=_v(session)))
    return HeaderView(
        session_id=str(session.id), title=session.title or "(untitled)", status=session.status.value,
        ticket_ref=f"CW #{session.psa_ticket_id}" if session.psa_ticket_id else None, client=ticket_client,
        owner_name=owner_name, claimer_name=claimer_name, buttons=buttons,
    )


# ----------------------------------------------------------------------------- lane
def _fact_line(session: Session, fact: Fact) -> FactLine:
    buttons = []
    if fact.editable:
        buttons.append(Button(action=Action.EDIT_FACT, label="Edit", value=_v(session, fact_id=fact.id),
                              input=InputSpec(label="Fact", initial=fact.text, max_length=2000, multiline=True,
                                              title="Edit fact")))
    buttons.append(Button(action=Action.DELETE_FACT, label="Delete", style="danger",
                          value=_v(session, fact_id=fact.id)))
    return FactLine(id=str(fact.id), text=fact.text, source_type=fact.source_type.value,
                    source_summary=fact.source_summary, editable=fact.editable, buttons=buttons)


def _lane_line(session: Session, item: LaneItem) -> LaneLine:
    ids = _v(session, item_id=item.id)
    buttons: list[Button] = []
    if item.kind == LaneKind.QUESTION:
        if item.status == LaneStatus.OPEN:
            buttons = [
                Button(action=Action.ANSWER, label="Answer", style="primary", value=ids,
                       input=InputSpec(label=item.text[:150], multiline=True, max_length=10000, title="Answer")),
                Button(action=Action.SKIP, label="Skip", value=ids),
            ]
    elif item.status in (LaneStatus.OPEN, LaneStatus.DONE, LaneStatus.FAILED):
        buttons = [
            Button(action=Action.PASTE_OUTPUT, label="Paste output", style="primary", value=ids,
                   input=InputSpec(label=f"Output of: {item.text}"[:150], multiline=True, max_length=10000,
                                   title="Paste output")),
        ]
        if item.status == LaneStatus.OPEN:
            buttons += [Button(action=Action.CHECK_DONE, label="Done", value=ids),
                        Button(action=Action.CHECK_FAILED, label="Didn't work", value=ids)]
    if item.status == LaneStatus.ANSWERED:
        # Optional and not pre-filled: left blank, FlowPilot writes the fact from the answer (§5.5).
        buttons.append(Button(action=Action.PROMOTE, label="Add to What we know", value=ids,
                              input=InputSpec(label="Fact (one confirmed sentence)", required=False,
                                              placeholder="Leave blank and FlowPilot writes it from the answer",
                                              max_length=2000, multiline=True, title="Promote to a fact")))
    return LaneLine(id=str(item.id), kind=item.kind.value, text=item.text, context=item.context,
                    command=item.command, description=item.description, status=item.status.value,
                    response=item.response, buttons=buttons)


def lane_view(session: Session, items: list[LaneItem], facts: list[Fact]) -> LaneView:
    return LaneView(
        session_id=str(session.id), state_version=session.state_version,
        facts=[_fact_line(session, f) for f in facts],
        questions=[_lane_line(session, i) for i in items if i.kind == LaneKind.QUESTION],
        checks=[_lane_line(session, i) for i in items if i.kind == LaneKind.CHECK],
        buttons=[Button(action=Action.ADD_NOTE, label="+ Add a note", value=_v(session),
                        input=InputSpec(label="Note", multiline=True, max_length=2000, title="Add to What we know"))],
    )


# ----------------------------------------------------------------------------- fix
def _reason_input(label: str, required: bool, initial: str | None = None) -> InputSpec:
    return InputSpec(label=label, required=required, multiline=True, max_length=500, initial=initial,
                     title="Fix outcome")


def fix_view(session: Session, fix: Fix) -> FixView:
    state = card_state(fix)
    ids = _v(session, fix_id=fix.id)
    worked = Button(action=Action.FIX_WORKED, label="It worked", style="primary", value=ids)
    failed = Button(action=Action.FIX_FAILED, label="Didn't work", value=ids,
                    input=_reason_input("What happened? (optional)", required=False))
    partial = Button(action=Action.FIX_PARTIAL, label="Mark partial…", value=ids,
                     input=_reason_input("What was done, and what is left?", required=True))
    pending = Button(action=Action.FIX_PENDING, label="Waiting to verify…", value=ids,
                     input=_reason_input("What are you waiting on?", required=True))
    buttons: list[Button] = []
    proposal_text = None
    if state == "proposed":
        buttons = [Button(action=Action.FIX_APPLIED, label="I applied it", style="primary", value=ids),
                   Button(action=Action.FIX_DISMISS, label="Dismiss", value=ids)]
    elif state == "verifying":
        buttons = [worked, failed, partial, pending]
    elif state == "partial":
        buttons = [Button(action=Action.FIX_FINISH, label="Finish it", style="primary", value=ids), failed, worked]
    elif state == "pending":
        buttons = [worked, failed, partial]
    elif state == "ai_confirming":
        proposal = fix.ai_outcome_proposal or {}
        outcome = proposal.get("outcome", "")
        proposal_text = f"FlowPilot thinks the fix {OUTCOME_WORDS.get(outcome, outcome)} — confirm?"
        if proposal.get("reason"):
            proposal_text += f" ({proposal['reason']})"
        confirm_input = (_reason_input("What was done, and what is left?", True, proposal.get("reason"))
                         if outcome == "partial" else None)
        buttons = [Button(action=Action.PROPOSAL_REJECT, label="Not yet", value=ids),
                   Button(action=Action.FIX_FAILED, label="No, didn't work", value=ids,
                          input=_reason_input("What happened? (optional)", required=False)),
                   Button(action=Action.PROPOSAL_CONFIRM, label="Confirm", style="primary", value=ids,
                          input=confirm_input)]
        if outcome == "success":
            buttons.append(Button(action=Action.RESOLVE, label="Confirm · Resolve", value=_v(session)))
    return FixView(
        session_id=str(session.id), fix_id=str(fix.id), state=state, title=fix.title, description=fix.description,
        confidence=fix.confidence_pct, status=fix.status.value, applied_at=fix.applied_at,
        partial_notes=fix.partial_notes, pending_reason=fix.pending_reason, failure_reason=fix.failure_reason,
        proposal=proposal_text, collapsed=state in ("superseded", "dismissed"), buttons=buttons,
    )


# ----------------------------------------------------------------------------- publishing
async def publish_header(uow: UnitOfWork, session: Session) -> None:
    owner = await uow.people.get(session.user_id)
    claimer = await uow.people.get(session.escalated_to_id) if session.escalated_to_id else None
    has_handoff = await uow.handoffs.latest_for_session(session.id) is not None
    view = header_view(session, owner.display_name if owner else None, claimer.display_name if claimer else None,
                       session.intake_content.get("ticket_client"), has_handoff)
    dest = session_destination(session)
    if session.thread is None:  # the header starts the thread: a new top-level message
        dest = Destination(platform=dest.platform, workspace_id=dest.workspace_id, channel_id=dest.channel_id,
                           binds_session=str(session.id))
    await uow.send(dest, view, op="upsert", card_key=f"header:{session.id}", lane_key=session_lane_key(session.id))


async def lane_card_key(uow: UnitOfWork, session: Session) -> str:
    """One lane card per AI turn: later turns post a fresh card below their reply."""
    turn = await uow.messages.count(session.id, "assistant")
    return f"lane:{session.id}:{turn}"


async def publish_lane(uow: UnitOfWork, session: Session) -> None:
    items = await uow.lane.active(session.id)
    facts = await uow.facts.live(session.id)
    await uow.send(session_destination(session), lane_view(session, items, facts), op="upsert",
                   card_key=await lane_card_key(uow, session), lane_key=session_lane_key(session.id))


async def publish_fix(uow: UnitOfWork, session: Session, fix: Fix) -> None:
    await uow.send(session_destination(session), fix_view(session, fix), op="upsert", card_key=f"fix:{fix.id}",
                   lane_key=session_lane_key(session.id))


async def post_text(uow: UnitOfWork, session: Session, text: str, *, kind: str = "notice",
                    card_key: str | None = None, dedupe_key: str | None = None, buttons=None, mentions=None) -> None:
    view = TextView(kind=kind, text=text, buttons=buttons or [], mentions=mentions or [])
    await uow.send(session_destination(session), view, op="upsert" if card_key else "post", card_key=card_key,
                   lane_key=session_lane_key(session.id), dedupe_key=dedupe_key)


def fix_is_open(fix: Fix | None) -> bool:
    return fix is not None and fix.superseded_at is None and not FixStatus(fix.status).terminal
