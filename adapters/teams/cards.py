"""Core views → Adaptive Cards 1.5, and the message activity that carries one.

One card per view, rebuilt from the view alone (views are rebuilt from the database by the core),
so any copy of a card can be redrawn at any time. Buttons become Action.Execute actions with the ids
and state version the core put in `Button.value` (cardkit.py). Every card is fitted under 28 KB.

No botbuilder import here: cards are plain dicts, so they survive a move to the Agents SDK."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from adapters.teams.cardkit import CARD_CONTENT_TYPE, REQUIRED, CardBuilder, Limits, fit
from adapters.teams.markdown import text_block
from core.views import (
    Button, EscalationView, FactLine, FixView, FormView, HandoffContextView, HeaderView, LaneLine, LaneView,
    ListView, PreviewView, TextView,
)

__all__ = ["ChannelMention", "render_card", "message_activity", "summary_of"]

STATUS_COLORS = {"active": "Good", "paused": "Warning", "escalated": "Attention",
                 "requesting_escalation": "Attention", "resolved": "Good", "abandoned": "Default"}
FACT_SOURCES = {"question": "from a question", "diagnostic_check": "from a check", "user_note": "note",
                "ai_synthesis": "AI synthesis"}
LANE_STATUS = {"open": "", "answered": " _(answered)_", "skipped": " _(skipped)_", "done": " ✓ _done_",
               "failed": " ✗ _didn't work_"}
FIX_STATES = {
    "proposed": "Not applied yet",
    "verifying": "Applied — verifying",
    "partial": "Partly applied",
    "pending": "Applied — waiting to verify",
    "ai_confirming": "Applied — FlowPilot thinks there is an outcome",
    "nudge": "Applied — did it work?",
    "worked": "✓ It worked",
    "failed": "✗ It didn't work",
    "dismissed": "Dismissed",
    "superseded": "Replaced by a newer suggestion",
}
PREVIEW_TITLES = {"resolution_note": "Resolution note — preview", "escalation_package": "Escalation package — preview",
                  "status_update": "Status update — preview"}
SUMMARY_MAX = 200
PICKER_TITLE_MAX = 60


@dataclass(frozen=True)
class ChannelMention:
    """The Teams channel a re-ping mentions (`TextView.mention_channel`)."""

    id: str
    name: str


# --------------------------------------------------------------------------- entry points
def render_card(view: Any, *, notice: str | None = None, channel: ChannelMention | None = None) -> dict[str, Any]:
    """The Adaptive Card for a view. `notice` adds a confirmation line (shown to the clicker only)."""
    renderer = _RENDERERS.get(type(view))
    if renderer is None:
        raise TypeError(f"no Teams card for view type {type(view).__name__}")

    def build(limits: Limits) -> CardBuilder:
        builder = CardBuilder(view.type, limits)
        renderer(builder, view, channel)
        if notice:
            builder.add(text_block(f"✓ {builder.clip(notice, 400)}", isSubtle=True, size="Small", separator=True))
        return builder

    return fit(build)


def message_activity(view: Any, *, channel: ChannelMention | None = None) -> dict[str, Any]:
    """A Bot Framework message activity (wire dict) carrying the view's card."""
    card = render_card(view, channel=channel)
    return {"type": "message", "summary": summary_of(view),
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}]}


def summary_of(view: Any) -> str:
    """A one-line plain text for notifications and the chat list (a card alone shows 'sent a card')."""
    if isinstance(view, TextView):
        text = view.text
    elif isinstance(view, HeaderView):
        text = f"{view.title} · {_status_word(view.status)}"
    elif isinstance(view, LaneView):
        text = f"What we know · {len(view.facts)}"
    elif isinstance(view, FixView):
        text = f"Suggested fix: {view.title}"
    elif isinstance(view, EscalationView):
        text = f"Escalation: {view.title}"
    elif isinstance(view, HandoffContextView):
        text = "Handoff context"
    elif isinstance(view, PreviewView):
        text = PREVIEW_TITLES.get(view.kind, "Preview")
    elif isinstance(view, (ListView, FormView)):
        text = view.title
    else:
        text = "FlowPilot"
    flat = " ".join(str(text).replace("*", "").replace("#", "").split())
    return flat if len(flat) <= SUMMARY_MAX else flat[: SUMMARY_MAX - 1] + "…"


