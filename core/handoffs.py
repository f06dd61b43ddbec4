"""Escalation and claim (DOMAIN §6): one escalation path, claimable cards in every senior route,
the structured AI summary, atomic first-wins claim, the handoff context card, queue and metrics."""
from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

from core import cards, fixes, turns
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, UpstreamFailure
from core.identity import external_id_for
from core.model import FixStatus, Handoff, Person, Role, Session, SessionStatus, SummaryStatus
from core.ports import Destination, GenerateRequest, JobContext, LanguageModel, UnitOfWork
from core.prompts.artifacts import ESCALATION_SUMMARY_PROMPT
from core.prompts.bundles import escalation_summary_input
from core.prompts.fallbacks import deterministic_snapshot, tried_lines
from core.prompts.schemas import EscalationSummary
from core.sessions import check_transition, require_role
from core.views import (
    Action, Button, EscalationView, FormField, FormView, HandoffContextView, ListItem, ListView, Mention,
)

log = logging.getLogger(__name__)

SUMMARY_JOB = "escalation_summary"
PSA_ESCALATION_JOB = "psa_escalation"
REPING_JOB = "escalation_reping"
CLAIM_RULE = "Only seniors and admins can pick up escalations."
SELF_CLAIM_RULE = "You can't pick up your own escalation."
NO_ROUTE_NOTE = ("No senior channel is configured, so seniors and admins were messaged directly. An admin can "
                 "run `seniors here` in a channel to make it receive escalations.")
NOBODY_NOTE = ("Nobody can pick it up yet: there is no senior channel and no senior or admin in this account. "
               "It waits in `queue`; an admin can run `seniors here` in a channel or `role @user senior`.")
REASON_MAX = 500


