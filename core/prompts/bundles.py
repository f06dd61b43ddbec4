"""Input bundles for the one-shot generators (DOMAIN §5.2, §5.5, §5.6, §6.3, §8).

A bundle is built from task-lane state only (session header, facts, active fix, checks, scripts),
never from the chat transcript. The fix's outcome fields are always written, set or not: a bundle
without them once produced prose that read as if an applied fix were only proposed.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import InvalidInput
from core.model import Fact, FactSource, Fix, LaneItem, LaneKind, LaneStatus, Session

REDACTED = "[REDACTED]"
NO_QUESTION_MARKER = "(no question was asked; state the fact from the engineer's own text)"
AUDIENCES = ("ticket_notes", "client_update", "email_draft")

# Key names that are secret whatever the schema says: a safety net for schemas that forgot to
# mark a field as a password, so a secret never reaches a note.
_SECRET_KEY_PARTS = ("password", "passwd", "secret", "token", "apikey", "api_key", "private_key")

_RESOLUTION_CLOSING = (
    "Using only the input above, write the resolution note with exactly the four sections "
    "## Problem, ## What we confirmed, ## Root cause and ## Resolution."
)
_ESCALATION_CLOSING = (
    "Using only the input above, write the escalation package with exactly the five sections "
    "## Problem, ## What we've confirmed, ## What we've tried, ## Current hypothesis and "
    "## Suggested next steps."
)
_SUMMARY_CLOSING = "Using only the input above, fill in the escalation summary structure."
_STATUS_CLOSING = "Using only the input above, write the interim status note."


@dataclass(frozen=True)
class ScriptRun:
    """One script generation of the session (oldest first), with its template's parameter schema."""

    template_name: str
    slug: str | None = None
    parameters: Mapping[str, Any] | None = None
    parameters_schema: Mapping[str, Any] | Sequence[Any] | None = None


# --------------------------------------------------------------------------- redaction (§5.6)
def _password_keys(parameters_schema: Any) -> set[str]:
    """Keys whose field_type is "password", from either schema form:
    {"parameters": [{"key" | "variable_name", "field_type"}, ...]} or {"<key>": {"field_type"}}."""
    if isinstance(parameters_schema, Mapping) and isinstance(parameters_schema.get("parameters"), list):
        entries: Iterable[Any] = parameters_schema["parameters"]
    elif isinstance(parameters_schema, (list, tuple)):
        entries = parameters_schema
    elif isinstance(parameters_schema, Mapping):
        return {
            str(key)
            for key, spec in parameters_schema.items()
            if isinstance(spec, Mapping) and spec.get("field_type") == "password"
        }
    else:
        return set()
    keys: set[str] = set()
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("field_type") == "password":
            keys.update(str(entry[name]) for name in ("key", "variable_name") if entry.get(name))
    return keys


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def redact_parameters(params: Mapping[str, Any] | None, parameters_schema: Any) -> dict[str, Any]:
    """A copy of `params` with every password parameter replaced by "[REDACTED]"."""
    if not isinstance(params, Mapping):
        return {}
    secret = _password_keys(parameters_schema)
    return {
        key: REDACTED if (key in secret or _looks_secret(str(key))) else value
        for key, value in params.items()
    }


# --------------------------------------------------------------------------- shared pieces
def one_line(value: str | None) -> str:
    """One line of text: collapses newlines so a value can never add headings or sections."""
    return " ".join((value or "").split())


def intake_text(session: Session) -> str | None:
    """The engineer's first message, from `intake_content = {"text": ...}`."""
    text = session.intake_content.get("text") if isinstance(session.intake_content, dict) else None
    return text if isinstance(text, str) else None


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="minutes") if moment else "(not set)"


def _or_none(value: str | None) -> str:
    return one_line(value) or "(none)"


def live_facts(facts: Iterable[Fact]) -> list[Fact]:
    """Facts that are not soft-deleted, in the order given (the fact service lists oldest first)."""
    return [fact for fact in facts if fact.deleted_at is None]