# --------------------------------------------------------------------------- helpers
def _status_word(status: str) -> str:
    return "escalated" if status == "requesting_escalation" else status.replace("_", " ")


def _heading(b: CardBuilder, text: str, *, separator: bool = True, **style: Any) -> dict[str, Any] | None:
    return b.text(text, b.limits.item_text, weight="Bolder", separator=separator, **style)


def _fact_set(b: CardBuilder, pairs: list[tuple[str, str | None]]) -> dict[str, Any] | None:
    facts = [{"title": title, "value": b.clip(value, b.limits.detail)} for title, value in pairs if value]
    return {"type": "FactSet", "facts": facts} if facts else None


def _when(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _short(text: str, limit: int) -> str:
    """A label for text shown in full elsewhere on the card (not a truncation worth a note)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _stacked_buttons(b: CardBuilder, buttons: list[Button]) -> None:
    """One ActionSet per button: long labels (suggested steps) stay readable, one per line."""
    for button in buttons:
        b.add(b.action_set([button]))


# --------------------------------------------------------------------------- text
def _text(b: CardBuilder, v: TextView, channel: ChannelMention | None) -> None:
    tags = [b.mention(m.name, m.external_id) for m in v.mentions]
    if v.mention_channel and channel is not None:
        tags.insert(0, b.mention(channel.name, channel.id, "channel"))
    if tags:
        b.add(text_block(" ".join(tags)))
    if v.kind == "error":
        b.add(b.text(f"⚠️ {v.text}", color="Attention"))
    elif v.kind == "working":
        b.add(b.text(v.text, isSubtle=True))
    elif v.markdown:
        b.add(*b.markdown(v.text))
    else:
        b.add(b.text(v.text))
    b.actions = b.buttons(v.buttons)


# --------------------------------------------------------------------------- header
def _header(b: CardBuilder, v: HeaderView, _channel: ChannelMention | None) -> None:
    b.add(b.text(v.title, b.limits.item_text, size="Medium", weight="Bolder"))
    chips: list[dict[str, Any]] = []
    if v.ticket_ref:
        chips.append({"type": "Column", "width": "auto", "items": [
            text_block(v.ticket_ref, weight="Bolder", color="Accent")]})
    chips.append({"type": "Column", "width": "auto", "items": [
        text_block(_status_word(v.status).capitalize(), weight="Bolder",
                   color=STATUS_COLORS.get(v.status, "Default"))]})
    b.add({"type": "ColumnSet", "columns": chips})
    b.add(_fact_set(b, [("Client", v.client), ("Priority", v.priority), ("Engineer", v.owner_name),
                        ("Senior", v.claimer_name)]))
    b.actions = b.buttons(v.buttons)


# --------------------------------------------------------------------------- lane
def _fact_text(b: CardBuilder, fact: FactLine) -> str:
    source = fact.source_summary or FACT_SOURCES.get(fact.source_type, fact.source_type)
    return f"{b.clip(' '.join(fact.text.split()), b.limits.item_text)} · _{b.clip(source, 80)}_"


def _fact_pickers(b: CardBuilder, facts: list[FactLine]) -> dict[str, Any] | None:
    """Many facts: one 'Edit a fact' / 'Delete a fact' picker each instead of two buttons per fact."""
    numbers = {fact.id: n for n, fact in enumerate(facts, 1)}
    groups: dict[str, list[tuple[FactLine, Button]]] = {}
    for fact in facts:
        for button in fact.buttons:
            groups.setdefault(button.action.value, []).append((fact, button))
    actions = []
    for action, pairs in groups.items():
        first = pairs[0][1]
        pick_id = b.next_id("pick")
        picker = {"type": "Input.ChoiceSet", "id": pick_id, "label": "Which fact?", "style": "compact",
                  "isRequired": True, "errorMessage": REQUIRED,
                  "choices": [{"title": f"{numbers[f.id]}. {_short(f.text, PICKER_TITLE_MAX)}",
                               "value": btn.value.get("fact_id", f.id)} for f, btn in pairs]}
        body: list[dict[str, Any]] = [picker]
        extra: dict[str, Any] = {"sel": {"fact_id": pick_id}}
        if first.input is not None:
            input_id = b.next_id("in")
            body.append(b.text_input(input_id, first.input.model_copy(update={"initial": None})))
            extra["i"] = input_id
        base = {key: val for key, val in first.value.items() if key != "fact_id"}
        style = {"primary": "positive", "danger": "destructive"}.get(first.style or "")
        submit = b.execute(action, first.label, base, style=style, **extra)
        actions.append(b.show_card(f"{first.label} a fact", body, [submit]))
    return {"type": "ActionSet", "actions": actions} if actions else None


def _lane_item(b: CardBuilder, label: str, item: LaneLine) -> None:
    b.add(b.text(f"**{label}** {b.clip(' '.join(item.text.split()), b.limits.item_text)}"
                 f"{LANE_STATUS.get(item.status, '')}"))
    if item.context:
        b.add(b.text(item.context, b.limits.detail, isSubtle=True, spacing="None"))
    if item.command:
        b.add(b.code(item.command, b.limits.item_text))
    if item.description:
        b.add(b.text(item.description, b.limits.detail, isSubtle=True, spacing="Small"))
    if item.response:
        b.add(b.text(f"Answer: {item.response}" if item.kind == "question" else f"Output: {item.response}",
                     b.limits.detail, spacing="Small"))
    b.add(b.action_set(item.buttons))


def _lane(b: CardBuilder, v: LaneView, _channel: ChannelMention | None) -> None:
    b.add(b.text(f"What we know · {len(v.facts)}", size="Medium", weight="Bolder"))
    facts = b.cap(v.facts, "facts")
    if not facts:
        b.add(b.text("Nothing confirmed yet. Answers and checks you promote, and your notes, show up here.",
                     isSubtle=True))
    elif b.limits.fact_pickers:
        b.add(text_block("\n".join(f"{n}. {_fact_text(b, f)}" for n, f in enumerate(facts, 1))))
        b.add(_fact_pickers(b, facts))
    else:
        for fact in facts:
            b.add(b.text(_fact_text(b, fact)), b.action_set(fact.buttons))
    questions = b.cap(v.questions, "questions")
    if questions:
        b.add(_heading(b, "Questions"))
        for n, item in enumerate(questions, 1):
            _lane_item(b, f"Q{n}.", item)
    checks = b.cap(v.checks, "checks")
    if checks:
        b.add(_heading(b, "Diagnostic checks"))
        for n, item in enumerate(checks, 1):
            _lane_item(b, f"C{n}.", item)
    b.actions = b.buttons(v.buttons)


# --------------------------------------------------------------------------- fix
def _fix(b: CardBuilder, v: FixView, _channel: ChannelMention | None) -> None:
    if v.collapsed:
        b.add(b.text(f"Suggested fix — {FIX_STATES.get(v.state, v.state).lower()}: {v.title}", b.limits.item_text,
                     isSubtle=True))
        b.actions = b.buttons(v.buttons)
        return
    b.add(b.text(f"Suggested fix · {v.confidence}% confidence", color="Accent", weight="Bolder", size="Small"))
    b.add(b.text(v.title, b.limits.item_text, size="Medium", weight="Bolder", spacing="None"))
    b.add(*b.markdown(v.description))
    state = FIX_STATES.get(v.state, v.state)
    if v.applied_at is not None and v.state in ("verifying", "pending", "partial", "nudge", "ai_confirming"):
        state += f" (applied {_when(v.applied_at)})"
    b.add(b.text(state, weight="Bolder", separator=True))
    b.add(_fact_set(b, [("Done / left", v.partial_notes), ("Waiting on", v.pending_reason),
                        ("What happened", v.failure_reason)]))
    if v.proposal:
        b.add(b.text(v.proposal, b.limits.detail, color="Warning", weight="Bolder"))
    b.actions = b.buttons(v.buttons)


# --------------------------------------------------------------------------- escalation
def _snapshot(b: CardBuilder, snapshot: dict[str, Any]) -> None:
    known = [str(x) for x in snapshot.get("what_we_know") or []]
    tried = [str(x) for x in snapshot.get("whats_been_tried") or []]
    fix = snapshot.get("fix")
    if known:
        b.add(_heading(b, "What we know"), b.bullets(known, what="facts"))
    if tried:
        b.add(_heading(b, "What's been tried"), b.bullets(tried, what="steps"))
    if isinstance(fix, dict) and fix.get("title"):
        b.add(b.text(f"Fix: {fix['title']} ({str(fix.get('status', '')).replace('_', ' ')})", b.limits.item_text))


def _escalation(b: CardBuilder, v: EscalationView, _channel: ChannelMention | None) -> None:
    b.add(b.text(f"Escalation: {v.title}", b.limits.item_text, size="Medium", weight="Bolder", color="Attention"))
    b.add(_fact_set(b, [("Handed off by", v.handed_off_by), ("Reason", v.reason), ("Ticket", v.ticket_ref),
                        ("Steps so far", str(v.step_count)), ("Confidence", v.confidence)]))
    if v.state == "claimed":
        claimed = f"✓ Claimed by {v.claimed_by or 'a senior'}"
        when = _when(v.claimed_at)
        b.add(b.text(claimed + (f" · {when}" if when else ""), color="Good", weight="Bolder", separator=True))
    if v.summary_prose:
        b.add(_heading(b, "Summary"), *b.markdown(v.summary_prose))
        if v.what_we_know:
            b.add(_heading(b, "What we know"), b.bullets(v.what_we_know, what="facts"))
        if v.likely_cause:
            b.add(_heading(b, "Likely cause"), b.text(v.likely_cause, b.limits.detail))
        if v.suggested_steps:
            b.add(_heading(b, "Suggested steps"), b.bullets(v.suggested_steps, what="steps"))
    elif v.state == "analyzing":
        b.add(_fact_set(b, [("Summary", "Analyzing…"), ("Likely cause", "Analyzing…"),
                            ("Suggested steps", "Analyzing…")]))
        _snapshot(b, v.snapshot)
    else:
        if v.state == "failed":
            b.add(b.text("AI summary unavailable — here is what FlowPilot recorded.", isSubtle=True, separator=True))
        _snapshot(b, v.snapshot)
    for note in (v.status_note, v.psa_note):
        b.add(b.text(note, b.limits.detail, isSubtle=True))
    b.actions = b.buttons(v.buttons)
    if v.thread_link:
        b.actions.append({"type": "Action.OpenUrl", "title": "Open thread", "url": v.thread_link})


# --------------------------------------------------------------------------- handoff context
def _handoff(b: CardBuilder, v: HandoffContextView, _channel: ChannelMention | None) -> None:
    if v.senior is not None:
        b.add(text_block(f"{b.mention(v.senior.name, v.senior.external_id)} picked this up.", weight="Bolder"))
    b.add(b.text(f"Handoff context from {v.handed_off_by or 'the engineer'}", size="Medium", weight="Bolder"))
    if v.summary_prose:
        b.add(*b.markdown(v.summary_prose))
    b.add(_fact_set(b, [("Confidence", v.confidence), ("Likely cause", v.likely_cause)]))
    if v.what_we_know:
        b.add(_heading(b, "What we know"), b.bullets(v.what_we_know, what="facts"))
    if v.tried:
        b.add(_heading(b, "What was tried"), b.bullets(v.tried, what="steps"))
    if v.next_steps:
        b.add(_heading(b, "Next steps"), b.bullets(v.next_steps, what="steps"))
    if v.buttons:
        b.add(b.text("Try a suggested step:", isSubtle=True, separator=True))
        _stacked_buttons(b, v.buttons)


# --------------------------------------------------------------------------- preview
def _preview(b: CardBuilder, v: PreviewView, _channel: ChannelMention | None) -> None:
    b.add(b.text(PREVIEW_TITLES.get(v.kind, "Preview"), size="Medium", weight="Bolder"))
    if v.target_ticket_ref:
        b.add(b.text(f"Posts to **{v.target_ticket_ref}**" + (f" · {v.target_status}" if v.target_status else "")))
    if v.fallback_label:
        b.add(b.text(v.fallback_label, color="Warning"))
    # The Edit input repeats the whole text, so a long note shows a shorter excerpt and keeps the
    # full text editable.
    shown = b.limits.long_text if len(v.markdown) <= b.limits.long_text else b.limits.long_text // 3
    b.add({"type": "Container", "style": "emphasis", "items": b.markdown(v.markdown, shown) or [text_block(" ")]})
    b.actions = b.buttons(v.buttons)


# --------------------------------------------------------------------------- list
def _list(b: CardBuilder, v: ListView, _channel: ChannelMention | None) -> None:
    b.add(b.text(v.title, b.limits.item_text, size="Medium", weight="Bolder"))
    if not v.items:
        b.add(b.text(v.empty_text, isSubtle=True))
    for n, item in enumerate(b.cap(v.items, "items"), 1):
        b.add(b.text(f"{n}. {item.text}", b.limits.item_text, separator=n > 1), b.action_set(item.buttons))


# --------------------------------------------------------------------------- form
def _form(b: CardBuilder, v: FormView, _channel: ChannelMention | None) -> None:
    b.add(b.text(v.title, b.limits.item_text, size="Medium", weight="Bolder"))
    b.add(*b.markdown(v.intro))
    field_ids: dict[str, str] = {}
    for spec in v.fields:
        input_id = b.next_id("fld")
        field_ids[spec.name] = input_id
        element: dict[str, Any]
        if spec.kind == "choice":
            element = {"type": "Input.ChoiceSet", "id": input_id, "label": spec.label, "style": "compact",
                       "isRequired": spec.required,
                       "choices": [{"title": label, "value": value} for value, label in spec.options]}
            if spec.initial:
                element["value"] = spec.initial
        else:
            element = {"type": "Input.Text", "id": input_id, "label": spec.label, "isRequired": spec.required,
                       "isMultiline": spec.kind == "multiline", "maxLength": spec.max_length}
            if spec.kind == "secret":
                element["style"] = "Password"
            elif spec.initial:
                element["value"] = spec.initial
            if spec.hint:
                element["placeholder"] = spec.hint
        if spec.required:
            element["errorMessage"] = REQUIRED
        b.add(element)
        if spec.hint and spec.kind == "choice":
            b.add(b.text(spec.hint, b.limits.detail, isSubtle=True, spacing="None"))
    b.actions = [b.execute(v.action.value, v.submit_label, v.value, style="positive", f=field_ids)]


_RENDERERS: dict[type, Callable[[CardBuilder, Any, ChannelMention | None], None]] = {
    TextView: _text, HeaderView: _header, LaneView: _lane, FixView: _fix, EscalationView: _escalation,
    HandoffContextView: _handoff, PreviewView: _preview, ListView: _list, FormView: _form,
}
