"""Reading a card click back: Action.Execute `data` (invoke) or Action.Submit `value` (message).

The card put `{"a": action, "v": ids, "k": view type}` in the data, plus `"i"` (the Input.Text
whose value is the click's text), `"f"` (form field name → input id) or `"sel"` (value key → id of
the Input.ChoiceSet that picks it). Teams merges every input's value into the same dict under its
input id. Pure functions, no SDK types."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INVOKE_CARD = "application/vnd.microsoft.card.adaptive"
INVOKE_MESSAGE = "application/vnd.microsoft.activity.message"


@dataclass(frozen=True)
class CardAction:
    action: str
    value: dict[str, str]
    text: str | None = None
    fields: dict[str, str] | None = None
    kind: str | None = None  # the type of the view whose card was clicked


def _text(raw: Any) -> str:
    return "" if raw is None else str(raw)


def read_action(data: Any, verb: str | None = None) -> CardAction | None:
    """None when the data is not one of our cards' (an old card, another app's card)."""
    if not isinstance(data, dict):
        return None
    action = data.get("a") or verb
    ids = data.get("v")
    if not isinstance(action, str) or not action or not isinstance(ids, dict):
        return None
    value = {str(k): _text(v) for k, v in ids.items()}
    picks = data.get("sel")
    if isinstance(picks, dict):
        for key, input_id in picks.items():
            picked = data.get(str(input_id))
            if picked not in (None, ""):
                value[str(key)] = _text(picked)
    text = None
    input_id = data.get("i")
    if isinstance(input_id, str) and input_id:
        text = _text(data.get(input_id))
    fields = None
    field_ids = data.get("f")
    if isinstance(field_ids, dict):
        fields = {str(name): _text(data.get(str(iid))) for name, iid in field_ids.items()}
    kind = data.get("k") if isinstance(data.get("k"), str) else None
    return CardAction(action=action, value=value, text=text, fields=fields, kind=kind)


def card_response(card: dict[str, Any]) -> dict[str, Any]:
    """AdaptiveCardInvokeResponse body: the clicker's copy of the card becomes `card`."""
    return {"statusCode": 200, "type": INVOKE_CARD, "value": card}


def message_response(text: str) -> dict[str, Any]:
    """AdaptiveCardInvokeResponse body: Teams shows `text` and leaves the card as it was."""
    return {"statusCode": 200, "type": INVOKE_MESSAGE, "value": text}
