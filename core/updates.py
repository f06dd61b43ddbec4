"""Share update (DOMAIN §8), audience variants after an escalation, and fact synthesis for
"promote this raw answer/output" (§5.5). All model calls run in jobs."""
from __future__ import annotations

import logging
import uuid

from core import cards, facts
from core.errors import InvalidInput, Retryable, UpstreamFailure
from core.model import FactSource, LaneItem, Person, Role, Session, SessionStatus, SummaryStatus
from core.ports import GenerateRequest, JobContext, LanguageModel, NOTE_DESCRIPTION, NOTE_INTERNAL, PsaGateway, UnitOfWork
from core.prompts.artifacts import AUDIENCE_VARIANT_PROMPT, FACT_SYNTHESIS_PROMPT, STATUS_UPDATE_PROMPT
from core.prompts.bundles import audience_variant_input, fact_synthesis_input, status_update_bundle
from core.prompts.schemas import parse_synthesized_fact
from core.sessions import require_role
from core.views import Action, Button

log = logging.getLogger(__name__)

UPDATE_JOB = "status_update"
VARIANT_JOB = "audience_variant"
SYNTHESIS_JOB = "fact_synthesis"
AUDIENCE_LABELS = {"ticket_notes": "Ticket notes", "client_update": "Client update", "email_draft": "Email draft"}
SYNTHESIS_WORKING = "Writing a fact from the answer…"
SYNTHESIS_AI_OFF = ("AI is off (no ANTHROPIC_API_KEY), so FlowPilot can't write the fact for you: type the "
                    "fact text in “Add to What we know” instead.")


def audience_buttons(session: Session, handoff_id: uuid.UUID) -> list[Button]:
    return [Button(action=Action.AUDIENCE, label=label,
                   value={"session_id": str(session.id), "handoff_id": str(handoff_id), "audience": key})
            for key, label in AUDIENCE_LABELS.items()]


async def request_update(uow: UnitOfWork, session: Session, actor: Person) -> str:
    require_role(actor, Role.ENGINEER, "Viewers can't share updates.")
    if session.status in (SessionStatus.RESOLVED, SessionStatus.ABANDONED):
        raise InvalidInput(f"The session is {session.status.value}; there is nothing in progress to share.")
    update_id = str(uuid.uuid4())  # each update is its own message, even at the same state
    await uow.enqueue(UPDATE_JOB, {"session_id": str(session.id), "by": str(actor.id), "update_id": update_id},
                      lane_key=f"psa:{session.id}")
    await cards.post_text(uow, session, "Writing a progress update…", kind="working",
                          card_key=_update_card_key(session.id, update_id))
    return "Sharing a progress update."


def _update_card_key(session_id, update_id: str | None) -> str:
    return f"update:{session_id}:{update_id}"


def _deterministic_update(live, fix) -> str:
    lines = ["Progress update:"]
    lines += [f"- Confirmed: {f.text}" for f in live] or ["- Nothing confirmed yet."]
    if fix is not None:
        lines.append(f"- Current plan: {fix.title} ({fix.status.value.replace('_', ' ')}).")
    return "\n".join(lines)


