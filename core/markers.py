"""The AI marker protocol parser (DOMAIN §4.1–§4.2). Pure: text in, typed data out.

Every AI reply ends with bracketed JSON blocks (`[QUESTIONS]…[/QUESTIONS]` and friends). The parser
removes every block from the display text (even a malformed one), turns the valid ones into frozen
dataclasses, and logs and drops the rest. It never raises: a broken marker must never break a turn.
"""
from __future__ import annotations

import json
import logging
import math
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Literal

from core.model import FactSource

logger = logging.getLogger(__name__)

MAX_QUESTIONS = 3
MAX_ACTIONS = 4
MIN_FORK_OPTIONS = 2
MAX_FORK_OPTIONS = 4
MAX_FIX_TITLE = 200

FixOutcome = Literal["success", "failure", "partial"]
_FIX_OUTCOMES: dict[str, FixOutcome] = {"success": "success", "failure": "failure", "partial": "partial"}
PROMOTABLE_SOURCES: frozenset[FactSource] = frozenset(
    {FactSource.QUESTION, FactSource.DIAGNOSTIC_CHECK, FactSource.AI_SYNTHESIS}
)

# The chat protocol, the obsolete alias of ACTIONS, and the flow-editor markers that are out of scope
# here but must still never reach an engineer's screen.
CHAT_MARKERS = ("QUESTIONS", "ACTIONS", "PROMOTE", "SUGGEST_FIX", "FIX_OUTCOME", "FORK")
OBSOLETE_MARKERS = ("DIAGNOSTIC_CHECKS",)
OUT_OF_SCOPE_MARKERS = ("TREE_UPDATE", "STEPS_UPDATE", "METADATA", "INTAKE_FORM", "DELTA")
KNOWN_MARKERS = CHAT_MARKERS + OBSOLETE_MARKERS + OUT_OF_SCOPE_MARKERS


# --------------------------------------------------------------------------- parsed types
@dataclass(frozen=True)
class QuestionMarker:
    text: str
    context: str | None = None


@dataclass(frozen=True)
class ActionMarker:
    label: str
    command: str | None = None
    description: str | None = None
    action_type: str | None = None


@dataclass(frozen=True)
class PromoteMarker:
    source_type: FactSource
    source_ref: uuid.UUID | None
    text: str
    summary: str | None = None


@dataclass(frozen=True)
class SuggestFixMarker:
    title: str
    description: str
    confidence: int
    script_template_slug: str | None = None
    ai_drafted_script: str | None = None
    ai_drafted_parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class FixOutcomeMarker:
    fix_id: str
    outcome: FixOutcome
    reason: str | None = None


@dataclass(frozen=True)
class ForkOption:
    label: str
    description: str | None = None


@dataclass(frozen=True)
class ForkMarker:
    fork_reason: str | None
    options: tuple[ForkOption, ...]


@dataclass(frozen=True)
class ParsedReply:
    display_text: str
    questions: tuple[QuestionMarker, ...] = ()
    actions: tuple[ActionMarker, ...] = ()
    promotes: tuple[PromoteMarker, ...] = ()
    suggest_fix: SuggestFixMarker | None = None
    fix_outcome: FixOutcomeMarker | None = None
    fork: ForkMarker | None = None
    dropped: tuple[str, ...] = ()  # marker names of blocks that were malformed or ignored
    lane_present: bool = False  # a QUESTIONS or ACTIONS block yielded at least one valid item


# --------------------------------------------------------------------------- small helpers
_FENCE_OPEN_RE = re.compile(r"\A```[A-Za-z0-9_+.-]*[ \t]*\n?")
_FENCE_CLOSE_RE = re.compile(r"\n?```\s*\Z")


def strip_code_fence(body: str) -> str:
    """Remove one surrounding ```json / ``` fence, if present (models like to add one)."""
    body = body.strip()
    if body.startswith("```"):
        body = _FENCE_OPEN_RE.sub("", body, count=1)
        body = _FENCE_CLOSE_RE.sub("", body, count=1)
    return body.strip()


