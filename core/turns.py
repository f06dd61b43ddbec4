"""The chat turn (DOMAIN §4): the engineer's message is stored and acknowledged first; a job
calls the model, parses the markers and persists them in DOMAIN §4.3 order, all in one
transaction with the reply and card updates."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from core import cards, facts, fixes, lane
from core.errors import InvalidInput, ModelNotConfigured
from core.markers import ParsedReply, log_summary, parse_markers
from core.model import Fix, FixStatus, Message, Person, Session, SessionStatus
from core.ports import (
    ChatMessage, ChatRequest, ImageInput, JobContext, LanguageModel, TicketContext, TicketContextProvider,
    UnitOfWork,
)
from core.prompts.chat import CHAT_SYSTEM_PROMPT, build_turn_context, build_user_message
from core.sessions import apply_transition, check_can_chat, require_session
from core.views import Action, Button, InputSpec

log = logging.getLogger(__name__)

TURN_JOB = "ai_turn"
MESSAGE_MAX = 12000
NUDGE_EVERY = 3
AI_UNAVAILABLE = ("The AI is unavailable right now, so FlowPilot could not answer. Your message is kept: "
                  "send another message later to try again. Notes, fix outcomes, escalation and resolve "
                  "keep working.")
AI_NOT_CONFIGURED = ("FlowPilot's AI is not configured on this server (no ANTHROPIC_API_KEY), so it can't "
                     "answer. Your message is kept. Notes, fix outcomes, escalation, claim and resolve with "
                     "deterministic notes keep working.")
# Later turns of a session that already got AI_NOT_CONFIGURED get this one line instead. The flag
# lives on the session (intake_content), so every replica agrees on "already explained".
AI_OFF_SHORT = "AI is off (no ANTHROPIC_API_KEY); message kept."
AI_OFF_EXPLAINED_FLAG = "ai_off_explained"


def turn_lane_key(session_id: uuid.UUID) -> str:
    return f"turn:{session_id}"


def reply_card_key(message_id: uuid.UUID | str) -> str:
    return f"reply:{message_id}"


async def submit_message(uow: UnitOfWork, session: Session, actor: Person, text: str,
                         images: list[dict] | None = None) -> Message:
    """Store the engineer's message, show "thinking…", and enqueue the turn. No model call here."""
    check_can_chat(session, actor)
    text = (text or "").strip()
    if not text and not images:
        raise InvalidInput("Say something for FlowPilot to work with.", field="text")
    if len(text) > MESSAGE_MAX:
        raise InvalidInput(f"That message is too long ({len(text)} characters; the limit is {MESSAGE_MAX}). "
                           "Paste long output through a check's Paste output button or trim it.", field="text")
    if session.status == SessionStatus.PAUSED:
        apply_transition(session, "resume")
        await uow.sessions.save(session)
        await cards.publish_header(uow, session)
    message = Message(id=uuid.uuid4(), session_id=session.id, role="user", content=text or "(image)",
                      author_id=actor.id)
    await uow.messages.add(message)
    if session.escalated_to_id == actor.id:
        await uow.handoffs.mark_first_action(session.id, actor.id)
    payload = {"session_id": str(session.id), "message_id": str(message.id)}
    if images:
        payload["images"] = images[:3]  # removed from the row when the job finishes
    await uow.enqueue(TURN_JOB, payload, lane_key=turn_lane_key(session.id), dedupe_key=f"turn:{message.id}")
    await cards.post_text(uow, session, "FlowPilot is thinking…", kind="working",
                          card_key=reply_card_key(message.id))
    return message


@dataclass
class TurnDeps:
    llm: LanguageModel
    ticket_context: TicketContextProvider | None = None
    max_tokens: int = 2048
    history_limit: int = 60


async def run_turn(ctx: JobContext, deps: TurnDeps) -> None:
    session_id = uuid.UUID(ctx.payload["session_id"])
    message_id = uuid.UUID(ctx.payload["message_id"])
    async with ctx.unit() as uow:
        session = require_session(await uow.sessions.get(session_id))
        message = await uow.messages.get(message_id)
        if message is None:
            await ctx.complete(uow)
            return
        history = [m for m in await uow.messages.history(session_id, deps.history_limit)
                   if m.created_at is not None and message.created_at is not None
                   and m.created_at < message.created_at and m.id != message.id]
        items = await uow.lane.active(session_id)
        live_facts = await uow.facts.live(session_id)
        fix = await uow.fixes.active(session_id)
    if not deps.llm.configured:  # an expected configuration, not a failure: explain and finish
        await _explain_ai_off(ctx, session_id, message_id)
        return
    ticket = await deps.ticket_context(ctx.account_id, session) if deps.ticket_context and session.psa_ticket_id else None
    request = ChatRequest(
        task="chat",
        system=(CHAT_SYSTEM_PROMPT,),
        history=tuple(ChatMessage(m.role, m.content) for m in history),
        user_text=build_user_message(build_turn_context(items, live_facts, fix, ticket), message.content),
        images=tuple(ImageInput(i["media_type"], i["data_b64"]) for i in ctx.payload.get("images", [])),
        max_tokens=deps.max_tokens,
    )
    reply = await deps.llm.chat(request)
    parsed = parse_markers(reply.text)
    log.info("ai turn parsed", extra={"session_id": str(session_id), "job_id": ctx.job_id,
                                      **log_summary(parsed, reply.text)})
    async with ctx.unit() as uow:
        session = require_session(await uow.sessions.get(session_id, lock=True))
        author = await uow.people.get(message.author_id) if message.author_id else None
        await apply_reply(uow, session, parsed, author_id=(author.id if author else session.user_id))
        await uow.messages.add(Message(id=uuid.uuid4(), session_id=session_id, role="assistant",
                                       content=parsed.display_text or "(no text)"), turn_job_id=ctx.job_id)
        await cards.post_text(uow, session, parsed.display_text or "Here is what to check next.", kind="reply",
                              card_key=reply_card_key(message_id))
        await cards.publish_lane(uow, session)
        await _maybe_nudge(uow, session, message_id)
        await _remember_ticket_client(uow, session, ticket)
        await ctx.complete(uow)