def ago(then: datetime | None, now: datetime | None = None) -> str:
    if then is None:
        return ""
    now = now or datetime.now(timezone.utc)
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} minute{'s' if seconds // 60 != 1 else ''} ago"
    hours = seconds // 3600
    if hours < 48:
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    return f"{hours // 24} days ago"


# ----------------------------------------------------------------------------- routes
async def add_route(uow: UnitOfWork, actor: Person, platform: str, workspace_id: str, channel_id: str,
                    channel_name: str | None) -> str:
    require_role(actor, Role.ADMIN, "Only admins can choose where escalations go.")
    added = await uow.routes.add(platform, workspace_id, channel_id, channel_name, actor.id)
    where = f"#{channel_name}" if channel_name else "This channel"
    return (f"{where} now receives escalations." if added else f"{where} already receives escalations.")


# ----------------------------------------------------------------------------- escalate
INTERCEPT_STATES = ("verifying", "partial", "pending")
OPEN_STATUSES = (SessionStatus.ESCALATED, SessionStatus.REQUESTING_ESCALATION)  # claimable (§6.5)


def intercept_form(session: Session, fix, reason: str | None) -> FormView:
    """§6.4: record what happened with the fix before escalating."""
    state = fixes.card_state(fix)
    options = [("failed", "The fix didn't work"), ("success", "It worked, escalating for another reason"),
               ("dismissed", "Never actually applied it")]
    if state != "partial":
        options.append(("partial", "I applied some of it (partial)"))
    if state == "pending":
        options.append(("wait", "Still waiting to verify"))
    initial = "wait" if state == "pending" else "failed"
    return FormView(
        title="Before escalating",
        intro=(f"Before escalating — what happened with the fix “{fix.title}”? It is still unresolved; "
               "tagging it tells the senior what was tried."),
        fields=[FormField(name="outcome", label="What happened with the fix?", kind="choice", options=options,
                          initial=initial),
                FormField(name="notes", label="Notes (required for partial)", kind="multiline", required=False,
                          max_length=500)],
        submit_label="Continue to escalate", action=Action.INTERCEPT,
        value={"session_id": str(session.id), "fix_id": str(fix.id), "v": str(session.state_version),
               "reason": (reason or "")[:REASON_MAX]},
    )


INTERCEPT_OUTCOMES = {"failed": FixStatus.APPLIED_FAILED, "success": FixStatus.APPLIED_SUCCESS,
                      "dismissed": FixStatus.DISMISSED, "partial": FixStatus.APPLIED_PARTIAL}


async def record_intercept(uow: UnitOfWork, session: Session, fix_id: uuid.UUID, choice: str,
                           notes: str | None) -> None:
    if choice == "wait":
        fix = await fixes.get_fix(uow, session, fix_id)
        if fix.status != FixStatus.APPLIED_PENDING:
            raise InvalidInput("'Still waiting to verify' is only for a fix that is waiting to verify.", field="outcome")
        return
    if choice not in INTERCEPT_OUTCOMES:
        raise InvalidInput("Choose what happened with the fix.", field="outcome")
    fix = await fixes.record_outcome(uow, session, fix_id, INTERCEPT_OUTCOMES[choice], notes)
    await cards.publish_fix(uow, session, fix)


async def needs_intercept(uow: UnitOfWork, session: Session):
    fix = await uow.fixes.active(session.id)
    if fix is not None and fixes.card_state(fix) in INTERCEPT_STATES:
        return fix
    return None


async def escalate(uow: UnitOfWork, session: Session, actor: Person, reason: str | None,
                   target: Person | None = None, reping_minutes: float = 10.0) -> Handoff:
    """§6.2 step 1, in the caller's transaction: handoff, session → escalated, cards in every
    route (or DMs), thread note, DM to a named senior, summary job and PSA job."""
    require_role(actor, Role.ENGINEER, "Viewers can't escalate sessions.")
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"Keep the reason under {REASON_MAX} characters.", field="reason")
    check_target(actor, target)
    target_status = check_transition(session, "escalate")
    live_facts = await uow.facts.live(session.id)
    lane_items = await uow.lane.all(session.id)
    fix = await uow.fixes.active(session.id)
    handoff = Handoff(id=uuid.uuid4(), account_id=uow.account_id, session_id=session.id, handed_off_by=actor.id,
                      target_user_id=target.id if target else None, reason=reason or None,
                      snapshot=deterministic_snapshot(live_facts, lane_items, fix))
    session.status = target_status
    session.escalation_reason = reason or None
    session.escalation_package = {"handoff_id": str(handoff.id), "reason": reason or None,
                                  "snapshot": handoff.snapshot}
    copies = await _card_destinations(uow, handoff.id, actor, target)
    handoff.snapshot = {**handoff.snapshot, "copies": [c for c, _ in copies["cards"]]}
    await uow.handoffs.add(handoff)
    await uow.sessions.save(session)
    view = await escalation_view(uow, session, handoff)
    for copy, dest in copies["cards"]:
        await uow.send(dest, view, op="upsert", card_key=copy["card_key"], lane_key=copy["lane_key"])
    note = ("Escalated to seniors" + (f"; {target.display_name} was messaged directly" if target else "") + "."
            + (f" Reason: {reason}" if reason else ""))
    if delivery_note(handoff):
        note += "\n" + delivery_note(handoff)
    await cards.publish_header(uow, session)
    await cards.post_text(uow, session, note)
    await uow.enqueue(SUMMARY_JOB, {"handoff_id": str(handoff.id)}, dedupe_key=f"summary:{handoff.id}")
    await uow.enqueue(REPING_JOB, {"handoff_id": str(handoff.id), "slot": 1}, dedupe_key=f"reping:{handoff.id}:1",
                      delay_s=reping_minutes * 60)
    if session.psa_ticket_id and session.psa_connection_id:
        await uow.enqueue(PSA_ESCALATION_JOB, {"session_id": str(session.id), "handoff_id": str(handoff.id)},
                          lane_key=f"psa:{session.id}", dedupe_key=f"psa-escalation:{handoff.id}")
    return handoff


def check_target(actor: Person, target: Person | None) -> None:
    """A named target gets a DM with Pick up, so it must be someone who can pick it up."""
    if target is None:
        return
    if target.id == actor.id:
        raise InvalidInput("Name a senior other than yourself, or escalate without a name.", field="reason")
    if not target.role.at_least(Role.SENIOR):
        raise InvalidInput(f"{target.display_name} is not a senior or admin, so they can't pick it up. Escalate "
                           "without naming them, or ask an admin to make them a senior.", field="reason")