def _context_section(session: Session, escalation_reason: str | None = None) -> list[str]:
    lines = ["# Session context", f"Title: {one_line(session.title) or '(untitled)'}"]
    optional = (
        ("Problem summary", session.problem_summary),
        ("Domain", session.problem_domain),
        ("Intake message", intake_text(session)),
    )
    lines += [f"{label}: {one_line(value)}" for label, value in optional if one_line(value)]
    if session.psa_ticket_id:
        lines.append(f"Linked PSA ticket: CW #{session.psa_ticket_id}")
    if one_line(escalation_reason):  # escalation inputs only, after the §5.2 lines
        lines.append(f"Escalation reason: {one_line(escalation_reason)}")
    return lines


def _fact_line(fact: Fact) -> str:
    line = f"- [{fact.source_type.value}] {one_line(fact.text)}"
    return f"{line} — {one_line(fact.source_summary)}" if one_line(fact.source_summary) else line


def _facts_section(facts: Iterable[Fact]) -> list[str]:
    lines = [_fact_line(fact) for fact in live_facts(facts)]
    return ["# Confirmed facts (What we know)", *(lines or ["(none)"])]


def _fix_lines(fix: Fix, with_decision: bool) -> list[str]:
    lines = [
        f"Title: {one_line(fix.title)}",
        f"Confidence: {fix.confidence_pct}%",
        f"Description: {one_line(fix.description)}",
    ]
    if with_decision and fix.user_decision:
        lines.append(f"Engineer decision: {fix.user_decision}")
    return lines + [
        f"Outcome status: {fix.status.value}",
        f"Applied at: {_when(fix.applied_at)}",
        f"Verified at: {_when(fix.verified_at)}",
        f"Partial notes: {_or_none(fix.partial_notes)}",
        f"Failure reason: {_or_none(fix.failure_reason)}",
        f"Pending reason: {_or_none(fix.pending_reason)}",
    ]


def _fix_section(heading: str, fix: Fix | None, with_decision: bool) -> list[str]:
    if fix is None:
        return [heading, "(no active suggested fix)"]
    return [heading, *_fix_lines(fix, with_decision)]


def _script_lines(scripts: Iterable[ScriptRun], prefix: str = "") -> list[str]:
    lines: list[str] = []
    for script in scripts:
        slug = f" (slug={script.slug})" if script.slug else ""
        parameters = redact_parameters(script.parameters, script.parameters_schema)
        rendered = json.dumps(parameters, sort_keys=True, ensure_ascii=False, default=str)
        lines += [f"- {prefix}{one_line(script.template_name)}{slug}", f"  parameters: {rendered}"]
    return lines


def ran_checks(lane_items: Iterable[LaneItem]) -> list[LaneItem]:
    """Diagnostic checks the engineer ran (output pasted, marked done, or reported not working)."""
    ran = (LaneStatus.ANSWERED, LaneStatus.DONE, LaneStatus.FAILED)
    return [item for item in lane_items if item.kind is LaneKind.CHECK and item.status in ran]


_CHECK_STATE = {
    LaneStatus.OPEN: "not run yet",
    LaneStatus.ANSWERED: "output captured",
    LaneStatus.DONE: "done",
    LaneStatus.FAILED: "did not work",
    LaneStatus.SKIPPED: "skipped",
}


def check_line(item: LaneItem) -> str:
    command = f" (`{one_line(item.command)}`)" if one_line(item.command) else ""
    return f"- Check: {one_line(item.text)}{command} — {_CHECK_STATE.get(item.status, item.status.value)}"


def _checks_section(
    facts: Iterable[Fact],
    checks: Iterable[LaneItem],
    scripts: Iterable[ScriptRun],
    include_open: bool = False,
) -> list[str]:
    checks = list(checks)
    lines = [_fact_line(f) for f in live_facts(facts) if f.source_type is FactSource.DIAGNOSTIC_CHECK]
    lines += [check_line(item) for item in ran_checks(checks)]
    if include_open:
        lines += [
            check_line(item)
            for item in checks
            if item.kind is LaneKind.CHECK and item.active and item.status is LaneStatus.OPEN
        ]
    lines += _script_lines(scripts, prefix="Ran script ")
    return ["# Diagnostic checks run during the session", *(lines or ["(none)"])]


def _join(sections: Iterable[list[str]], closing: str) -> str:
    return "\n\n".join(["\n".join(section) for section in sections] + [closing])