async def run_update(ctx: JobContext, llm: LanguageModel, psa: PsaGateway | None) -> None:
    sid = uuid.UUID(ctx.payload["session_id"])
    async with ctx.unit() as uow:
        session = await uow.sessions.get(sid)
        handoff = await uow.handoffs.latest_for_session(sid)
        live = await uow.facts.live(sid)
        fix = await uow.fixes.active(sid)
        lane_items = await uow.lane.all(sid)
        prefs = await uow.settings.preferences()
        connection = await uow.psa.connection(session.psa_connection_id) if session.psa_connection_id else None
    escalated = session.status in (SessionStatus.ESCALATED, SessionStatus.REQUESTING_ESCALATION)
    if (escalated and handoff is not None and handoff.summary_status == SummaryStatus.READY
            and handoff.summary_prose):
        text = handoff.summary_prose  # escalation context: the saved summary, no model call
    elif llm.configured:
        try:
            reply = await llm.generate(GenerateRequest(task="status_update", system=STATUS_UPDATE_PROMPT,
                                                       user_text=status_update_bundle(session, live, fix, lane_items),
                                                       max_tokens=600))
            text = (reply.text or "").strip() or _deterministic_update(live, fix)
        except (Retryable, UpstreamFailure, TimeoutError):
            text = _deterministic_update(live, fix)
    else:
        text = _deterministic_update(live, fix)
    posted = None
    note_type = NOTE_DESCRIPTION if prefs.get("note_visibility") == "customer" else NOTE_INTERNAL
    if not session.psa_ticket_id:
        where = "(No ticket linked: not posted.)"
    elif psa is None or connection is None or not connection["is_active"]:
        where = f"⚠️ Not posted to CW #{session.psa_ticket_id}: no active ConnectWise connection."
    else:
        try:
            note = await psa.system_for(connection).post_note(session.psa_ticket_id, text, note_type)
            posted = note.id
            visibility = "a customer-visible note" if note_type == NOTE_DESCRIPTION else "an internal note"
            where = f"Posted to CW #{session.psa_ticket_id} as {visibility}."
        except Retryable as exc:
            if ctx.attempts < ctx.max_attempts:
                raise  # retried with backoff; nothing was posted
            where = f"⚠️ Not posted to CW #{session.psa_ticket_id}: {exc}"
        except UpstreamFailure as exc:
            where = f"⚠️ Not posted to CW #{session.psa_ticket_id}: {exc}"
    async with ctx.unit() as uow:
        session = await uow.sessions.get(sid)
        await uow.steps.add(sid, "status_update", uuid.UUID(ctx.payload["by"]) if ctx.payload.get("by") else None,
                            {"text": text, "psa_note_id": posted, "note_type": note_type if posted else None})
        await cards.post_text(uow, session, f"*Progress update*\n{text}\n_{where}_",
                              card_key=_update_card_key(sid, ctx.payload.get("update_id")))
        await ctx.complete(uow)


async def audience(uow: UnitOfWork, session: Session, handoff_id: uuid.UUID, audience_key: str) -> str | None:
    """Ticket notes are instant from the saved summary; client/email variants are a cached
    cheap tone rewrite made by a job (posted in the thread for copying, never sent)."""
    handoff = await uow.handoffs.get(handoff_id)
    if handoff is None or handoff.session_id != session.id:
        raise InvalidInput("That escalation is not part of this session.")
    if audience_key not in AUDIENCE_LABELS:
        raise InvalidInput(f"Unknown audience '{audience_key}'.")
    if not handoff.summary_prose:
        raise InvalidInput("The AI summary is not available for this escalation yet.")
    if audience_key == "ticket_notes":
        return handoff.summary_prose
    cached = (handoff.audience_variants or {}).get(audience_key)
    if cached:
        return cached
    # One lane per variant instead of a dedupe key: a second click waits for the first job and
    # finds its cached text, and a variant whose model call failed can be asked for again.
    await uow.enqueue(VARIANT_JOB, {"handoff_id": str(handoff.id), "audience": audience_key},
                      lane_key=f"variant:{handoff.id}:{audience_key}")
    return None


async def run_variant(ctx: JobContext, llm: LanguageModel) -> None:
    hid = uuid.UUID(ctx.payload["handoff_id"])
    key = ctx.payload["audience"]
    async with ctx.unit() as uow:
        handoff = await uow.handoffs.get(hid)
        if handoff is None or (handoff.audience_variants or {}).get(key):
            await ctx.complete(uow)  # an earlier click already made (and posted) it
            return
        prose = handoff.summary_prose
    failure = None
    text = ""
    if not llm.configured:
        failure = "the AI is not configured on this server"
    else:
        try:
            reply = await llm.generate(GenerateRequest(task="audience_variant", system=AUDIENCE_VARIANT_PROMPT,
                                                       user_text=audience_variant_input(prose, key), max_tokens=600))
            text = (reply.text or "").strip()
            failure = None if text else "the model returned nothing"
        except (Retryable, UpstreamFailure, TimeoutError) as exc:
            if isinstance(exc, Retryable) and ctx.attempts < ctx.max_attempts:
                raise
            failure = "the AI is unavailable right now"
    if failure is not None:
        async with ctx.unit() as uow:
            session = await uow.sessions.get(handoff.session_id)
            await cards.post_text(uow, session, f"Couldn't draft the {AUDIENCE_LABELS[key].lower()}: {failure}. "
                                  "Ticket notes (the saved summary) still work; try again later.", kind="error")
            await ctx.complete(uow)
        return
    async with ctx.unit() as uow:
        handoff = await uow.handoffs.get(hid, lock=True)  # save writes the whole row
        handoff.audience_variants = {**(handoff.audience_variants or {}), key: text}
        await uow.handoffs.save(handoff)
        session = await uow.sessions.get(handoff.session_id)
        await cards.post_text(uow, session, f"*{AUDIENCE_LABELS[key]}* (copy it; not sent):\n{text}")
        await ctx.complete(uow)