def delivery_note(handoff: Handoff) -> str | None:
    """What the escalating engineer must know about where the card went (§13.24)."""
    copies = handoff.snapshot.get("copies", [])
    if not copies:
        return NOBODY_NOTE
    if not any(not c["destination"].get("user_id") for c in copies):
        return NO_ROUTE_NOTE
    return None


async def _card_destinations(uow: UnitOfWork, handoff_id: uuid.UUID, actor: Person, target: Person | None) -> dict:
    """Every route of the account gets a copy; a named senior also gets a DM; with no route,
    seniors and admins (other than the escalating engineer) get DMs."""
    out: list[tuple[dict[str, str], Destination]] = []
    routes = await uow.routes.all()
    for r in routes:
        dest = Destination(platform=r["platform"], workspace_id=r["workspace_id"], channel_id=r["channel_id"])
        out.append(({"card_key": f"esc:{handoff_id}:{r['id']}", "lane_key": dest.lane_key(),
                     "destination": dest.as_dict()}, dest))
    dm_people: list[Person] = []
    if target is not None:
        dm_people.append(target)
    if not routes:
        dm_people += [p for p in await uow.people.with_role_at_least(Role.SENIOR) if p.id != actor.id]
    seen: set[uuid.UUID] = set()
    for person in dm_people:
        if person.id in seen:
            continue
        seen.add(person.id)
        for ident in await uow.people.identities_of(person.id):
            dest = Destination(platform=ident.platform.value, workspace_id=ident.workspace_id,
                               user_id=ident.external_user_id)
            out.append(({"card_key": f"escdm:{handoff_id}:{person.id}:{ident.platform.value}:{ident.workspace_id}",
                         "lane_key": dest.lane_key(),
                         "destination": dest.as_dict()}, dest))
    return {"cards": out, "routed": bool(routes)}


def _resolve_copies(handoff: Handoff) -> list[tuple[dict[str, Any], Destination]]:
    return [(copy, Destination(**copy["destination"])) for copy in handoff.snapshot.get("copies", [])]


async def publish_escalation_cards(uow: UnitOfWork, session: Session, handoff: Handoff) -> None:
    view = await escalation_view(uow, session, handoff)
    for copy, dest in _resolve_copies(handoff):
        await uow.send(dest, view, op="upsert", card_key=copy["card_key"], lane_key=copy["lane_key"])


async def escalation_view(uow: UnitOfWork, session: Session, handoff: Handoff, status_note: str | None = None,
                          psa_note: str | None = None) -> EscalationView:
    by = await uow.people.get(handoff.handed_off_by)
    claimer = await uow.people.get(handoff.claimed_by) if handoff.claimed_by else None
    if handoff.claimed_by:
        state = "claimed"
    elif handoff.closed_at is not None or session.status not in OPEN_STATUSES:
        state = "closed"
    else:
        state = {SummaryStatus.PENDING: "analyzing", SummaryStatus.READY: "ready",
                 SummaryStatus.FAILED: "failed"}[handoff.summary_status]
    buttons = []
    if state in ("analyzing", "ready", "failed"):
        buttons.append(Button(action=Action.CLAIM, label="Pick up", style="primary",
                              value={"handoff_id": str(handoff.id), "session_id": str(session.id)}))
    if state == "closed" and status_note is None:
        status_note = f"Session is {session.status.value}; no pick-up needed."
    return EscalationView(
        handoff_id=str(handoff.id), session_id=str(session.id), title=session.title or "(untitled)", state=state,
        handed_off_by=by.display_name if by else None, reason=handoff.reason,
        ticket_ref=f"CW #{session.psa_ticket_id}" if session.psa_ticket_id else None,
        step_count=await uow.sessions.count_steps(session.id),
        summary_prose=handoff.summary_prose, what_we_know=handoff.what_we_know or [],
        likely_cause=handoff.likely_cause, suggested_steps=handoff.suggested_steps or [],
        confidence=handoff.confidence,
        snapshot={k: v for k, v in handoff.snapshot.items() if k != "copies"},
        claimed_by=claimer.display_name if claimer else None, claimed_at=handoff.claimed_at,
        status_note=status_note, psa_note=psa_note or handoff.snapshot.get("psa_note"), buttons=buttons,
    )


