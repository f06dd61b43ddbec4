"""The anti-parrot guardrail (DOMAIN §4.7), run against every prompt constant in core.prompts.

Literal sample payloads in system prompts were recited by the model on unrelated tickets. These
tests keep prompts to placeholder-only schemas and block every token that has leaked before."""
from __future__ import annotations

import pytest

from tests.guardrail import (
    LEAKED_TOKENS,
    check_marker_blocks,
    collect_prompt_constants,
    find_leaked_tokens,
    is_placeholder,
)

CHAT_MARKERS = ("QUESTIONS", "ACTIONS", "PROMOTE", "SUGGEST_FIX", "FIX_OUTCOME", "FORK")
PROMPTS = collect_prompt_constants("core.prompts")


def test_the_prompt_modules_are_collected():
    # Without this the two guardrail tests below could pass on an empty set.
    names = {name.rsplit(".", 1)[1] for name in PROMPTS}
    assert {
        "CHAT_SYSTEM_PROMPT",
        "TURN_REMINDER_PROMPT",
        "RESOLUTION_NOTE_PROMPT",
        "ESCALATION_PACKAGE_PROMPT",
        "ESCALATION_SUMMARY_PROMPT",
        "FACT_SYNTHESIS_PROMPT",
        "AUDIENCE_VARIANT_PROMPT",
        "STATUS_UPDATE_PROMPT",
    } <= names


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_no_known_leaked_token_in_any_prompt(name):
    assert find_leaked_tokens(PROMPTS[name]) == []


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_marker_blocks_hold_placeholders_only(name):
    assert check_marker_blocks(PROMPTS[name]).violations == []


def test_every_chat_marker_schema_is_checked():
    # The check above is only meaningful if the real prompts contain blocks in the exact shape
    # the guardrail matches; a reformatted schema would silently escape it.
    checked = set()
    values = 0
    for text in PROMPTS.values():
        report = check_marker_blocks(text)
        checked.update(report.markers_checked)
        values += report.values_checked
    assert set(CHAT_MARKERS) <= checked
    assert values > 0


# --------------------------------------------------------------------------- the guardrail bites
def test_a_concrete_question_in_a_marker_block_is_a_violation():
    prompt = (
        "Reply like this:\n"
        "[QUESTIONS]\n"
        '[{"text": "Is the print spooler service running on the file server?", "context": "<why>"}]\n'
        "[/QUESTIONS]\n"
    )
    report = check_marker_blocks(prompt)
    assert report.markers_checked == ["QUESTIONS"]
    assert [v.value for v in report.violations] == [
        "Is the print spooler service running on the file server?"
    ]


def test_a_concrete_fix_title_and_command_are_violations():
    prompt = (
        "\n[SUGGEST_FIX]\n"
        '{"title": "Restart the sync service", "description": "<what it does>", "confidence": 80}\n'
        "[/SUGGEST_FIX]\n"
        "[ACTIONS]\n"
        '[{"label": "<label>", "command": "ipconfig /flushdns"}]\n'
        "[/ACTIONS]"
    )
    violations = check_marker_blocks(prompt).violations
    assert {(v.marker, v.value) for v in violations} == {
        ("SUGGEST_FIX", "Restart the sync service"),
        ("ACTIONS", "ipconfig /flushdns"),
    }


def test_out_of_scope_marker_blocks_are_checked_too():
    prompt = '[TREE_UPDATE]\n{"node": "Check the mail flow rules"}\n[/TREE_UPDATE]'
    assert [v.marker for v in check_marker_blocks(prompt).violations] == ["TREE_UPDATE"]


def test_placeholders_enums_and_keys_pass():
    prompt = (
        "[PROMOTE]\n"
        '{"source_type": "question|diagnostic_check|ai_synthesis", "source_ref": "<id>", '
        '"text": "<fact>", "summary": "..."}\n'
        "[/PROMOTE]\n"
        "[ACTIONS]\n"
        '[{"label": "<label>", "field_type": "password", "slug": "a_snake_case_slug", "x": "TODO later"}]\n'
        "[/ACTIONS]"
    )
    report = check_marker_blocks(prompt)
    assert report.violations == []
    assert report.values_checked == 5  # the enum, "...", "password", the slug and "TODO later"


@pytest.mark.parametrize(
    "value, allowed",
    [
        ("<anything here>", True),
        ("text|password|select", True),
        ("._.", True),
        ("diagnostic_check", True),
        ("powershell", True),
        ("name in kebab-case", True),
        ("Outlook", False),
        ("server01", False),
        ("0x80070005", False),
    ],
)
def test_placeholder_rule(value, allowed):
    assert is_placeholder(value) is allowed


@pytest.mark.parametrize("token", LEAKED_TOKENS)
def test_every_leaked_token_is_reported(token):
    prompt = f"Never say things like {token.upper()} in a reply."
    assert find_leaked_tokens(prompt) == [token]
