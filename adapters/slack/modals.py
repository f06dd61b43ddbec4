"""Modals: the single-input modal behind a Button with `input`, FormView modals, reading their
submitted values, and the field errors that keep a modal open. Pure functions."""
from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    InputBlock, MarkdownTextObject, Option, PlainTextInputElement, PlainTextObject, RadioButtonsElement,
    SectionBlock, StaticSelectElement,
)
from slack_sdk.models.views import View

from adapters.slack.mrkdwn import SECTION_LIMIT, clip, split_text, to_mrkdwn
from adapters.slack.payloads import FORM_CALLBACK, INPUT_CALLBACK, ModalContext
from core.views import FormField, FormView, InputSpec

TITLE_LIMIT = 24
LABEL_LIMIT = 2000
PLACEHOLDER_LIMIT = 150
INPUT_MAX_LENGTH = 3000  # Slack's plain_text_input cap
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
RADIO_LIMIT = 10
ERROR_LIMIT = 300
INPUT_BLOCK = "fp_input"
ACTION = "value"


def field_block_id(name: str) -> str:
    return f"f:{name}"[:255]


def _plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=clip(text.strip() or "FlowPilot", limit))


def _text_input(multiline: bool, max_length: int, initial: str | None, placeholder: str | None
                ) -> PlainTextInputElement:
    limit = max(1, min(max_length, INPUT_MAX_LENGTH))
    return PlainTextInputElement(action_id=ACTION, multiline=multiline, max_length=limit,
                                 initial_value=initial[:limit] if initial else None,
                                 placeholder=_plain(placeholder, PLACEHOLDER_LIMIT) if placeholder else None)


def input_modal(spec: InputSpec, context: ModalContext, fallback_title: str) -> dict[str, Any]:
    block = InputBlock(block_id=INPUT_BLOCK, label=_plain(spec.label, LABEL_LIMIT), optional=not spec.required,
                       element=_text_input(spec.multiline, spec.max_length, spec.initial, spec.placeholder))
    view = View(type="modal", callback_id=INPUT_CALLBACK, title=_plain(spec.title or fallback_title, TITLE_LIMIT),
                submit=_plain("Submit", TITLE_LIMIT), close=_plain("Cancel", TITLE_LIMIT),
                private_metadata=context.encode(), blocks=[block])
    return view.to_dict()


def _choice(field: FormField) -> Any:
    options = [Option(value=clip(value, OPTION_VALUE_LIMIT), text=_plain(label, OPTION_TEXT_LIMIT))
               for value, label in field.options[:100]]
    initial = next((o for o, (value, _) in zip(options, field.options) if value == field.initial), None)
    if len(options) <= RADIO_LIMIT:
        return RadioButtonsElement(action_id=ACTION, options=options, initial_option=initial)
    return StaticSelectElement(action_id=ACTION, options=options, initial_option=initial,
                               placeholder=_plain("Choose…", PLACEHOLDER_LIMIT))


def _field_block(field: FormField) -> InputBlock:
    if field.kind == "choice":
        element = _choice(field)
    else:  # Slack has no password input: a secret is a plain input (said in the hint)
        element = _text_input(field.kind == "multiline", field.max_length, field.initial, None)
    hint = field.hint
    if field.kind == "secret":
        hint = (hint + " " if hint else "") + "Slack shows what you type; FlowPilot stores it encrypted."
    return InputBlock(block_id=field_block_id(field.name), label=_plain(field.label, LABEL_LIMIT),
                      optional=not field.required, element=element,
                      hint=_plain(hint, LABEL_LIMIT) if hint else None)


def form_modal(form: FormView, context: ModalContext) -> dict[str, Any]:
    blocks: list[Any] = []
    if form.intro:
        blocks += [SectionBlock(text=MarkdownTextObject(text=piece))
                   for piece in split_text(to_mrkdwn(form.intro), SECTION_LIMIT)[:5]]
    blocks += [_field_block(f) for f in form.fields[:90]]
    view = View(type="modal", callback_id=FORM_CALLBACK, title=_plain(form.title, TITLE_LIMIT),
                submit=_plain(form.submit_label, TITLE_LIMIT), close=_plain("Cancel", TITLE_LIMIT),
                private_metadata=context.encode(), blocks=blocks)
    return view.to_dict()


# ----------------------------------------------------------------------------- submissions
def _element_value(element: dict[str, Any]) -> str:
    if element.get("type") in ("radio_buttons", "static_select"):
        return str((element.get("selected_option") or {}).get("value") or "")
    return str(element.get("value") or "")


def submitted_text(state_values: dict[str, Any]) -> str:
    element = (state_values.get(INPUT_BLOCK) or {}).get(ACTION) or {}
    return _element_value(element)


def submitted_fields(state_values: dict[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for block_id, actions in state_values.items():
        if block_id.startswith("f:") and isinstance(actions, dict) and ACTION in actions:
            fields[block_id[2:]] = _element_value(actions[ACTION])
    return fields


def field_errors(message: str, field: str | None, callback_id: str, state_values: dict[str, Any]) -> dict[str, str]:
    """`response_action: errors` body: the error goes on the named field, else on the first input."""
    text = clip(message, ERROR_LIMIT)
    if callback_id == INPUT_CALLBACK:
        return {INPUT_BLOCK: text}
    if field and field_block_id(field) in state_values:
        return {field_block_id(field): text}
    first = next(iter(state_values), None)
    return {first: text} if first else {}