# ----------------------------------------------------------------------------- summary job
async def run_summary(ctx: JobContext, llm: LanguageModel, timeout_s: float) -> None:
    """§6.3: one structured call within the budget; on failure the card shows the snapshot."""
    hid = uuid.UUID(ctx.payload["handoff_id"])
    async with ctx.unit() as uow:
        handoff = await uow.handoffs.get(hid)
        if handoff is None:
            await ctx.complete(uow)
            return
        session = await uow.sessions.get(handoff.session_id)
        bundle = escalation_summary_input(session, await uow.facts.live(session.id),
                                          await uow.fixes.active(session.id), await uow.lane.all(session.id),
                                          reason=handoff.reason)
    summary: EscalationSummary | None = None
    error = None
    if llm.configured:
        try:
            async with asyncio.timeout(timeout_s):
                reply = await llm.generate(GenerateRequest(task="escalation_summary", system=ESCALATION_SUMMARY_PROMPT,
                                                           user_text=bundle, max_tokens=1400,
                                                           schema=EscalationSummary, timeout_s=timeout_s))
            summary = reply.data  # type: ignore[assignment]
        except Exception as exc:  # whatever the AI does, the card must leave "Analyzing…" (§6.3)
            error = exc
    else:
        error = UpstreamFailure("AI not configured")
    async with ctx.unit() as uow:
        handoff = await uow.handoffs.get(hid, lock=True)
        session = await uow.sessions.get(handoff.session_id)
        if summary is not None:
            handoff.summary_status = SummaryStatus.READY
            handoff.summary_prose = summary.summary_prose
            handoff.what_we_know = summary.what_we_know
            handoff.likely_cause = summary.likely_cause
            handoff.suggested_steps = summary.suggested_steps
            handoff.confidence = summary.confidence
        else:
            log.warning("escalation summary unavailable", extra={"handoff_id": str(hid), "error": repr(error)})
            handoff.summary_status = SummaryStatus.FAILED
        await uow.handoffs.save(handoff)
        await publish_escalation_cards(uow, session, handoff)
        if handoff.claimed_by is not None:  # picked up while analyzing: the context card gains the summary
            senior = await uow.people.get(handoff.claimed_by)
            await post_context_card(uow, session, handoff, senior=senior, card_key=f"handoff:{handoff.id}")
        await ctx.complete(uow)


# ----------------------------------------------------------------------------- claim
async def claim(uow: UnitOfWork, handoff_id: uuid.UUID, actor: Person) -> tuple[Handoff, Session, bool]:
    """§6.5: one atomic conditional UPDATE; idempotent for the winner. Returns (handoff, session, won_now)."""
    handoff = await uow.handoffs.get(handoff_id)
    if handoff is None:
        raise NotFound("Escalation not found.")
    if handoff.handed_off_by == actor.id:
        raise Forbidden(SELF_CLAIM_RULE)
    require_role(actor, Role.SENIOR, CLAIM_RULE)
    if handoff.claimed_by == actor.id:
        return handoff, await uow.sessions.get(handoff.session_id), False
    if handoff.claimed_by is not None:
        raise await _already_claimed(uow, handoff)
    session = await uow.sessions.get(handoff.session_id, lock=True)
    # Racing seniors queue on the session lock; each must see the claim that committed while it
    # waited (and the session it made active) as "already claimed", not as "no longer open".
    handoff = await uow.handoffs.get(handoff_id)
    if handoff.claimed_by == actor.id:
        return handoff, session, False
    if handoff.claimed_by is not None:
        raise await _already_claimed(uow, handoff)
    if session.status not in OPEN_STATUSES or handoff.closed_at:
        raise Conflict(f"This escalation is no longer open: the session is {session.status.value}.",
                       status=session.status.value)
    claimed_at = await uow.handoffs.try_claim(handoff.id, actor.id)
    if claimed_at is None:
        handoff = await uow.handoffs.get(handoff_id)
        if handoff.claimed_by == actor.id:
            return handoff, session, False
        raise await _already_claimed(uow, handoff)
    # Re-read: the summary job may have stored the AI fields while we waited on the row.
    handoff = await uow.handoffs.get(handoff_id)
    check_transition(session, "claim")
    session.status = SessionStatus.ACTIVE
    session.escalated_to_id = actor.id
    await uow.sessions.save(session)
    await uow.steps.add(session.id, "action", actor.id, {"pickup": str(handoff.id)})
    await publish_escalation_cards(uow, session, handoff)
    await cards.publish_header(uow, session)
    await post_context_card(uow, session, handoff, senior=actor, card_key=f"handoff:{handoff.id}")
    return handoff, session, True


