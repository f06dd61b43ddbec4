"""Deterministic artifacts for when the model is unavailable (DOMAIN §5.3, §5.4, §6.3).

Same sections and the same outcome rules as the AI-written versions, built only from task-lane state:
nothing is invented, so the text is plainer. The "drafted without AI" label is returned next to
the markdown, never inside it, so the note keeps its exact four (or five) sections and the chat
layer decides where to show the label.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.model import Fact, Fix, FixStatus, LaneItem, LaneKind, LaneStatus, Session
from core.prompts.artifacts import (
    NO_FACTS_CONFIRMED_SENTENCE,
    NO_LEADING_HYPOTHESIS_SENTENCE,
    NOTHING_CONFIRMED_YET_SENTENCE,
    NOTHING_TRIED_YET_SENTENCE,
    ROOT_CAUSE_NOT_ISOLATED_SENTENCE,
)
from core.prompts.bundles import ScriptRun, check_line, intake_text, live_facts, one_line, ran_checks
from core.prompts.chat import fix_state

FALLBACK_LABEL = "Drafted without AI (model unavailable)"
ROOT_CAUSE_MIN_CONFIDENCE = 60  # below this the root cause counts as not isolated (§5.3)
TRY_FIRST_MIN_CONFIDENCE = 80  # above this the first next step is to try the fix (§5.4)
MIN_NEXT_STEPS, MAX_NEXT_STEPS = 2, 4
_GENERIC_NEXT_STEPS = (
    "- Reproduce the original symptom to confirm it is still present.",
    "- Review the confirmed findings above and choose the next diagnostic step.",
)


@dataclass(frozen=True)
class FallbackArtifact:
    markdown: str
    label: str = FALLBACK_LABEL


# --------------------------------------------------------------------------- text helpers
def _sentence(value: str | None) -> str:
    """One line ending in punctuation, so joined sentences read properly."""
    text = one_line(value)
    return text if not text or text[-1] in ".!?" else f"{text}."


def _detail(value: str | None) -> str:
    """A reason or note appended after a colon, or nothing when it is blank."""
    text = one_line(value).rstrip(".")
    return f": {text}" if text else ""


def _quoted(fix: Fix) -> str:
    return f'"{one_line(fix.title)}"'


def _sections(*sections: tuple[str, str]) -> str:
    return "\n\n".join(f"## {heading}\n{body}" for heading, body in sections)


def _problem(session: Session) -> str:
    for candidate in (session.problem_summary, session.title, intake_text(session)):
        if one_line(candidate):
            return _sentence(candidate)
    return "The problem was not described in the session."


def _fact_bullets(facts: Iterable[Fact], empty: str) -> str:
    bullets = [f"- {_sentence(fact.text)}" for fact in live_facts(facts)]
    return "\n".join(bullets) if bullets else empty


# --------------------------------------------------------------------------- resolution note
def _root_cause(fix: Fix | None, has_facts: bool) -> str:
    isolated = (
        fix is not None
        and fix.confidence_pct >= ROOT_CAUSE_MIN_CONFIDENCE
        and fix.status not in (FixStatus.APPLIED_FAILED, FixStatus.DISMISSED)
    )
    if not isolated or fix is None:
        pointer = " The confirmed findings above indicate where it lies." if has_facts else ""
        return ROOT_CAUSE_NOT_ISOLATED_SENTENCE + pointer
    if fix.status is FixStatus.APPLIED_SUCCESS:
        return f"The cause was the condition addressed by the fix {_quoted(fix)}."
    if fix.status is FixStatus.APPLIED_PENDING:
        return f"The evidence points to the condition addressed by the fix {_quoted(fix)}; this is not yet verified."
    return f"The evidence points to the condition addressed by the fix {_quoted(fix)}."


def _follow_up(scripts: Sequence[ScriptRun]) -> str:
    if not scripts:
        return "No further resolution steps were recorded."
    names = ", ".join(one_line(script.template_name) for script in scripts)
    return f"Scripts run during the work: {names}."


def _resolution(fix: Fix | None, scripts: Sequence[ScriptRun]) -> str:
    if fix is None:
        return f"No fix was recorded during the session. {_follow_up(scripts)}"
    title = _quoted(fix)
    match fix.status:
        case FixStatus.APPLIED_SUCCESS:
            when = f" on {fix.verified_at.date().isoformat()}" if fix.verified_at else ""
            return f"The fix {title} was applied and confirmed working{when}."
        case FixStatus.APPLIED_FAILED:
            return f"The proposed fix {title} did not resolve the issue and was dropped{_detail(fix.failure_reason)}. {_follow_up(scripts)}"
        case FixStatus.APPLIED_PARTIAL:
            return f"The fix {title} was partially applied{_detail(fix.partial_notes)}. {_follow_up(scripts)}"
        case FixStatus.APPLIED_PENDING:
            return (
                f"The fix {title} has been applied and is awaiting verification{_detail(fix.pending_reason)}. "
                "This outcome is provisional until the result can be checked."
            )
        case FixStatus.DISMISSED:
            return f"A suggested fix, {title}, was considered and set aside. {_follow_up(scripts)}"
        case _:  # proposed
            return f"The resolution has not been applied yet; the proposed fix is {title}."


def fallback_resolution_note(
    session: Session, facts: Iterable[Fact], fix: Fix | None, scripts: Sequence[ScriptRun] = ()
) -> FallbackArtifact:
    """The four-section resolution note (§5.3) from lane state only, outcome-aware per fix status."""
    facts = live_facts(facts)
    markdown = _sections(
        ("Problem", _problem(session)),
        ("What we confirmed", _fact_bullets(facts, NO_FACTS_CONFIRMED_SENTENCE)),
        ("Root cause", _root_cause(fix, bool(facts))),
        ("Resolution", _resolution(fix, scripts)),
    )
    return FallbackArtifact(markdown=markdown)


# --------------------------------------------------------------------------- escalation package
def _fix_tried_line(fix: Fix | None) -> str | None:
    if fix is None:
        return None
    title = _quoted(fix)
    match fix.status:
        case FixStatus.APPLIED_FAILED:
            return f"- Applied the fix {title}; it did not resolve the issue{_detail(fix.failure_reason)}."
        case FixStatus.APPLIED_PARTIAL:
            return f"- Partially applied the fix {title}{_detail(fix.partial_notes)}; not completed or verified."
        case FixStatus.APPLIED_PENDING:
            return f"- Applied the fix {title}; awaiting verification{_detail(fix.pending_reason)}."
        case FixStatus.APPLIED_SUCCESS:
            return f"- Applied the fix {title} and verified that it worked; the escalation is for another reason."
        case FixStatus.PROPOSED if fix.applied_at is not None:
            return f"- Applied the fix {title}; its result has not been recorded yet."
        case _:  # proposed and not applied, or dismissed: only considered, so not "tried"
            return None


def tried_lines(lane_items: Iterable[LaneItem], fix: Fix | None, scripts: Iterable[ScriptRun] = ()) -> list[str]:
    """What has been tried: checks that ran, scripts generated, and the fix if it was applied."""
    lines = [check_line(item) for item in ran_checks(lane_items)]
    for script in scripts:
        slug = f" (slug={script.slug})" if script.slug else ""
        lines.append(f"- Ran script {one_line(script.template_name)}{slug}")
    fix_line = _fix_tried_line(fix)
    return lines + ([fix_line] if fix_line else [])


def _hypothesis(fix: Fix | None, reason: str | None) -> str:
    if fix is None:
        return NO_LEADING_HYPOTHESIS_SENTENCE
    title = _quoted(fix)
    match fix.status:
        case FixStatus.APPLIED_FAILED:
            return f"The fix {title} did not hold{_detail(fix.failure_reason)}. The cause remains uncertain."
        case FixStatus.APPLIED_PARTIAL:
            return f"The fix {title} was only partly applied{_detail(fix.partial_notes)}. Whether it addresses the cause remains open."
        case FixStatus.APPLIED_PENDING:
            return f"The leading hypothesis is the fix {title}, pending verification{_detail(fix.pending_reason)}."
        case FixStatus.APPLIED_SUCCESS:
            return f"The original symptom was fixed by {title}; a new or related issue needs escalation{_detail(reason)}."
        case FixStatus.DISMISSED:
            return f"The fix {title} was set aside. The cause remains uncertain."
        case _:  # proposed
            if fix.confidence_pct < ROOT_CAUSE_MIN_CONFIDENCE:
                return NO_LEADING_HYPOTHESIS_SENTENCE
            return f"The leading hypothesis is the fix {title} at {fix.confidence_pct}% confidence."


def _fix_next_step(fix: Fix | None, reason: str | None) -> str | None:
    if fix is None:
        return None
    title = _quoted(fix)
    match fix.status:
        case FixStatus.APPLIED_FAILED:
            return f"- Look for an alternative to {title}, starting from why it failed{_detail(fix.failure_reason)}."
        case FixStatus.APPLIED_PARTIAL:
            return f"- Complete or verify the partially applied fix {title}."
        case FixStatus.APPLIED_PENDING:
            return f"- Finish verifying the fix {title}{_detail(fix.pending_reason)}."
        case FixStatus.APPLIED_SUCCESS:
            return f"- Investigate the new issue behind the escalation{_detail(reason)}."
        case FixStatus.PROPOSED if fix.applied_at is not None:
            return f"- Check whether the applied fix {title} worked and record the outcome."
        case FixStatus.PROPOSED if fix.confidence_pct > TRY_FIRST_MIN_CONFIDENCE:
            return f"- Try the suggested fix {title} first."
        case _:
            return None


def _open_item_step(item: LaneItem) -> str:
    if item.kind is LaneKind.QUESTION:
        return f"- Answer the open question: {_sentence(item.text)}"
    command = f" (`{one_line(item.command)}`)" if one_line(item.command) else ""
    return f"- Run the check: {one_line(item.text)}{command}"


def _next_steps(fix: Fix | None, lane_items: Sequence[LaneItem], reason: str | None) -> str:
    steps = [step for step in [_fix_next_step(fix, reason)] if step]
    open_items = sorted(
        (item for item in lane_items if item.active and item.status is LaneStatus.OPEN),
        key=lambda item: (item.kind is not LaneKind.QUESTION, item.position),
    )
    steps += [_open_item_step(item) for item in open_items]
    for generic in _GENERIC_NEXT_STEPS:  # pad to the minimum when the lane gives too little
        if len(steps) >= MIN_NEXT_STEPS:
            break
        steps.append(generic)
    return "\n".join(steps[:MAX_NEXT_STEPS])


def fallback_escalation_package(
    session: Session,
    facts: Iterable[Fact],
    fix: Fix | None,
    checks: Iterable[LaneItem] = (),
    scripts: Sequence[ScriptRun] = (),
    reason: str | None = None,
) -> FallbackArtifact:
    """The five-section escalation package (§5.4) from lane state only, per the fix-status table.

    `checks` are the session's lane items: checks that ran are listed as tried, open questions and
    checks seed the next steps. `reason` defaults to the session's escalation reason."""
    lane_items = list(checks)
    reason = reason or session.escalation_reason
    tried = tried_lines(lane_items, fix, scripts)
    markdown = _sections(
        ("Problem", _problem(session)),
        ("What we've confirmed", _fact_bullets(facts, NOTHING_CONFIRMED_YET_SENTENCE)),
        ("What we've tried", "\n".join(tried) if tried else NOTHING_TRIED_YET_SENTENCE),
        ("Current hypothesis", _hypothesis(fix, reason)),
        ("Suggested next steps", _next_steps(fix, lane_items, reason)),
    )
    return FallbackArtifact(markdown=markdown)


# --------------------------------------------------------------------------- escalation card snapshot
def deterministic_snapshot(
    facts: Iterable[Fact], lane_items: Iterable[LaneItem], fix: Fix | None
) -> dict[str, Any]:
    """What the escalation card shows when the AI summary is unavailable (§6.3): what we know,
    what's been tried, and the fix with its outcome. JSON-serializable and free of clock reads."""
    return {
        "what_we_know": [one_line(fact.text) for fact in live_facts(facts)],
        "whats_been_tried": [line.removeprefix("- ") for line in tried_lines(lane_items, fix)],
        "fix": fix_state(fix) if fix is not None else None,
    }