async def apply_reply(uow: UnitOfWork, session: Session, parsed: ParsedReply, author_id: uuid.UUID) -> None:
    """Persist markers in DOMAIN §4.3 order: forks, lane, facts, fix supersession, proposal."""
    if parsed.fork is not None:
        for option in parsed.fork.options:
            await uow.steps.add_branch(session.id, parsed.fork.fork_reason, option.label, option.description)
        if not session.is_branching:
            session.is_branching = True
            await uow.sessions.save(session)
    await lane.replace_lane(uow, session, parsed.questions, parsed.actions)
    for promote in parsed.promotes:
        try:
            await facts.promote(uow, session, author_id, promote.source_type, promote.source_ref, promote.text,
                                promote.summary)
        except InvalidInput as exc:  # losing one fact beats aborting the turn
            log.warning("promote dropped", extra={"session_id": str(session.id), "reason": str(exc)})
    if parsed.suggest_fix is not None:
        s = parsed.suggest_fix
        new_fix, superseded = await fixes.supersede_with(uow, session, fixes.NewFix(
            title=s.title, description=s.description, confidence=s.confidence,
            script_template_slug=s.script_template_slug, ai_drafted_script=s.ai_drafted_script,
            ai_drafted_parameters=s.ai_drafted_parameters))
        for old_id in superseded:
            old = await uow.fixes.get(old_id)
            if old is not None:
                await cards.publish_fix(uow, session, old)
        if superseded:
            await cards.post_text(uow, session, "The previous suggested fix was replaced by a newer suggestion.")
        await cards.publish_fix(uow, session, new_fix)
    if parsed.fix_outcome is not None:
        o = parsed.fix_outcome
        proposed = await fixes.store_proposal(uow, session, o.fix_id, o.outcome, o.reason)
        if proposed is not None:
            await cards.publish_fix(uow, session, proposed)


async def _remember_ticket_client(uow: UnitOfWork, session: Session, ticket: TicketContext | None) -> None:
    """The header names the ticket's company once a turn has read it (no extra PSA call: the
    turn fetched the ticket context anyway). Only a change rewrites the header."""
    client = ticket.ticket.company if ticket is not None else None
    if client and session.intake_content.get("ticket_client") != client:
        session.intake_content = {**session.intake_content, "ticket_client": client}
        await uow.sessions.save(session)
        await cards.publish_header(uow, session)


async def _maybe_nudge(uow: UnitOfWork, session: Session, message_id: uuid.UUID) -> None:
    """§3.6 nudge: after every 3 engineer messages in Verifying with no outcome. Passive."""
    fix: Fix | None = await uow.fixes.active(session.id)
    if fix is None or fix.status != FixStatus.PROPOSED or fix.applied_at is None or fix.ai_outcome_proposal:
        return
    owners = [p for p in (session.user_id, session.escalated_to_id) if p]
    count = await uow.messages.user_messages_since(session.id, fix.applied_at, owners)
    if count == 0 or count % NUDGE_EVERY:
        return
    ids = {"session_id": str(session.id), "fix_id": str(fix.id), "v": str(session.state_version)}
    await cards.post_text(
        uow, session, f"Did “{fix.title}” fix it?", kind="notice", dedupe_key=f"nudge:{fix.id}:{count}",
        buttons=[
            Button(action=Action.FIX_PENDING, label="Still checking", value=ids,
                   input=InputSpec(label="What are you waiting on?", multiline=True, title="Fix outcome")),
            Button(action=Action.FIX_FAILED, label="No", value=ids,
                   input=InputSpec(label="What happened? (optional)", required=False, multiline=True,
                                   title="Fix outcome")),
            Button(action=Action.FIX_WORKED, label="Yes", style="primary", value=ids),
        ])


async def _explain_ai_off(ctx: JobContext, session_id: uuid.UUID, message_id: uuid.UUID) -> None:
    """No model configured: the full explanation once per session, then a one-liner. The
    engineer's message stays in history either way, so a later configured turn sees it."""
    async with ctx.unit() as uow:
        session = require_session(await uow.sessions.get(session_id, lock=True))
        first_time = not session.intake_content.get(AI_OFF_EXPLAINED_FLAG)
        if first_time:
            session.intake_content = {**session.intake_content, AI_OFF_EXPLAINED_FLAG: True}
            await uow.sessions.save(session)
        await cards.post_text(uow, session, AI_NOT_CONFIGURED if first_time else AI_OFF_SHORT, kind="notice",
                              card_key=reply_card_key(message_id))
        await ctx.complete(uow)


async def on_turn_given_up(ctx: JobContext, error: Exception) -> None:
    """After the retry budget (or with no model configured): tell the user plainly; the
    message stays in history."""
    text = AI_NOT_CONFIGURED if isinstance(error, ModelNotConfigured) else AI_UNAVAILABLE
    async with ctx.unit() as uow:
        session = await uow.sessions.get(uuid.UUID(ctx.payload["session_id"]))
        if session is None:
            return
        await cards.post_text(uow, session, text, kind="error",
                              card_key=reply_card_key(ctx.payload["message_id"]))