async def _already_claimed(uow: UnitOfWork, handoff: Handoff) -> Conflict:
    winner = await uow.people.get(handoff.claimed_by)
    name = winner.display_name if winner else "someone"
    return Conflict(f"Already claimed by {name} {ago(handoff.claimed_at)}.", winner_id=str(handoff.claimed_by),
                    winner_name=name, claimed_at=handoff.claimed_at.isoformat() if handoff.claimed_at else None)


async def context_view(uow: UnitOfWork, session: Session, handoff: Handoff, senior: Person | None,
                       show_steps: bool = True) -> HandoffContextView:
    by = await uow.people.get(handoff.handed_off_by)
    lane_items = await uow.lane.all(session.id)
    fix = await uow.fixes.active(session.id)
    live = await uow.facts.live(session.id)
    mention = None
    if senior is not None and session.thread is not None:
        mention = Mention(name=senior.display_name,
                          external_id=await external_id_for(uow, senior.id, session.thread.platform.value))
    steps = handoff.suggested_steps or []
    buttons = []
    if show_steps and not handoff.snapshot.get("steps_used"):
        buttons = [Button(action=Action.SUGGESTED_STEP, label=step[:70], value={
            "handoff_id": str(handoff.id), "session_id": str(session.id), "i": str(i)}) for i, step in enumerate(steps[:5])]
        if buttons:
            buttons.append(Button(action=Action.HIDE_STEPS, label="Hide", value={
                "handoff_id": str(handoff.id), "session_id": str(session.id)}))
    return HandoffContextView(
        handoff_id=str(handoff.id), session_id=str(session.id), senior=mention,
        handed_off_by=by.display_name if by else None,
        summary_prose=handoff.summary_prose or ("AI summary unavailable — see the facts and what was tried."
                                                if handoff.summary_status == SummaryStatus.FAILED else None),
        confidence=handoff.confidence,
        what_we_know=handoff.what_we_know or [f.text for f in live],
        tried=[line.removeprefix("- ") for line in tried_lines(lane_items, fix)],
        likely_cause=handoff.likely_cause, next_steps=steps, buttons=buttons,
    )


async def post_context_card(uow: UnitOfWork, session: Session, handoff: Handoff, senior: Person | None,
                            card_key: str | None = None) -> None:
    view = await context_view(uow, session, handoff, senior)
    await uow.send(cards.session_destination(session), view, op="upsert" if card_key else "post",
                   card_key=card_key, lane_key=cards.session_lane_key(session.id))


async def use_suggested_step(uow: UnitOfWork, session: Session, handoff: Handoff, actor: Person, index: int) -> None:
    """A click posts that step as the senior's message and runs a turn; the quick replies go."""
    steps = handoff.suggested_steps or []
    if handoff.snapshot.get("steps_used"):
        raise Conflict("Those suggested steps were already used; talk to FlowPilot in the thread.")
    if not 0 <= index < len(steps):
        raise NotFound("That suggested step is no longer available.")
    await hide_steps(uow, session, handoff, actor)
    await turns.submit_message(uow, session, actor, steps[index])


async def hide_steps(uow: UnitOfWork, session: Session, handoff: Handoff, actor: Person) -> None:
    if not session.is_owner(actor.id):
        raise Forbidden("Only the engineer or the senior on this session can use its suggested steps.")
    handoff.snapshot = {**handoff.snapshot, "steps_used": True}
    await uow.handoffs.save(handoff)
    claimer = await uow.people.get(handoff.claimed_by) if handoff.claimed_by else None
    view = await context_view(uow, session, handoff, claimer, show_steps=False)
    await uow.send(cards.session_destination(session), view, op="upsert", card_key=f"handoff:{handoff.id}",
                   lane_key=cards.session_lane_key(session.id))


