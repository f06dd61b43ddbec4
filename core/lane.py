"""The task lane: questions and diagnostic checks as rows with stable ids (DOMAIN §2.3, §4.4).

Ids are assigned by the server. An item whose exact text (question) or label (check) appears
again in the next turn keeps its id and its answer; items the turn drops leave the lane. A
turn with neither questions nor actions clears the lane. Lane changes never bump
`state_version` (DOMAIN §3.8)."""
from __future__ import annotations

import uuid
from collections.abc import Sequence

from core.errors import Conflict, InvalidInput, NotFound
from core.model import LaneItem, LaneKind, LaneStatus, Session
from core.ports import UnitOfWork

RESPONSE_MAX = 10000


async def replace_lane(uow: UnitOfWork, session: Session, questions: Sequence, actions: Sequence) -> list[LaneItem]:
    current = await uow.lane.active(session.id)
    by_key = {(i.kind, i.text): i for i in current}
    seen: set[tuple[LaneKind, str]] = set()
    wanted: list[LaneItem] = []
    # A text repeated within one turn is one item (its first occurrence), not two card rows.
    for q in (q for q in questions if _first(seen, LaneKind.QUESTION, q.text)):
        wanted.append(_merge(by_key, session, LaneKind.QUESTION, q.text, len(wanted), context=q.context))
    n_questions = len(wanted)
    for a in (a for a in actions if _first(seen, LaneKind.CHECK, a.label)):
        wanted.append(_merge(by_key, session, LaneKind.CHECK, a.label, len(wanted) - n_questions,
                             command=a.command, description=a.description, action_type=a.action_type))
    kept = {i.id for i in wanted}
    for item in current:
        if item.id not in kept:
            item.active = False
            await uow.lane.save(item)
    existing = {i.id for i in current}
    for item in wanted:
        if item.id in existing:
            await uow.lane.save(item)
        else:
            await uow.lane.add(item)
    return wanted


def _first(seen: set, kind: LaneKind, text: str) -> bool:
    if (kind, text) in seen:
        return False
    seen.add((kind, text))
    return True


def _merge(by_key: dict, session: Session, kind: LaneKind, text: str, position: int, **fields) -> LaneItem:
    item = by_key.get((kind, text))
    if item is None:
        item = LaneItem(id=uuid.uuid4(), session_id=session.id, kind=kind, text=text)
    item.position = position
    item.active = True
    for name, value in fields.items():
        if value is not None or name == "command":
            setattr(item, name, value)
    return item


async def get_item(uow: UnitOfWork, session: Session, item_id: uuid.UUID, kind: LaneKind | None = None) -> LaneItem:
    item = await uow.lane.get(item_id, lock=True)
    if item is None or item.session_id != session.id or (kind is not None and item.kind != kind):
        raise NotFound("That question or check was not found in this session.")
    if not item.active:
        raise Conflict("That item was replaced by newer questions and checks; use the latest card.")
    return item


def _response(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("The answer can't be empty.", field="text")
    if len(text) > RESPONSE_MAX:
        raise InvalidInput(f"Answers and outputs are limited to {RESPONSE_MAX} characters.", field="text")
    return text


async def respond(uow: UnitOfWork, session: Session, item_id: uuid.UUID, text: str,
                  person_id: uuid.UUID) -> LaneItem:
    """Answer a question, or paste a check's output."""
    item = await get_item(uow, session, item_id)
    item.response = _response(text)
    item.status = LaneStatus.ANSWERED
    item.responded_by = person_id
    await uow.lane.save(item)
    return item


async def set_status(uow: UnitOfWork, session: Session, item_id: uuid.UUID, status: LaneStatus,
                     person_id: uuid.UUID) -> LaneItem:
    item = await get_item(uow, session, item_id)
    if status == LaneStatus.SKIPPED and item.kind != LaneKind.QUESTION:
        raise InvalidInput("Only questions can be skipped.")
    if status in (LaneStatus.DONE, LaneStatus.FAILED) and item.kind != LaneKind.CHECK:
        raise InvalidInput("Only diagnostic checks can be marked done or failed.")
    item.status = status
    item.responded_by = person_id
    await uow.lane.save(item)
    return item


def as_message(item: LaneItem) -> str:
    """How an answer or pasted output reads as the engineer's chat message."""
    if item.kind == LaneKind.QUESTION:
        return f"Answer to \"{item.text}\":\n{item.response}"
    return f"Output of \"{item.text}\":\n{item.response}"
