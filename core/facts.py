"""What we know: facts with provenance (DOMAIN §2.4, §3.7). Every create, edit and delete bumps
`state_version`."""
from __future__ import annotations

import uuid

from core.errors import Forbidden, InvalidInput, NotFound
from core.model import Fact, FactSource, LaneKind, Session
from core.ports import UnitOfWork

TEXT_MAX = 2000
SUMMARY_MAX = 200
RAW_MAX = 10000
NO_FACT_MSG = ("Synthesizer found no substantive fact in the input. Edit the input or supply the fact "
               "text directly.")


def _text(value: str | None, field: str = "text") -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidInput("The fact text can't be empty.", field=field)
    if len(value) > TEXT_MAX:
        raise InvalidInput(f"A fact is limited to {TEXT_MAX} characters (got {len(value)}).", field=field)
    return value


def _summary(value: str | None) -> str | None:
    value = (value or "").strip()
    if len(value) > SUMMARY_MAX:
        raise InvalidInput(f"The provenance label is limited to {SUMMARY_MAX} characters.", field="summary")
    return value or None


async def list_facts(uow: UnitOfWork, session: Session) -> list[Fact]:
    return await uow.facts.live(session.id)


async def add_note(uow: UnitOfWork, session: Session, author_id: uuid.UUID, text: str,
                   summary: str | None = None, source_ref: uuid.UUID | None = None) -> Fact:
    if source_ref is not None:
        raise InvalidInput("A note can't point at a task-lane item.", field="source_ref")
    fact = Fact(id=uuid.uuid4(), session_id=session.id, text=_text(text), source_type=FactSource.USER_NOTE,
                created_by=author_id, source_summary=_summary(summary))
    await uow.facts.add(fact)
    session.state_version = await uow.sessions.bump_version(session.id)
    return fact


async def _get_live(uow: UnitOfWork, session: Session, fact_id: uuid.UUID) -> Fact:
    fact = await uow.facts.get(fact_id, lock=True)
    if fact is None or fact.session_id != session.id or fact.deleted_at is not None:
        raise NotFound("Fact not found.")
    return fact


async def edit(uow: UnitOfWork, session: Session, fact_id: uuid.UUID, text: str | None = None,
               summary: str | None = None) -> Fact:
    fact = await _get_live(uow, session, fact_id)
    if not fact.editable:
        raise Forbidden("Facts that come from a question or a diagnostic check can't be edited: edit the "
                        "source answer or output instead, or delete the fact.")
    if text is None and summary is None:
        raise InvalidInput("Give a new text or a new provenance label.", field="text")
    if text is not None:
        fact.text = _text(text)
    if summary is not None:
        fact.source_summary = _summary(summary)
    await uow.facts.save(fact)
    session.state_version = await uow.sessions.bump_version(session.id)
    return fact


async def delete(uow: UnitOfWork, session: Session, fact_id: uuid.UUID) -> Fact:
    fact = await _get_live(uow, session, fact_id)
    fact.deleted_at = await uow.now()
    await uow.facts.save(fact)
    session.state_version = await uow.sessions.bump_version(session.id)
    return fact


async def promote(uow: UnitOfWork, session: Session, author_id: uuid.UUID, source_type: FactSource | str,
                  source_ref: uuid.UUID | None, text: str, summary: str | None = None) -> Fact:
    """A fact from a lane item or an AI synthesis (also used by [PROMOTE] markers). A missing
    `source_ref` target is tolerated (rewording orphans references, DOMAIN pitfall 10)."""
    try:
        source_type = FactSource(source_type)
    except ValueError:
        raise InvalidInput(f"Unknown fact source '{source_type}'.", field="source_type") from None
    if source_type == FactSource.USER_NOTE:
        raise InvalidInput("Notes are added with 'note', not promoted.", field="source_type")
    if source_type == FactSource.AI_SYNTHESIS and source_ref is not None:
        raise InvalidInput("An AI synthesis can't point at a task-lane item.", field="source_ref")
    fact = Fact(id=uuid.uuid4(), session_id=session.id, text=_text(text), source_type=source_type,
                created_by=author_id, source_ref=source_ref, source_summary=_summary(summary))
    await uow.facts.add(fact)
    session.state_version = await uow.sessions.bump_version(session.id)
    return fact


def check_promote_inputs(proposed_text: str | None, raw_input: str | None) -> None:
    given = [v for v in (proposed_text, raw_input) if v is not None and v.strip()]
    if len(given) != 1:
        raise InvalidInput("Give exactly one of: the fact text, or the raw answer/output to summarise.")
    if raw_input is not None and len(raw_input) > RAW_MAX:
        raise InvalidInput(f"Raw input is limited to {RAW_MAX} characters.", field="raw_input")


def source_type_for(kind: LaneKind) -> FactSource:
    return FactSource.QUESTION if kind == LaneKind.QUESTION else FactSource.DIAGNOSTIC_CHECK