async def close_open_handoffs(uow: UnitOfWork, session: Session) -> None:
    """Resolve/close stops re-pings and updates every copy of an unclaimed card."""
    latest = await uow.handoffs.latest_for_session(session.id)
    handoff = await uow.handoffs.get(latest.id, lock=True) if latest is not None else None
    if handoff is not None and handoff.claimed_by is None and handoff.closed_at is None:
        handoff.closed_at = await uow.now()
        await uow.handoffs.save(handoff)
        await publish_escalation_cards(uow, session, handoff)


# ----------------------------------------------------------------------------- queue, metrics, re-pings
async def queue(uow: UnitOfWork, actor: Person) -> ListView:
    items = []
    now = await uow.now()
    can_claim = actor.role.at_least(Role.SENIOR)
    for h in await uow.handoffs.open_queue(exclude_person=actor.id):
        session = await uow.sessions.get(h.session_id)
        by = await uow.people.get(h.handed_off_by)
        text = f"{session.title or '(untitled)'} — from {by.display_name if by else '?'}, {ago(h.created_at, now)}"
        if h.reason:
            text += f" — {h.reason}"
        buttons = [Button(action=Action.CLAIM, label="Pick up", style="primary",
                          value={"handoff_id": str(h.id), "session_id": str(session.id)})] if can_claim else []
        items.append(ListItem(text=text, buttons=buttons))
    return ListView(title="Unclaimed escalations (oldest first)", items=items, empty_text="No unclaimed escalations.")


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    value = float(value)
    if value < 120:
        return f"{value:.0f}s"
    if value < 7200:
        return f"{value / 60:.0f}m"
    return f"{value / 3600:.1f}h"


async def metrics_text(uow: UnitOfWork, actor: Person) -> str:
    require_role(actor, Role.SENIOR, "Escalation metrics are for seniors and admins.")
    lines = ["*Escalation metrics*"]
    for days in (7, 30):
        m = await uow.handoffs.claim_metrics(days)
        lines.append(
            f"Last {days} days: {m['escalations']} escalations · time to claim p50 {_fmt_seconds(m['claim_p50'])}, "
            f"p90 {_fmt_seconds(m['claim_p90'])} (n={m['claimed']}) · time to first action after claim p50 "
            f"{_fmt_seconds(m['action_p50'])}, p90 {_fmt_seconds(m['action_p90'])} (n={m['acted']})")
    lines.append("Minutes recovered = your manual baseline minus these in-product times.")
    return "\n".join(lines)


async def run_reping(ctx: JobContext, minutes: float, max_pings: int) -> None:
    """A delayed job per slot: re-announce an unclaimed escalation (Slack @here / Teams channel
    mention) and schedule the next slot with a growing interval. The job queue's SKIP LOCKED
    claim and the per-slot dedupe key make it exactly once per slot across replicas."""
    slot = int(ctx.payload["slot"])
    async with ctx.unit() as uow:
        # The row lock orders this against a claim: a claim that commits first stops the ping.
        handoff = await uow.handoffs.get(uuid.UUID(ctx.payload["handoff_id"]), lock=True)
        if handoff is not None and handoff.open and slot <= max_pings:
            session = await uow.sessions.get(handoff.session_id)
            if session is not None and session.status in (SessionStatus.ESCALATED, SessionStatus.REQUESTING_ESCALATION):
                await _reping(uow, session, handoff, slot)
                handoff.reping_count = slot
                await uow.handoffs.save(handoff)
                if slot < max_pings:
                    await uow.enqueue(REPING_JOB, {"handoff_id": str(handoff.id), "slot": slot + 1},
                                      dedupe_key=f"reping:{handoff.id}:{slot + 1}", delay_s=minutes * 60 * (slot + 1))
        await ctx.complete(uow)


async def _reping(uow: UnitOfWork, session: Session, handoff: Handoff, slot: int) -> None:
    from core.views import TextView

    for copy, dest in _resolve_copies(handoff):
        if dest.user_id:
            continue
        view = TextView(kind="notice", mention_channel=True,
                        text=f"Still unclaimed after {ago(handoff.created_at)}: “{session.title}”. Can someone pick it up?",
                        buttons=[Button(action=Action.CLAIM, label="Pick up", style="primary",
                                        value={"handoff_id": str(handoff.id), "session_id": str(session.id)})])
        await uow.send(dest, view, op="post", lane_key=copy["lane_key"],
                       dedupe_key=f"reping:{handoff.id}:{slot}:{copy['card_key']}")