async def request_synthesis(uow: UnitOfWork, session: Session, actor: Person, item: LaneItem) -> str:
    """Promote an answered item with no fact text typed (§5.5): the fast-tier job writes the fact
    from the item's answer or output, with the item as provenance. The typed-text path stays in
    the Copilot and needs no model."""
    require_role(actor, Role.ENGINEER, "Viewers can't add facts.")
    raw = (item.response or "").strip()
    if not raw:
        raise InvalidInput("This item has no answer or output yet: answer it first, or type the fact text.",
                           field="text")
    facts.check_promote_inputs(None, raw)
    card_key = f"synthesis:{item.id}:{uuid.uuid4().hex[:8]}"  # every request gets its own result line
    await uow.enqueue(SYNTHESIS_JOB, {"session_id": str(session.id), "item_id": str(item.id),
                                      "source_type": facts.source_type_for(item.kind).value, "raw": raw,
                                      "by": str(actor.id), "card_key": card_key})
    await cards.post_text(uow, session, SYNTHESIS_WORKING, kind="working", card_key=card_key)
    return SYNTHESIS_WORKING


async def run_synthesis(ctx: JobContext, llm: LanguageModel) -> None:
    """Promote with raw input: strict JSON or null; 'no fact' is a valid answer."""
    sid = uuid.UUID(ctx.payload["session_id"])
    item_id = uuid.UUID(ctx.payload["item_id"]) if ctx.payload.get("item_id") else None
    source = FactSource(ctx.payload["source_type"])
    card_key = ctx.payload.get("card_key")  # replaces the "Writing a fact…" line when present
    async with ctx.unit() as uow:
        lane_items = await uow.lane.all(sid)
    parsed = parse_synthesized_fact(None)
    if llm.configured:
        try:
            reply = await llm.generate(GenerateRequest(
                task="fact_synthesis", system=FACT_SYNTHESIS_PROMPT, max_tokens=200,
                user_text=fact_synthesis_input(source, ctx.payload["raw"], item_id, lane_items)))
            parsed = parse_synthesized_fact(reply.text)
        except (Retryable, UpstreamFailure, TimeoutError) as exc:
            log.warning("fact synthesis failed", extra={"error": repr(exc)})
    async with ctx.unit() as uow:
        session = await uow.sessions.get(sid, lock=True)
        fact = None
        if parsed.text:
            try:
                fact = await facts.promote(uow, session, uuid.UUID(ctx.payload["by"]), source, item_id,
                                           parsed.text, parsed.summary)
            except InvalidInput as exc:  # e.g. an over-long sentence: treated as "no usable fact"
                log.warning("synthesized fact rejected", extra={"reason": str(exc)})
        if fact is not None:
            await cards.publish_lane(uow, session)
            await cards.post_text(uow, session, f"Added to What we know: {fact.text}", card_key=card_key)
        elif not llm.configured:
            await cards.post_text(uow, session, SYNTHESIS_AI_OFF, kind="error", card_key=card_key)
        else:
            await cards.post_text(uow, session, facts.NO_FACT_MSG, kind="error", card_key=card_key)
        await ctx.complete(uow)


async def on_synthesis_given_up(ctx: JobContext, error: Exception) -> None:
    """The job itself failed for good (not the model, which run_synthesis reports): replace the
    "Writing a fact…" line so the engineer is never left waiting."""
    async with ctx.unit() as uow:
        session = await uow.sessions.get(uuid.UUID(ctx.payload["session_id"]))
        if session is not None:
            await cards.post_text(uow, session, "FlowPilot could not add that fact. Type the fact text in "
                                  "“Add to What we know” instead.", kind="error", card_key=ctx.payload.get("card_key"))
