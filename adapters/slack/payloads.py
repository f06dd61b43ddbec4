"""What we put into Slack payloads and read back: button values, action ids, modal metadata and
the de-duplication ids of each kind of inbound request. Pure functions.

A button's value is JSON `{"a": action, "v": ids}` plus, for a button that asks for text first,
`"i"`: the input to ask for. Slack caps a value at 2000 characters, so an over-long pre-filled
text is dropped from the value (the modal then opens empty) rather than cut."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.views import Button, InputSpec

VALUE_LIMIT = 2000
ACTION_ID_PREFIX = "fp"
INPUT_CALLBACK = "fp:input"
FORM_CALLBACK = "fp:form"
METADATA_LIMIT = 3000


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def action_id(action: str, index: int) -> str:
    return f"{ACTION_ID_PREFIX}:{action}:{index}"


def _compact_input(spec: InputSpec, with_initial: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"n": spec.name, "l": spec.label, "m": int(spec.multiline), "r": int(spec.required),
                            "x": spec.max_length}
    if spec.title:
        data["t"] = spec.title
    if spec.placeholder:
        data["p"] = spec.placeholder
    if with_initial and spec.initial:
        data["s"] = spec.initial
    return data


def encode_button(button: Button) -> str:
    payload: dict[str, Any] = {"a": button.action.value, "v": button.value}
    if button.input is not None:
        payload["i"] = _compact_input(button.input, with_initial=True)
        if len(_dumps(payload)) > VALUE_LIMIT:
            payload["i"] = _compact_input(button.input, with_initial=False)
    encoded = _dumps(payload)
    if len(encoded) > VALUE_LIMIT:
        raise ValueError(f"button value for {button.action.value} is {len(encoded)} characters (limit {VALUE_LIMIT})")
    return encoded


@dataclass(frozen=True)
class Click:
    action: str
    value: dict[str, str]
    input: InputSpec | None = None


def decode_button(raw: str | None) -> Click:
    data = json.loads(raw or "{}")
    if not isinstance(data, dict) or not isinstance(data.get("a"), str):
        raise ValueError("not a FlowPilot button")
    value = data.get("v") if isinstance(data.get("v"), dict) else {}
    spec = None
    i = data.get("i")
    if isinstance(i, dict):
        spec = InputSpec(name=str(i.get("n") or "text"), label=str(i.get("l") or "Text"), multiline=bool(i.get("m")),
                         required=bool(i.get("r", 1)), max_length=int(i.get("x") or 500), title=i.get("t"),
                         placeholder=i.get("p"), initial=i.get("s"))
    return Click(action=data["a"], value={str(k): str(v) for k, v in value.items()}, input=spec)


@dataclass(frozen=True)
class ModalContext:
    """Carried through a modal in `private_metadata`: what to call and where the click happened."""

    action: str
    value: dict[str, str]
    team_id: str
    channel_id: str | None
    thread_ts: str | None
    user_id: str
    input_name: str | None = None  # single-input modal (Button.input)

    def encode(self) -> str:
        data = {"a": self.action, "v": self.value, "tm": self.team_id, "c": self.channel_id, "t": self.thread_ts,
                "u": self.user_id, "n": self.input_name}
        encoded = _dumps(data)
        if len(encoded) > METADATA_LIMIT:
            raise ValueError("modal metadata is too long")
        return encoded

    @classmethod
    def decode(cls, raw: str | None) -> "ModalContext":
        data = json.loads(raw or "{}")
        if not isinstance(data, dict) or not isinstance(data.get("a"), str):
            raise ValueError("not a FlowPilot modal")
        value = data.get("v") if isinstance(data.get("v"), dict) else {}
        return cls(action=data["a"], value={str(k): str(v) for k, v in value.items()}, team_id=str(data.get("tm") or ""),
                   channel_id=data.get("c"), thread_ts=data.get("t"), user_id=str(data.get("u") or ""),
                   input_name=data.get("n"))


# ----------------------------------------------------------------------------- de-duplication ids
def command_event_id(trigger_id: str) -> str:
    return f"cmd:{trigger_id}"


def action_event_id(action_ts: str | None, trigger_id: str | None) -> str:
    return f"act:{action_ts or trigger_id}"


def view_event_id(view_id: str, view_hash: str | None) -> str:
    return f"view:{view_id}:{view_hash or ''}"


def event_event_id(event_id: str) -> str:
    return event_id  # Slack's own event_id is stable across retries
