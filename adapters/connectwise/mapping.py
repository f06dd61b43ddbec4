"""Pure conversions between ConnectWise Manage JSON and our port types. No I/O here."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from core.errors import InvalidInput
from core.ports import NOTE_DESCRIPTION, NOTE_INTERNAL, NOTE_RESOLUTION, PSANote, Ticket

# Exactly one CW flag is true per note type. All three are sent explicitly so a CW-side default
# can never turn an internal note into a customer-visible one.
NOTE_FLAGS: dict[str, dict[str, bool]] = {
    NOTE_RESOLUTION: {"detailDescriptionFlag": False, "internalAnalysisFlag": False, "resolutionFlag": True},
    NOTE_INTERNAL: {"detailDescriptionFlag": False, "internalAnalysisFlag": True, "resolutionFlag": False},
    NOTE_DESCRIPTION: {"detailDescriptionFlag": True, "internalAnalysisFlag": False, "resolutionFlag": False},
}

_TICKET_ID = re.compile(r"[0-9]{1,12}")


def ticket_path_id(ticket_id: str | int) -> str:
    """The numeric id used in CW URLs. Accepts "48291", " #48291 " or 48291; anything else
    would build a different URL, so it is refused before any request is made."""
    cleaned = str(ticket_id).strip().removeprefix("#").strip()
    if not _TICKET_ID.fullmatch(cleaned):
        raise InvalidInput(f"'{ticket_id}' is not a ConnectWise ticket number.", field="ticket_id")
    return str(int(cleaned))


def note_flags(note_type: str) -> dict[str, bool]:
    """The CW flags for one of our note types. Unknown types are refused, never defaulted: a
    wrong default could publish internal analysis to the customer."""
    try:
        return dict(NOTE_FLAGS[note_type])
    except KeyError:
        allowed = ", ".join(sorted(NOTE_FLAGS))
        raise InvalidInput(
            f"Unknown PSA note type '{note_type}' (expected one of: {allowed}).", field="note_type"
        ) from None


def _name(reference: Any) -> str | None:
    """CW embeds related records as `{id, name, ...}` references; any of them may be absent."""
    if isinstance(reference, dict):
        name = reference.get("name") or reference.get("identifier")
        if isinstance(name, str) and name.strip():
            return name.strip()
    return None


def _optional_text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    return None


def parse_cw_datetime(value: Any) -> datetime | None:
    """CW sends ISO 8601 in UTC, e.g. "2025-03-01T14:05:09Z"."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def ticket_from_json(body: Any, requested_id: str) -> Ticket:
    if not isinstance(body, dict):
        raise ValueError("ticket body is not a JSON object")
    status = body.get("status") if isinstance(body.get("status"), dict) else {}
    status_id = status.get("id")
    return Ticket(
        id=str(body.get("id", requested_id)),
        summary=str(body.get("summary") or ""),
        status_id=status_id if isinstance(status_id, int) and not isinstance(status_id, bool) else None,
        status_name=_name(status),
        company=_name(body.get("company")),
        contact=_name(body.get("contact")),
        board=_name(body.get("board")),
        priority=_name(body.get("priority")),
        description=_optional_text(body.get("initialDescription")),
    )


def _note_kind(note: dict[str, Any]) -> str:
    if note.get("internalAnalysisFlag"):
        return "internal analysis"
    if note.get("resolutionFlag"):
        return "resolution"
    if note.get("detailDescriptionFlag"):
        return "description"
    return "note"


def note_line(note: Any) -> str | None:
    """One note as a single context string: "[kind, author, date] text". The header lets the
    model tell the customer's words from a technician's internal analysis."""
    if not isinstance(note, dict):
        return None
    text = _optional_text(note.get("text"))
    if text is None:
        return None
    author = _name(note.get("member")) or _name(note.get("contact")) or _optional_text(note.get("createdBy"))
    created = parse_cw_datetime(note.get("dateCreated"))
    header = [_note_kind(note)]
    if author:
        header.append(author)
    if created:
        header.append(created.strftime("%Y-%m-%d %H:%M UTC"))
    return f"[{', '.join(header)}] {text.strip()}"


def configuration_line(configuration: Any) -> str | None:
    """A ticket configuration (a device or asset) as "name (type)". Older API versions return
    only `{id, deviceIdentifier}`, so each field falls back to the next."""
    if not isinstance(configuration, dict):
        return None
    label = _optional_text(configuration.get("name")) or _optional_text(configuration.get("deviceIdentifier"))
    if label is None:
        config_id = configuration.get("id")
        if config_id is None:
            return None
        label = f"Configuration #{config_id}"
    type_name = _name(configuration.get("type"))
    return f"{label.strip()} ({type_name})" if type_name else label.strip()


def note_from_json(body: Any, text: str, note_type: str) -> PSANote:
    if not isinstance(body, dict) or body.get("id") is None:
        raise ValueError("note body has no id")
    return PSANote(
        id=str(body["id"]),
        text=body.get("text") if isinstance(body.get("text"), str) else text,
        note_type=note_type,
        created_at=parse_cw_datetime(body.get("dateCreated")),
    )


def cw_error_detail(body: Any) -> str | None:
    """CW errors look like `{"code", "message", "errors": [{"code", "message", "field"}]}`; the
    top-level message is generic ("ticket object is invalid"), the useful part is in `errors`."""
    if not isinstance(body, dict):
        return None
    parts: list[str] = []
    message = _optional_text(body.get("message"))
    if message:
        parts.append(message.strip())
    errors = body.get("errors")
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, dict):
                detail = _optional_text(error.get("message"))
                if detail and detail.strip() not in parts:
                    parts.append(detail.strip())
    if not parts:
        return None
    joined = parts[0] if len(parts) == 1 else f"{parts[0]}: {'; '.join(parts[1:])}"
    return joined[:500]