# --------------------------------------------------------------------------- public builders
def resolution_bundle(
    session: Session, facts: Iterable[Fact], fix: Fix | None, scripts: Iterable[ScriptRun] = ()
) -> str:
    """The resolution-note input (§5.2): context, facts, active fix, scripts, closing instruction."""
    scripts_section = ["# Scripts run during the session (passwords redacted)", *(_script_lines(scripts) or ["(none)"])]
    return _join(
        [
            _context_section(session),
            _facts_section(facts),
            _fix_section("# Active suggested fix", fix, with_decision=True),
            scripts_section,
        ],
        _RESOLUTION_CLOSING,
    )


def _escalation_sections(
    session: Session,
    facts: Sequence[Fact],
    fix: Fix | None,
    checks: Iterable[LaneItem],
    scripts: Iterable[ScriptRun],
    reason: str | None,
) -> list[list[str]]:
    return [
        _context_section(session, escalation_reason=reason or session.escalation_reason),
        _facts_section(facts),
        _checks_section(facts, checks, scripts),
        _fix_section("# Active suggested fix (current hypothesis)", fix, with_decision=False),
    ]


def escalation_bundle(
    session: Session,
    facts: Iterable[Fact],
    fix: Fix | None,
    checks: Iterable[LaneItem] = (),
    scripts: Iterable[ScriptRun] = (),
    reason: str | None = None,
) -> str:
    """The escalation-package input (§5.2): context, facts, checks run, current hypothesis.

    `checks` are the session's lane items; the checks that ran are listed after the
    diagnostic_check facts. `reason` defaults to the session's stored escalation reason."""
    facts = list(facts)
    return _join(_escalation_sections(session, facts, fix, checks, scripts, reason), _ESCALATION_CLOSING)


def escalation_summary_input(
    session: Session,
    facts: Iterable[Fact],
    fix: Fix | None,
    checks: Iterable[LaneItem] = (),
    scripts: Iterable[ScriptRun] = (),
    reason: str | None = None,
) -> str:
    """The consolidated escalation-summary input (§6.3): the escalation bundle's state."""
    facts = list(facts)
    return _join(_escalation_sections(session, facts, fix, checks, scripts, reason), _SUMMARY_CLOSING)


def status_update_bundle(
    session: Session,
    facts: Iterable[Fact],
    fix: Fix | None,
    lane_items: Iterable[LaneItem] = (),
) -> str:
    """The Share Update input in normal context (§8): facts, checks and their state, active fix."""
    facts = list(facts)
    return _join(
        [
            _context_section(session),
            _facts_section(facts),
            _checks_section(facts, lane_items, (), include_open=True),
            _fix_section("# Active suggested fix", fix, with_decision=False),
        ],
        _STATUS_CLOSING,
    )


def audience_variant_input(saved_prose: str, audience: str) -> str:
    """The tone-shift input (§8): the audience and the saved summary prose, nothing else."""
    if audience not in ("client_update", "email_draft"):
        raise InvalidInput(f"Unknown audience '{audience}' for a tone shift", field="audience")
    if not (saved_prose or "").strip():
        raise InvalidInput("There is no saved summary to rewrite", field="saved_prose")
    return f"Audience: {audience}\n\nSaved summary:\n{saved_prose.strip()}"


def fact_synthesis_input(
    source_type: FactSource,
    raw_input: str,
    source_ref: uuid.UUID | None = None,
    lane_items: Iterable[LaneItem] = (),
) -> str:
    """The synthesis input (§5.5). The question or check label is looked up by `source_ref` in the
    lane; a reworded item has a new id, so a missing target falls back to ""."""
    if source_type is FactSource.USER_NOTE:
        raise InvalidInput("Engineer notes are saved as written and never synthesized", field="source_type")
    item = next((i for i in lane_items if source_ref is not None and i.id == source_ref), None)
    asked = item.text if item is not None else ""
    answer = (raw_input or "").strip()
    if source_type is FactSource.DIAGNOSTIC_CHECK:
        return f"Diagnostic check: {asked}\nOutput:\n{answer}"
    if source_type is FactSource.AI_SYNTHESIS:
        asked = NO_QUESTION_MARKER
    return f"Question asked: {asked}\nEngineer's answer: {answer}"
