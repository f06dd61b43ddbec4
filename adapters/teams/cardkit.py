"""Adaptive Card 1.5 building blocks: actions that carry their ids, inline inputs, size budgets.

Every clickable thing is an `Action.Execute` (Universal Actions: Teams sends an
`adaptiveCard/action` invoke and shows the card we answer with) whose `verb` is the core action id
and whose `data` is `{"a": action, "v": ids, "k": view type}` plus, when the click carries text,
`"i"` (the id of the Input.Text holding it), `"f"` (form field name → input id) or `"sel"` (value key
→ id of an Input.ChoiceSet picking it). Older clients get the `Action.Submit` fallback with the same
data; inputs are merged into the data by the client either way (payloads.py reads it back).

A button that needs text (core `Button.input`) becomes an `Action.ShowCard` whose card holds the
Input.Text and the Execute action, so the main card never holds loose inputs and each Execute only
submits its own text.

Size: Teams refuses big messages (413) and message-extension cards stop at 28 KB, so every card is
built against `Limits` and the first level whose JSON fits `MAX_CARD_BYTES` wins (`fit`)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from adapters.teams.markdown import code_block, text_block, to_elements
from core.views import Button, InputSpec

CARD_VERSION = "1.5"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_CARD_BYTES = 28 * 1024
BUTTON_STYLES = {"primary": "positive", "danger": "destructive"}
INPUT_LABEL_MAX = 100
REQUIRED = "Required."
TRUNCATION_NOTE = "Some long text is shortened here to fit the Teams card size limit."


@dataclass(frozen=True)
class Limits:
    """How much of each kind of text a card may show; later levels trade detail for size."""

    long_text: int  # AI replies, descriptions, summaries, previews
    item_text: int  # one fact, question, check, list line
    detail: int  # context lines, answers, pasted output, reasons
    prefill: int  # initial value of an input (longer ones are left empty, never cut)
    max_items: int  # items per section (facts, questions, checks, list lines, steps)
    fact_pickers: bool  # edit/delete facts through one picker instead of buttons on every fact


LEVELS: tuple[Limits, ...] = (
    Limits(long_text=8000, item_text=800, detail=800, prefill=20000, max_items=60, fact_pickers=False),
    Limits(long_text=8000, item_text=800, detail=800, prefill=20000, max_items=60, fact_pickers=True),
    Limits(long_text=4000, item_text=400, detail=300, prefill=4000, max_items=40, fact_pickers=True),
    Limits(long_text=2000, item_text=200, detail=160, prefill=1000, max_items=20, fact_pickers=True),
    Limits(long_text=800, item_text=120, detail=80, prefill=300, max_items=10, fact_pickers=True),
)


def card_size(card: dict[str, Any]) -> int:
    """Bytes on the wire: the connector client sends `json.dumps` output (ASCII-escaped)."""
    return len(json.dumps(card).encode("utf-8"))


class CardBuilder:
    """Accumulates one card's body, actions and mention entities for one view."""

    def __init__(self, kind: str, limits: Limits) -> None:
        self.kind = kind
        self.limits = limits
        self.body: list[dict[str, Any]] = []
        self.actions: list[dict[str, Any]] = []
        self.entities: list[dict[str, Any]] = []
        self.truncated = False
        self.notes: list[str] = []
        self._ids = 0

    # ---- text
    def clip(self, text: str | None, limit: int) -> str:
        text = text or ""
        if len(text) <= limit:
            return text
        self.truncated = True
        return text[: max(1, limit - 1)].rstrip() + "…"

    def add(self, *elements: dict[str, Any] | None) -> None:
        self.body.extend(e for e in elements if e)

    def text(self, text: str | None, limit: int | None = None, **style: Any) -> dict[str, Any] | None:
        if not text:
            return None
        return text_block(self.clip(text, limit or self.limits.long_text), **style)

    def markdown(self, text: str | None, limit: int | None = None) -> list[dict[str, Any]]:
        return to_elements(self.clip(text, limit or self.limits.long_text)) if text else []

    def code(self, text: str | None, limit: int | None = None) -> dict[str, Any] | None:
        return code_block(self.clip(text, limit or self.limits.detail)) if text else None

    def bullets(self, items: Iterable[str], limit: int | None = None, what: str = "more") -> dict[str, Any] | None:
        lines = [f"- {self.clip(' '.join(str(i).split()), limit or self.limits.item_text)}" for i in items if i]
        lines = self.cap(lines, what)
        return text_block("\n".join(lines)) if lines else None

    def cap(self, items: list, what: str) -> list:
        """At most `max_items`; a note at the end of the card says how many are not shown."""
        if len(items) <= self.limits.max_items:
            return items
        self.notes.append(f"…and {len(items) - self.limits.max_items} {what} not shown here.")
        return items[: self.limits.max_items]

    def mention(self, name: str, mentioned_id: str | None, mention_type: str | None = None) -> str:
        """`<at>Name</at>` plus its entity; without an id it is plain text (Teams ignores unmatched tags)."""
        if not mentioned_id:
            return f"@{name}"
        tag = f"<at>{name}</at>"
        mentioned: dict[str, Any] = {"id": mentioned_id, "name": name}
        if mention_type:
            mentioned["type"] = mention_type
        self.entities.append({"type": "mention", "text": tag, "mentioned": mentioned})
        return tag

    # ---- actions
    def next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def execute(self, action: str, title: str, value: dict[str, str], *, style: str | None = None,
                **extra: Any) -> dict[str, Any]:
        data: dict[str, Any] = {"a": action, "v": dict(value), "k": self.kind, **extra}
        act: dict[str, Any] = {"type": "Action.Execute", "title": title, "verb": action, "data": data}
        if style:
            act["style"] = style
        # Same data, so a click from a client without Universal Actions means the same thing.
        act["fallback"] = {"type": "Action.Submit", "title": title, "data": data}
        return act

    def button(self, button: Button) -> dict[str, Any]:
        style = BUTTON_STYLES.get(button.style or "")
        if button.input is None:
            return self.execute(button.action.value, button.label, button.value, style=style)
        input_id = self.next_id("in")
        submit = self.execute(button.action.value, _submit_title(button), button.value, style=style, i=input_id)
        return self.show_card(button.label, [self.text_input(input_id, button.input)], [submit])

    def buttons(self, buttons: Iterable[Button]) -> list[dict[str, Any]]:
        return [self.button(b) for b in buttons]

    def action_set(self, buttons: Iterable[Button]) -> dict[str, Any] | None:
        actions = self.buttons(buttons)
        return {"type": "ActionSet", "actions": actions} if actions else None

    def show_card(self, title: str, body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
        return {"type": "Action.ShowCard", "title": title, "card": {"type": "AdaptiveCard", "body": body, "actions": actions}}

    def text_input(self, input_id: str, spec: InputSpec) -> dict[str, Any]:
        field: dict[str, Any] = {"type": "Input.Text", "id": input_id, "label": self.clip(spec.label, INPUT_LABEL_MAX),
                                 "isMultiline": spec.multiline, "isRequired": spec.required,
                                 "maxLength": spec.max_length}
        if spec.required:
            field["errorMessage"] = REQUIRED
        if spec.placeholder:
            field["placeholder"] = spec.placeholder
        if spec.initial:
            if len(spec.initial) <= self.limits.prefill:
                field["value"] = spec.initial
            else:  # never pre-fill a cut text: submitting it unread would save the cut version
                field["placeholder"] = "The current text is too long to show here; type the new text."
        return field

    # ---- the card
    def card(self) -> dict[str, Any]:
        body = list(self.body)
        body += [text_block(note, isSubtle=True, size="Small") for note in self.notes]
        if self.truncated:
            body.append(text_block(TRUNCATION_NOTE, isSubtle=True, size="Small"))
        card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION,
                                "body": body or [text_block(" ")]}
        if self.actions:
            card["actions"] = self.actions
        msteams: dict[str, Any] = {"width": "Full"}
        if self.entities:
            msteams["entities"] = self.entities
        card["msteams"] = msteams
        return card


def _submit_title(button: Button) -> str:
    label = button.label.rstrip(".… ").strip()
    return label or "Submit"


def fit(build: Callable[[Limits], CardBuilder], max_bytes: int = MAX_CARD_BYTES) -> dict[str, Any]:
    """The most detailed rendering that fits; the last level is a safe floor."""
    card: dict[str, Any] = {}
    for limits in LEVELS:
        card = build(limits).card()
        if card_size(card) <= max_bytes:
            return card
    return _too_big(card)


def _too_big(card: dict[str, Any]) -> dict[str, Any]:
    # Only pathological input gets here (e.g. thousands of items); say so rather than fail delivery.
    return {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION,
            "body": [text_block("This card is too large to show in Teams. Use `status` in the thread for a summary.")],
            "msteams": {"width": "Full"}}