def _load_json(body: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(strip_code_fence(body))
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return False, None


def _text(value: Any) -> str | None:
    """A stripped, non-blank string, or None for blanks and non-strings."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


@lru_cache(maxsize=None)
def _block_re(*names: str) -> re.Pattern[str]:
    # Non-greedy, and tempered so that a body never spans a second opening tag of the same name:
    # an unclosed block then cannot swallow the complete block that follows it.
    alternatives = "|".join(names)
    return re.compile(r"\[(" + alternatives + r")\]\s*((?:(?!\[\1\])[\s\S])*?)\s*\[/\1\]")


def _take_blocks(text: str, *names: str) -> tuple[str, list[tuple[str, str]]]:
    """Remove every complete block of the given names; return the text and (name, body) pairs.

    A block is replaced by a newline rather than nothing, so that the text around it can never
    join into a new tag."""
    found: list[tuple[str, str]] = []

    def collect(match: re.Match[str]) -> str:
        found.append((match.group(1), match.group(2)))
        return "\n"

    return _block_re(*names).sub(collect, text), found


class _Drops:
    """Collects the names of dropped blocks and logs why, so a bad marker is visible in logs."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, name: str, why: str) -> None:
        self.names.append(name)
        logger.warning("marker %s dropped: %s", name, why)


# --------------------------------------------------------------------------- per-marker parsers
def _parse_list_items(
    blocks: list[tuple[str, str]],
    limit: int,
    make_item: Callable[[dict[str, Any]], Any],
    drops: _Drops,
) -> tuple[Any, ...]:
    items: list[Any] = []
    for name, body in blocks:
        ok, data = _load_json(body)
        if not ok:
            drops.add(name, "body is not valid JSON")
            continue
        if not isinstance(data, list):
            drops.add(name, "body is not a JSON array")
            continue
        valid = [item for item in (make_item(raw) for raw in data if isinstance(raw, dict)) if item]
        if len(valid) < len(data):
            logger.info("marker %s: %d invalid item(s) skipped", name, len(data) - len(valid))
        if not valid:
            drops.add(name, "no valid item")
            continue
        items.extend(valid)
    if len(items) > limit:
        logger.info("marker list truncated from %d to %d item(s)", len(items), limit)
    return tuple(items[:limit])


def _question(raw: dict[str, Any]) -> QuestionMarker | None:
    text = _text(raw.get("text"))
    return QuestionMarker(text=text, context=_text(raw.get("context"))) if text else None


def _action(raw: dict[str, Any]) -> ActionMarker | None:
    label = _text(raw.get("label"))
    if not label:
        return None
    return ActionMarker(
        label=label,
        command=_text(raw.get("command")),
        description=_text(raw.get("description")),
        action_type=_text(raw.get("action_type")),
    )


def _promotable_source(value: Any) -> FactSource | None:
    """The AI may state question, diagnostic_check or ai_synthesis; never user_note."""
    try:
        source = FactSource((_text(value) or "").lower())
    except ValueError:
        return None
    return source if source in PROMOTABLE_SOURCES else None


def _promote(raw: Any) -> PromoteMarker | None:
    if not isinstance(raw, dict):
        return None
    source_type = _promotable_source(raw.get("source_type"))
    text = _text(raw.get("text"))
    if source_type is None or not text:
        return None
    ref: uuid.UUID | None = None
    raw_ref = _text(raw.get("source_ref"))
    if source_type is not FactSource.AI_SYNTHESIS and raw_ref:
        try:
            ref = uuid.UUID(raw_ref)
        except ValueError:
            logger.info("marker PROMOTE: invalid source_ref dropped, fact kept")
    return PromoteMarker(source_type=source_type, source_ref=ref, text=text, summary=_text(raw.get("summary")))


def _parse_promotes(blocks: list[tuple[str, str]], drops: _Drops) -> tuple[PromoteMarker, ...]:
    promotes: list[PromoteMarker] = []
    for name, body in blocks:
        ok, data = _load_json(body)
        if not ok:
            drops.add(name, "body is not valid JSON")
            continue
        candidates = data if isinstance(data, list) else [data]
        if not candidates:
            continue  # an empty list means "no fact this turn"
        valid = [p for p in (_promote(c) for c in candidates) if p]
        if not valid:
            drops.add(name, "no valid fact (needs an allowed source_type and a non-empty text)")
        promotes.extend(valid)
    return tuple(promotes)


def _confidence(value: Any) -> int | None:
    """Clamp and round to 0..100; None when the value is not a finite number."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            number = float(value.strip().rstrip("%").strip())
        else:
            return None
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(number):
        return None
    return max(0, min(100, int(round(number))))


def _suggest_fix(data: Any) -> SuggestFixMarker | None:
    if not isinstance(data, dict):
        return None
    title = _text(data.get("title"))
    description = _text(data.get("description"))
    confidence = _confidence(data.get("confidence"))
    if not title or not description or confidence is None:
        return None
    script = data.get("ai_drafted_script")
    parameters = data.get("ai_drafted_parameters")
    return SuggestFixMarker(
        title=title[:MAX_FIX_TITLE].rstrip(),
        description=description,
        confidence=confidence,
        script_template_slug=_text(data.get("script_template_slug")),
        ai_drafted_script=script if isinstance(script, str) and script.strip() else None,
        ai_drafted_parameters=parameters if isinstance(parameters, dict) else None,
    )


def _fix_outcome(data: Any) -> FixOutcomeMarker | None:
    if not isinstance(data, dict):
        return None
    fix_id = _text(data.get("fix_id"))
    outcome = _FIX_OUTCOMES.get((_text(data.get("outcome")) or "").lower())
    if not fix_id or outcome is None:
        return None
    return FixOutcomeMarker(fix_id=fix_id, outcome=outcome, reason=_text(data.get("reason")))


def _fork(data: Any) -> ForkMarker | None:
    if not isinstance(data, dict) or not isinstance(data.get("options"), list):
        return None
    options = [
        ForkOption(label=label, description=_text(raw.get("description")))
        for raw in data["options"]
        if isinstance(raw, dict) and (label := _text(raw.get("label")))
    ]
    if len(options) < MIN_FORK_OPTIONS:
        return None
    return ForkMarker(fork_reason=_text(data.get("fork_reason")), options=tuple(options[:MAX_FORK_OPTIONS]))


def _last_wins(blocks: list[tuple[str, str]], build: Callable[[Any], Any], drops: _Drops) -> Any:
    """The most recent intent wins: earlier blocks are ignored; a malformed last block is dropped."""
    if not blocks:
        return None
    for name, _ in blocks[:-1]:
        drops.add(name, "superseded by a later block in the same reply")
    name, body = blocks[-1]
    ok, data = _load_json(body)
    result = build(data) if ok else None
    if result is None:
        drops.add(name, "body is not valid JSON" if not ok else "required fields missing or invalid")
    return result


# --------------------------------------------------------------------------- leftovers and whitespace
_ANY_TAG_RE = re.compile(r"\[(/?)(" + "|".join(KNOWN_MARKERS) + r")\]")
_FENCE_LINE_RE = re.compile(r"^[ \t]{0,3}```[^\n]*$", re.MULTILINE)
_BLANK_RUN_RE = re.compile(r"\n(?:[ \t]*\n){2,}")
_TRAILING_SPACE_RE = re.compile(r"[ \t]+$", re.MULTILINE)
_CLOSING_FENCE_RE = re.compile(r"\s*```")
_JSON_DECODER = json.JSONDecoder()


def _dangling_body_end(text: str, start: int) -> int | None:
    """Where the JSON body after an unclosed opening tag ends; None when no JSON body follows.

    A complete JSON value ends the body (prose after it stays visible); an unparseable one, which
    is usually a reply cut off mid-marker, runs to the next marker tag or the end of the text."""
    position = start
    while position < len(text) and text[position].isspace():
        position += 1
    if text.startswith("```", position):
        newline = text.find("\n", position)
        position = len(text) if newline < 0 else newline + 1
        while position < len(text) and text[position].isspace():
            position += 1
    if position >= len(text) or text[position] not in "[{" or _ANY_TAG_RE.match(text, position):
        return None
    try:
        _, end = _JSON_DECODER.raw_decode(text, position)
    except (ValueError, RecursionError):
        next_tag = _ANY_TAG_RE.search(text, position)
        return next_tag.start() if next_tag else len(text)
    closing_fence = _CLOSING_FENCE_RE.match(text, end)
    return closing_fence.end() if closing_fence else end


def _strip_leftover_tags(text: str, drops: _Drops) -> str:
    """Remove stray opening/closing tags (and the JSON body after an unclosed opening tag).

    Repeats until no tag is left, because removing one tag can join its neighbours into another."""
    while match := _ANY_TAG_RE.search(text):
        end = match.end()
        if not match.group(1):
            body_end = _dangling_body_end(text, end)
            if body_end is not None:
                drops.add(match.group(2), "opening tag without a closing tag")
                end = body_end
            else:
                logger.info("marker %s: stray opening tag removed", match.group(2))
        text = text[: match.start()] + text[end:]
    return text


def _drop_empty_fences(text: str) -> str:
    """Remove code fences left empty once the marker blocks inside them are gone.

    Fences are paired in order (open, close), so two neighbouring real code blocks are never merged."""
    fences = list(_FENCE_LINE_RE.finditer(text))
    empty_spans = [
        (opening.start(), closing.end())
        for opening, closing in zip(fences[0::2], fences[1::2])
        if not text[opening.end() : closing.start()].strip()
    ]
    for start, end in reversed(empty_spans):
        text = text[:start] + text[end:]
    return text


def _tidy(text: str) -> str:
    text = _TRAILING_SPACE_RE.sub("", text.replace("\r\n", "\n"))
    return _BLANK_RUN_RE.sub("\n\n", text).strip()


# --------------------------------------------------------------------------- entry points
def parse_markers(raw: str) -> ParsedReply:
    """Split a raw AI reply into display text and markers. Never raises (DOMAIN §4.2)."""
    text = raw if isinstance(raw, str) else ""
    drops = _Drops()

    # The order is the protocol's: FORK → ACTIONS → QUESTIONS → PROMOTE → SUGGEST_FIX → FIX_OUTCOME.
    text, blocks = _take_blocks(text, "FORK")
    fork = _last_wins(blocks, _fork, drops)

    text, blocks = _take_blocks(text, "ACTIONS", "DIAGNOSTIC_CHECKS")
    actions = _parse_list_items(blocks, MAX_ACTIONS, _action, drops)

    text, blocks = _take_blocks(text, "QUESTIONS")
    questions = _parse_list_items(blocks, MAX_QUESTIONS, _question, drops)

    text, blocks = _take_blocks(text, "PROMOTE")
    promotes = _parse_promotes(blocks, drops)

    text, blocks = _take_blocks(text, "SUGGEST_FIX")
    suggest_fix = _last_wins(blocks, _suggest_fix, drops)

    text, blocks = _take_blocks(text, "FIX_OUTCOME")
    fix_outcome = _last_wins(blocks, _fix_outcome, drops)

    text, blocks = _take_blocks(text, *OUT_OF_SCOPE_MARKERS)
    for name, _ in blocks:
        drops.add(name, "marker belongs to the flow editor and is not used in chat")

    text = _drop_empty_fences(_strip_leftover_tags(text, drops))
    return ParsedReply(
        display_text=_tidy(text),
        questions=questions,
        actions=actions,
        promotes=promotes,
        suggest_fix=suggest_fix,
        fix_outcome=fix_outcome,
        fork=fork,
        dropped=tuple(drops.names),
        lane_present=bool(questions or actions),
    )


def log_summary(parsed: ParsedReply, raw: str) -> dict[str, Any]:
    """The one structured log line per turn (DOMAIN §4.2). Counts and flags only, no content."""
    return {
        "actions": len(parsed.actions),
        "questions": len(parsed.questions),
        "fork": parsed.fork is not None,
        "promote_count": len(parsed.promotes),
        "suggest_fix": parsed.suggest_fix is not None,
        "outcome_proposal": parsed.fix_outcome.outcome if parsed.fix_outcome else None,
        "raw_length": len(raw) if isinstance(raw, str) else 0,
        "display_length": len(parsed.display_text),
        "lane_present": parsed.lane_present,
        "dropped": list(parsed.dropped),
    }
