"""Suggested fixes: supersession, mark applied, the outcome machine and AI outcome proposals
(DOMAIN §2.5, §3.2–§3.6). Every accepted write that DOMAIN §3.8 lists bumps `state_version`
in the same transaction; nothing else does."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from core.errors import Conflict, InvalidInput, NotFound
from core.model import Fix, FixStatus, Session
from core.ports import UnitOfWork

log = logging.getLogger(__name__)
F = FixStatus

NOTES_MAX = 500
SUPERSEDED_MSG = "This fix was superseded by a newer suggestion."

# from -> outcomes allowed (terminal statuses allow nothing)
OUTCOME_TRANSITIONS: dict[FixStatus, frozenset[FixStatus]] = {
    F.PROPOSED: frozenset({F.APPLIED_SUCCESS, F.APPLIED_FAILED, F.APPLIED_PARTIAL, F.APPLIED_PENDING, F.DISMISSED}),
    F.APPLIED_PARTIAL: frozenset({F.APPLIED_SUCCESS, F.APPLIED_FAILED, F.APPLIED_PARTIAL, F.APPLIED_PENDING,
                                  F.DISMISSED}),
    F.APPLIED_PENDING: frozenset({F.APPLIED_SUCCESS, F.APPLIED_FAILED, F.APPLIED_PARTIAL, F.APPLIED_PENDING,
                                  F.DISMISSED}),
    F.APPLIED_SUCCESS: frozenset(),
    F.APPLIED_FAILED: frozenset(),
    F.DISMISSED: frozenset(),
}

PROPOSAL_TO_STATUS = {"success": F.APPLIED_SUCCESS, "failure": F.APPLIED_FAILED, "partial": F.APPLIED_PARTIAL}


@dataclass(frozen=True)
class NewFix:
    title: str
    description: str
    confidence: int
    script_template_slug: str | None = None
    ai_drafted_script: str | None = None
    ai_drafted_parameters: dict | None = None


async def get_fix(uow: UnitOfWork, session: Session, fix_id: uuid.UUID, *, lock: bool = True,
                  allow_superseded: bool = False) -> Fix:
    fix = await uow.fixes.get(fix_id, lock=lock)
    if fix is None or fix.session_id != session.id:
        raise NotFound("Suggested fix not found.")
    if fix.superseded_at is not None and not allow_superseded:
        raise Conflict(SUPERSEDED_MSG)
    return fix


async def active_fix(uow: UnitOfWork, session: Session) -> Fix:
    fix = await uow.fixes.active(session.id)
    if fix is None:
        raise NotFound("No active suggested fix for this session.")
    return fix


async def supersede_with(uow: UnitOfWork, session: Session, new: NewFix) -> tuple[Fix, list[uuid.UUID]]:
    """§3.5: supersede every active fix whatever its status, insert the new one, bump."""
    superseded = await uow.fixes.supersede_active(session.id)
    if new.script_template_slug:
        # No script library yet (later phase): an unknown slug counts as no match.
        log.warning("unknown script template slug", extra={"slug": new.script_template_slug})
    fix = Fix(
        id=uuid.uuid4(), session_id=session.id, title=new.title[:200], description=new.description,
        confidence_pct=max(0, min(100, int(new.confidence))),
        ai_drafted_script=new.ai_drafted_script,
        ai_drafted_parameters=new.ai_drafted_parameters if isinstance(new.ai_drafted_parameters, dict) else None,
    )
    await uow.fixes.add(fix)
    session.state_version = await uow.sessions.bump_version(session.id)
    return fix, superseded


async def mark_applied(uow: UnitOfWork, session: Session, fix_id: uuid.UUID) -> tuple[Fix, bool]:
    """§3.3. Returns (fix, changed). Idempotent from Verifying; "Finish it" from partial."""
    fix = await get_fix(uow, session, fix_id)
    now = await uow.now()
    if fix.status == F.PROPOSED:
        if fix.applied_at is not None:
            return fix, False
        fix.applied_at = now
    elif fix.status == F.APPLIED_PARTIAL:
        fix.status = F.PROPOSED
        fix.applied_at = now
    else:
        raise Conflict(f"Apply is only valid from 'proposed' or 'applied_partial'; fix is already '{fix.status.value}'.")
    await uow.fixes.save(fix)
    session.state_version = await uow.sessions.bump_version(session.id)
    return fix, True


async def record_outcome(uow: UnitOfWork, session: Session, fix_id: uuid.UUID, outcome: FixStatus | str,
                         notes: str | None = None) -> Fix:
    """§3.2 in its check order: found → superseded → notes required → terminal → write."""
    try:
        outcome = FixStatus(outcome)
    except ValueError:
        raise InvalidInput(f"Unknown outcome '{outcome}'.", field="outcome") from None
    if outcome == F.PROPOSED:
        raise InvalidInput("An outcome can't be set back to proposed.", field="outcome")
    fix = await get_fix(uow, session, fix_id)
    notes = (notes or "").strip()
    if len(notes) > NOTES_MAX:
        raise InvalidInput(f"Notes are limited to {NOTES_MAX} characters (got {len(notes)}).", field="notes")
    if outcome == F.APPLIED_PARTIAL and not notes:
        raise InvalidInput("notes are required when outcome is applied_partial", field="notes")
    if outcome == F.APPLIED_PENDING and not notes:
        raise InvalidInput("a reason is required when outcome is applied_pending", field="notes")
    if outcome not in OUTCOME_TRANSITIONS[fix.status]:
        raise Conflict(f"Fix is already in terminal status '{fix.status.value}'.", status=fix.status.value)
    now = await uow.now()
    if outcome != F.DISMISSED and fix.applied_at is None:
        fix.applied_at = now
    if outcome in (F.APPLIED_SUCCESS, F.APPLIED_FAILED):
        fix.verified_at = now
    if outcome == F.APPLIED_FAILED:
        fix.failure_reason = notes or None
    elif outcome == F.APPLIED_PARTIAL:
        fix.partial_notes = notes
    elif outcome == F.APPLIED_PENDING:
        fix.pending_reason = notes
    fix.status = outcome
    fix.ai_outcome_proposal = None
    await uow.fixes.save(fix)
    session.state_version = await uow.sessions.bump_version(session.id)
    return fix


async def clear_proposal(uow: UnitOfWork, session: Session, fix_id: uuid.UUID) -> Fix:
    """§3.4 "Not yet": presentation state only; idempotent; no bump."""
    fix = await get_fix(uow, session, fix_id)
    if fix.ai_outcome_proposal is not None:
        fix.ai_outcome_proposal = None
        await uow.fixes.save(fix)
    return fix


async def store_proposal(uow: UnitOfWork, session: Session, fix_id: str, outcome: str,
                         reason: str | None) -> Fix | None:
    """A [FIX_OUTCOME] marker: recorded as a proposal only (no status change, no bump). Ignored
    (logged) when the id is not the session's active, non-terminal fix."""
    try:
        fid = uuid.UUID(str(fix_id))
    except ValueError:
        log.info("fix outcome proposal names an invalid fix id", extra={"fix_id": fix_id})
        return None
    fix = await uow.fixes.get(fid, lock=True)
    if fix is None or fix.session_id != session.id or fix.superseded_at is not None or fix.status.terminal:
        log.info("fix outcome proposal ignored", extra={"fix_id": fix_id})
        return None
    fix.ai_outcome_proposal = {"fix_id": str(fix.id), "outcome": outcome, "reason": reason}
    await uow.fixes.save(fix)
    return fix


