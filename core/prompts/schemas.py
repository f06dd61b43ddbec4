"""Structured-output schemas of the generators (DOMAIN §5.5, §6.3) and the tolerant fact parser.

Every field is nullable: the structured-output API requires every field to be present, so "no
value" has to be expressed as null. Readers display null fields gracefully.
"""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from core.markers import strip_code_fence


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value.strip() if isinstance(value, str) else value


def _clean_list(value: Any) -> Any:
    """Drop blank entries; an empty list stays empty (it means "nothing"), None stays None."""
    if isinstance(value, list):
        return [item.strip() for item in value if isinstance(item, str) and item.strip()]
    return value


class EscalationSummary(BaseModel):
    """Handoff summary for the senior engineer who picks up an escalated ticket."""

    # The consolidated summary of DOMAIN §6.3, stored on the handoff. The docstring and the field
    # descriptions are sent to the model as part of the schema, so they speak to it.
    summary_prose: str | None = Field(None, description="One ticket-note style paragraph.")
    what_we_know: list[str] | None = Field(None, description="One short line per confirmed fact.")
    likely_cause: str | None = Field(None, description="One sentence, or null when unclear.")
    suggested_steps: list[str] | None = Field(None, description="2 to 4 short, concrete next steps.")
    confidence: Literal["low", "medium", "high"] | None = Field(
        None, description="How strongly the evidence supports likely_cause."
    )

    @field_validator("summary_prose", "likely_cause", mode="before")
    @classmethod
    def _strip_text(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @field_validator("what_we_know", "suggested_steps", mode="before")
    @classmethod
    def _strip_lists(cls, value: Any) -> Any:
        return _clean_list(value)

    @field_validator("confidence", mode="before")
    @classmethod
    def _lower_confidence(cls, value: Any) -> Any:
        value = _blank_to_none(value)
        return value.lower() if isinstance(value, str) else value


class SynthesizedFact(BaseModel):
    """At most one confirmed fact distilled from an answer or a check output; both null when none."""

    text: str | None = Field(None, description="One past-tense sentence stating the fact.")
    summary: str | None = Field(None, description="3 to 7 words on what the fact rules in or out.")


def _string_or_none(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def parse_synthesized_fact(raw: str | None) -> SynthesizedFact:
    """Tolerant parse of the synthesis output: fences stripped; non-JSON, non-string or blank
    fields become null. Never raises."""
    if not isinstance(raw, str) or not raw.strip():
        return SynthesizedFact()
    body = strip_code_fence(raw)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = _first_json_object(body)
    if not isinstance(data, dict):
        return SynthesizedFact()
    return SynthesizedFact(text=_string_or_none(data.get("text")), summary=_string_or_none(data.get("summary")))


def _first_json_object(text: str) -> Any:
    """The first JSON object embedded in text (a model that added prose around it), or None."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    return value