async def confirm_proposal(uow: UnitOfWork, session: Session, fix_id: uuid.UUID, notes: str | None = None,
                           outcome: str | None = None) -> Fix:
    """The engineer confirms the AI's proposal (§13.8); partial needs notes (pre-filled with the
    AI's reason by the card)."""
    fix = await get_fix(uow, session, fix_id)
    proposal = fix.ai_outcome_proposal or {}
    chosen = outcome or proposal.get("outcome")
    if chosen not in PROPOSAL_TO_STATUS:
        raise Conflict("There is no outcome proposal to confirm on this fix.")
    return await record_outcome(uow, session, fix_id, PROPOSAL_TO_STATUS[chosen], notes)


def card_state(fix: Fix) -> str:
    """§3.6 derived fix-card state (computed, never stored). The nudge is a separate prompt."""
    if fix.superseded_at is not None:
        return "superseded"
    if fix.status == F.DISMISSED:
        return "dismissed"
    if fix.status == F.APPLIED_SUCCESS:
        return "worked"
    if fix.status == F.APPLIED_FAILED:
        return "failed"
    if fix.ai_outcome_proposal:
        return "ai_confirming"
    if fix.status == F.APPLIED_PARTIAL:
        return "partial"
    if fix.status == F.APPLIED_PENDING:
        return "pending"
    return "verifying" if fix.applied_at is not None else "proposed"
