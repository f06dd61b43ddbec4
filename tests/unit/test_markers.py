"""The marker protocol parser (DOMAIN §4.1–§4.2): what the engineer sees and what lands in the lane."""
from __future__ import annotations

import json
import logging
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.markers import (
    KNOWN_MARKERS,
    ActionMarker,
    FixOutcomeMarker,
    ForkOption,
    ParsedReply,
    QuestionMarker,
    log_summary,
    parse_markers,
)
from core.model import FactSource

ANY_TAG_RE = re.compile(r"\[/?(?:" + "|".join(KNOWN_MARKERS) + r")\]")
REF = uuid.UUID("3f2b8c4e-9d1a-4b7e-8c2f-1a2b3c4d5e6f")


def block(name: str, payload: object) -> str:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return f"[{name}]\n{body}\n[/{name}]"


def reply(*blocks: str, analysis: str = "The symptoms point at the local profile.") -> str:
    return analysis + "\n\n" + "\n".join(blocks)


def parse(*blocks: str) -> ParsedReply:
    return parse_markers(reply(*blocks))


# --------------------------------------------------------------------------- display text
def test_markers_are_removed_and_the_analysis_is_kept():
    parsed = parse(
        block("QUESTIONS", [{"text": "Q1?"}]),
        block("ACTIONS", [{"label": "Check A", "command": "cmd-a", "description": "shows A"}]),
        block("PROMOTE", {"source_type": "ai_synthesis", "text": "F1"}),
        block("SUGGEST_FIX", {"title": "T", "description": "D", "confidence": 70}),
        block("FIX_OUTCOME", {"fix_id": str(REF), "outcome": "success"}),
        block("FORK", {"fork_reason": "R", "options": [{"label": "A"}, {"label": "B"}]}),
    )
    assert parsed.display_text == "The symptoms point at the local profile."
    assert parsed.dropped == ()


@pytest.mark.parametrize(
    "body",
    [
        '```json\n[{"text": "Q1?"}]\n```',
        '```\n[{"text": "Q1?"}]\n```',
        '```JSON [{"text": "Q1?"}] ```',
    ],
)
def test_a_body_wrapped_in_a_code_fence_is_accepted(body):
    parsed = parse(f"[QUESTIONS]\n{body}\n[/QUESTIONS]")
    assert parsed.questions == (QuestionMarker("Q1?"),)
    assert "```" not in parsed.display_text


def test_a_whole_block_wrapped_in_a_code_fence_leaves_no_empty_fence_behind():
    parsed = parse_markers('Analysis.\n\n```json\n[QUESTIONS]\n[{"text": "Q1?"}]\n[/QUESTIONS]\n```\n')
    assert parsed.questions == (QuestionMarker("Q1?"),)
    assert parsed.display_text == "Analysis."


def test_real_code_blocks_in_the_analysis_are_left_intact():
    raw = "Run these:\n```\nfirst\n```\n\n```\nsecond\n```\n" + block("QUESTIONS", [{"text": "Q?"}])
    assert parse_markers(raw).display_text == "Run these:\n```\nfirst\n```\n\n```\nsecond\n```"


@pytest.mark.parametrize(
    "name, body",
    [
        ("QUESTIONS", "[{not json"),
        ("ACTIONS", "{'label': 'single quotes'}"),
        ("PROMOTE", "nothing here"),
        ("SUGGEST_FIX", '{"title": "T", "description": "D", "confidence": }'),
        ("FIX_OUTCOME", ""),
        ("FORK", "[1, 2"),
    ],
)
def test_a_malformed_block_is_removed_logged_and_dropped(name, body, caplog):
    with caplog.at_level(logging.WARNING, logger="core.markers"):
        parsed = parse(f"[{name}]\n{body}\n[/{name}]")
    assert parsed.display_text == "The symptoms point at the local profile."
    assert parsed.dropped == (name,)
    assert name in caplog.text


def test_whitespace_is_tidied():
    raw = "\n\n  First line.  \n\n\n\n\nSecond line.\n" + block("QUESTIONS", [{"text": "Q?"}]) + "\n\n\n\nTail.\n\n"
    assert parse_markers(raw).display_text == "First line.\n\nSecond line.\n\nTail."


@pytest.mark.parametrize("raw", ["", "   \n  ", None, 42])
def test_empty_or_non_text_input_gives_an_empty_reply(raw):
    parsed = parse_markers(raw)
    assert parsed == ParsedReply(display_text="")


# --------------------------------------------------------------------------- dangling and stray tags
@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Analysis. [/QUESTIONS]", "Analysis."),
        ("Analysis.\n[/FORK]\n[/ACTIONS]", "Analysis."),
        ("Analysis.\n[QUESTIONS]\n1. Which version is installed?", "Analysis.\n\n1. Which version is installed?"),
        ('Analysis.\n[QUESTIONS]\n[{"text": "Q?"}]', "Analysis."),
        ('Analysis.\n[ACTIONS]\n```json\n[{"label": "cut off mid', "Analysis."),
        ('Analysis.\n[PROMOTE]\n{"text": "x"}\nMore prose after it.', "Analysis.\n\nMore prose after it."),
        ("[[QUESTIONS]QUESTIONS] text", "text"),
        ("[QUES[FORK]{}[/FORK]TIONS] text", "[QUES\nTIONS] text"),
    ],
)
def test_stray_and_unclosed_tags_never_reach_the_display_text(raw, expected):
    parsed = parse_markers(raw)
    assert parsed.display_text == expected
    assert not ANY_TAG_RE.search(parsed.display_text)


def test_an_unclosed_block_does_not_swallow_the_complete_block_after_it():
    raw = 'Analysis.\n[QUESTIONS]\n[{"text": "trunc\n\n[QUESTIONS]\n[{"text": "Q?"}]\n[/QUESTIONS]'
    parsed = parse_markers(raw)
    assert parsed.questions == (QuestionMarker("Q?"),)
    assert parsed.display_text == "Analysis."
    assert parsed.dropped == ("QUESTIONS",)


def test_an_unclosed_block_with_a_json_body_is_dropped_not_used():
    parsed = parse_markers('Analysis.\n[QUESTIONS]\n[{"text": "Q?"}]')
    assert parsed.questions == ()
    assert parsed.lane_present is False
    assert parsed.dropped == ("QUESTIONS",)


# --------------------------------------------------------------------------- parse order
def test_fork_is_parsed_before_actions():
    # An ACTIONS-looking text inside the FORK body belongs to the FORK, so no action appears.
    options = [{"label": "A", "description": "[ACTIONS][{\"label\": \"x\"}][/ACTIONS]"}, {"label": "B"}]
    parsed = parse(block("FORK", {"fork_reason": "R", "options": options}))
    assert parsed.fork is not None and parsed.fork.options[0].label == "A"
    assert parsed.actions == ()


def test_actions_are_parsed_before_questions():
    raw = '[ACTIONS]\n[{"label": "L"}] [QUESTIONS]\n[{"text": "Q?"}]\n[/QUESTIONS]\n[/ACTIONS]'
    parsed = parse(raw)
    assert parsed.questions == ()
    assert parsed.actions == ()
    assert parsed.dropped == ("ACTIONS",)
    assert not ANY_TAG_RE.search(parsed.display_text)


def test_questions_are_parsed_before_promote():
    raw = '[QUESTIONS]\n[{"text": "Q?"}] [PROMOTE]{"source_type": "ai_synthesis", "text": "F"}[/PROMOTE]\n[/QUESTIONS]'
    parsed = parse(raw)
    assert parsed.promotes == ()
    assert parsed.dropped == ("QUESTIONS",)


# --------------------------------------------------------------------------- QUESTIONS / ACTIONS
@pytest.mark.parametrize(
    "payload, expected",
    [
        ([{"text": "Q1?", "context": "why"}], (QuestionMarker("Q1?", "why"),)),
        ([{"text": "  Q1?  ", "context": "   "}], (QuestionMarker("Q1?"),)),
        ([{"context": "no text"}, {"text": ""}, {"text": 5}, "Q as a string", {"text": "Q2?"}], (QuestionMarker("Q2?"),)),
        ([{"text": f"Q{i}?"} for i in range(5)], tuple(QuestionMarker(f"Q{i}?") for i in range(3))),
    ],
)
def test_question_items(payload, expected):
    parsed = parse(block("QUESTIONS", payload))
    assert parsed.questions == expected
    assert parsed.lane_present is True


@pytest.mark.parametrize(
    "payload",
    [{"text": "an object, not an array"}, "a string", 7, [], [{"context": "no text"}], [{"text": "  "}]],
)
def test_a_questions_block_without_a_valid_item_is_dropped(payload):
    parsed = parse(block("QUESTIONS", payload))
    assert parsed.questions == ()
    assert parsed.dropped == ("QUESTIONS",)
    assert parsed.lane_present is False


def test_action_items():
    payload = [
        {"label": "Check A", "command": "cmd-a", "description": "shows A"},
        {"label": "Open the console", "description": "GUI only"},
        {"label": "Spin off", "action_type": "create_spin_off_ticket"},
        {"command": "no label"},
        {"label": ""},
    ]
    parsed = parse(block("ACTIONS", payload))
    assert parsed.actions == (
        ActionMarker("Check A", "cmd-a", "shows A"),
        ActionMarker("Open the console", None, "GUI only"),
        ActionMarker("Spin off", action_type="create_spin_off_ticket"),
    )
    assert parsed.lane_present is True


def test_at_most_four_actions_are_kept_in_order():
    parsed = parse(block("ACTIONS", [{"label": f"L{i}"} for i in range(6)]))
    assert [a.label for a in parsed.actions] == ["L0", "L1", "L2", "L3"]


def test_obsolete_diagnostic_checks_block_counts_as_actions():
    parsed = parse(block("DIAGNOSTIC_CHECKS", [{"label": "L", "command": "c"}]))
    assert parsed.actions == (ActionMarker("L", "c"),)
    assert parsed.lane_present is True
    assert parsed.display_text == "The symptoms point at the local profile."


def test_items_of_several_blocks_are_combined_before_the_cap():
    parsed = parse(block("QUESTIONS", [{"text": "Q1?"}, {"text": "Q2?"}]), block("QUESTIONS", [{"text": "Q3?"}, {"text": "Q4?"}]))
    assert [q.text for q in parsed.questions] == ["Q1?", "Q2?", "Q3?"]


def test_a_reply_with_only_optional_markers_has_no_lane():
    parsed = parse(block("PROMOTE", {"source_type": "ai_synthesis", "text": "F"}))
    assert parsed.lane_present is False
    assert len(parsed.promotes) == 1


# --------------------------------------------------------------------------- out-of-scope markers
@pytest.mark.parametrize("name", ["TREE_UPDATE", "STEPS_UPDATE", "METADATA", "INTAKE_FORM", "DELTA"])
def test_flow_editor_markers_are_stripped_and_dropped(name):
    parsed = parse(block(name, {"anything": [1, 2]}), block("QUESTIONS", [{"text": "Q?"}]))
    assert parsed.display_text == "The symptoms point at the local profile."
    assert parsed.dropped == (name,)
    assert parsed.questions == (QuestionMarker("Q?"),)


# --------------------------------------------------------------------------- PROMOTE
@pytest.mark.parametrize(
    "payload, source_type, ref, summary",
    [
        ({"source_type": "question", "source_ref": str(REF), "text": "F", "summary": "rules out X"}, FactSource.QUESTION, REF, "rules out X"),
        ({"source_type": "diagnostic_check", "source_ref": str(REF).upper(), "text": "F"}, FactSource.DIAGNOSTIC_CHECK, REF, None),
        ({"source_type": "question", "source_ref": "q-1", "text": "F", "summary": "s"}, FactSource.QUESTION, None, "s"),
        ({"source_type": "question", "source_ref": 12, "text": "F"}, FactSource.QUESTION, None, None),
        ({"source_type": "ai_synthesis", "source_ref": str(REF), "text": "F", "summary": "  "}, FactSource.AI_SYNTHESIS, None, None),
        ({"source_type": " Question ", "text": "F"}, FactSource.QUESTION, None, None),
    ],
)
def test_promote_item(payload, source_type, ref, summary):
    (promote,) = parse(block("PROMOTE", payload)).promotes
    assert (promote.source_type, promote.source_ref, promote.text, promote.summary) == (source_type, ref, "F", summary)


@pytest.mark.parametrize(
    "payload",
    [
        {"source_type": "user_note", "text": "F"},
        {"source_type": "guess", "text": "F"},
        {"text": "F"},
        {"source_type": "question", "text": "   "},
        {"source_type": "question"},
        "a string",
        [1, 2],
    ],
)
def test_an_invalid_promote_is_dropped(payload):
    parsed = parse(block("PROMOTE", payload))
    assert parsed.promotes == ()
    assert parsed.dropped == ("PROMOTE",)


def test_several_promote_blocks_and_array_bodies_each_give_facts():
    parsed = parse(
        block("PROMOTE", {"source_type": "question", "source_ref": str(REF), "text": "F1"}),
        block("PROMOTE", [{"source_type": "ai_synthesis", "text": "F2"}, {"source_type": "user_note", "text": "no"}, {"source_type": "diagnostic_check", "text": "F3"}]),
    )
    assert [p.text for p in parsed.promotes] == ["F1", "F2", "F3"]
    assert parsed.dropped == ()


def test_an_empty_promote_list_means_no_fact_and_is_not_an_error():
    parsed = parse(block("PROMOTE", []))
    assert parsed.promotes == ()
    assert parsed.dropped == ()
    assert parsed.display_text == "The symptoms point at the local profile."


# --------------------------------------------------------------------------- SUGGEST_FIX
FIX = {"title": "T", "description": "D", "confidence": 70}


@pytest.mark.parametrize(
    "confidence, expected",
    [(70, 70), (120.7, 100), (-3, 0), (49.6, 50), (0, 0), (100, 100), ("75", 75), ("85%", 85)],
)
def test_confidence_is_clamped_and_rounded(confidence, expected):
    parsed = parse(block("SUGGEST_FIX", {**FIX, "confidence": confidence}))
    assert parsed.suggest_fix is not None and parsed.suggest_fix.confidence == expected


@pytest.mark.parametrize(
    "change",
    [
        {"title": ""},
        {"title": None},
        {"description": "  "},
        {"confidence": None},
        {"confidence": "high"},
        {"confidence": True},
        {"confidence": [80]},
        {"confidence": float("nan")},
        {"confidence": 10**400},
    ],
)
def test_an_incomplete_fix_is_dropped(change):
    parsed = parse(block("SUGGEST_FIX", {**FIX, **change}))
    assert parsed.suggest_fix is None
    assert parsed.dropped == ("SUGGEST_FIX",)


def test_a_missing_confidence_drops_the_fix():
    parsed = parse(block("SUGGEST_FIX", {"title": "T", "description": "D"}))
    assert parsed.suggest_fix is None


def test_the_fix_fields_are_kept_and_the_title_is_cut_to_200():
    payload = {
        **FIX,
        "title": "x" * 250,
        "script_template_slug": "reset-thing",
        "ai_drafted_script": "line 1\nline 2",
        "ai_drafted_parameters": {"a": 1},
    }
    fix = parse(block("SUGGEST_FIX", payload)).suggest_fix
    assert fix is not None
    assert fix.title == "x" * 200
    assert (fix.script_template_slug, fix.ai_drafted_script, fix.ai_drafted_parameters) == ("reset-thing", "line 1\nline 2", {"a": 1})


@pytest.mark.parametrize("parameters", [["a", "b"], "a=1", 3])
def test_drafted_parameters_are_kept_only_when_they_are_an_object(parameters):
    fix = parse(block("SUGGEST_FIX", {**FIX, "ai_drafted_parameters": parameters})).suggest_fix
    assert fix is not None and fix.ai_drafted_parameters is None


def test_the_last_suggest_fix_block_wins():
    parsed = parse(block("SUGGEST_FIX", {**FIX, "title": "First"}), block("SUGGEST_FIX", {**FIX, "title": "Second"}))
    assert parsed.suggest_fix is not None and parsed.suggest_fix.title == "Second"
    assert parsed.dropped == ("SUGGEST_FIX",)  # the superseded first block


def test_a_malformed_last_fix_block_means_no_fix_even_after_a_valid_one():
    parsed = parse(block("SUGGEST_FIX", FIX), block("SUGGEST_FIX", {"title": "no description"}))
    assert parsed.suggest_fix is None
    assert parsed.dropped == ("SUGGEST_FIX", "SUGGEST_FIX")


# --------------------------------------------------------------------------- FIX_OUTCOME
@pytest.mark.parametrize(
    "payload, expected",
    [
        ({"fix_id": str(REF), "outcome": "success", "reason": "works now"}, FixOutcomeMarker(str(REF), "success", "works now")),
        ({"fix_id": " abc ", "outcome": " FAILURE "}, FixOutcomeMarker("abc", "failure")),
        ({"fix_id": "abc", "outcome": "Partial", "reason": " "}, FixOutcomeMarker("abc", "partial")),
    ],
)
def test_fix_outcome(payload, expected):
    assert parse(block("FIX_OUTCOME", payload)).fix_outcome == expected


@pytest.mark.parametrize(
    "payload",
    [
        {"fix_id": "abc", "outcome": "fixed"},
        {"fix_id": "abc", "outcome": "applied_success"},
        {"fix_id": "", "outcome": "success"},
        {"fix_id": 5, "outcome": "success"},
        {"outcome": "success"},
        [{"fix_id": "abc", "outcome": "success"}],
    ],
)
def test_an_invalid_fix_outcome_is_dropped(payload):
    parsed = parse(block("FIX_OUTCOME", payload))
    assert parsed.fix_outcome is None
    assert parsed.dropped == ("FIX_OUTCOME",)


def test_the_last_fix_outcome_wins():
    parsed = parse(
        block("FIX_OUTCOME", {"fix_id": "a", "outcome": "failure"}),
        block("FIX_OUTCOME", {"fix_id": "a", "outcome": "success"}),
    )
    assert parsed.fix_outcome == FixOutcomeMarker("a", "success")


# --------------------------------------------------------------------------- FORK
def test_fork_keeps_two_to_four_valid_options():
    options = [{"label": f"O{i}", "description": f"d{i}"} for i in range(6)]
    options.insert(1, {"description": "no label"})
    fork = parse(block("FORK", {"fork_reason": "R", "options": options})).fork
    assert fork is not None
    assert fork.fork_reason == "R"
    assert fork.options == tuple(ForkOption(f"O{i}", f"d{i}") for i in range(4))


@pytest.mark.parametrize(
    "payload",
    [
        {"fork_reason": "R", "options": [{"label": "only one"}]},
        {"fork_reason": "R", "options": [{"label": "A"}, {"label": " "}]},
        {"fork_reason": "R", "options": "A, B"},
        {"fork_reason": "R"},
        [{"label": "A"}, {"label": "B"}],
    ],
)
def test_a_fork_with_fewer_than_two_options_is_dropped(payload):
    parsed = parse(block("FORK", payload))
    assert parsed.fork is None
    assert parsed.dropped == ("FORK",)


# --------------------------------------------------------------------------- log line
def test_log_summary_has_the_per_turn_fields():
    raw = reply(
        block("QUESTIONS", [{"text": "Q1?"}, {"text": "Q2?"}]),
        block("ACTIONS", [{"label": "L"}]),
        block("PROMOTE", [{"source_type": "ai_synthesis", "text": "F1"}, {"source_type": "ai_synthesis", "text": "F2"}]),
        block("FIX_OUTCOME", {"fix_id": "a", "outcome": "partial"}),
        block("METADATA", {}),
    )
    parsed = parse_markers(raw)
    assert log_summary(parsed, raw) == {
        "actions": 1,
        "questions": 2,
        "fork": False,
        "promote_count": 2,
        "suggest_fix": False,
        "outcome_proposal": "partial",
        "raw_length": len(raw),
        "display_length": len("The symptoms point at the local profile."),
        "lane_present": True,
        "dropped": ["METADATA"],
    }


# --------------------------------------------------------------------------- properties
TAGS = [f"[{name}]" for name in KNOWN_MARKERS] + [f"[/{name}]" for name in KNOWN_MARKERS]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
MARKER_ITEMS = st.fixed_dictionaries(
    {},
    optional={
        "text": st.text(max_size=10) | st.integers(),
        "label": st.text(max_size=10),
        "source_type": st.sampled_from(["question", "diagnostic_check", "ai_synthesis", "user_note", "x"]),
        "source_ref": st.uuids().map(str) | st.text(max_size=8),
        "title": st.text(max_size=10),
        "description": st.text(max_size=10),
        "confidence": st.integers() | st.floats() | st.text(max_size=4) | st.booleans(),
        "fix_id": st.text(max_size=8),
        "outcome": st.sampled_from(["success", "FAILURE", "partial", "nope", ""]),
        "options": st.lists(st.fixed_dictionaries({"label": st.text(max_size=6)}), max_size=6),
        "ai_drafted_parameters": JSON_VALUES,
    },
)
BODIES = st.one_of(
    JSON_VALUES.map(lambda v: json.dumps(v)),
    MARKER_ITEMS.map(json.dumps),
    st.lists(MARKER_ITEMS, max_size=5).map(json.dumps),
    st.text(max_size=30),
)
FRAGMENTS = st.one_of(
    st.sampled_from(TAGS),
    st.sampled_from(["{", "}", "[", "]", "```", "```json\n", "\n", "\n\n\n", " ", '"', ":", ",", "/", "QUESTIONS", "["]),
    st.text(max_size=20),
    BODIES,
    st.builds(lambda name, body: f"[{name}]\n{body}\n[/{name}]", st.sampled_from(KNOWN_MARKERS), BODIES),
    st.builds(lambda name, body: f"```json\n[{name}]\n```\n{body}\n```\n[/{name}]", st.sampled_from(KNOWN_MARKERS), BODIES),
)
REPLIES = st.lists(FRAGMENTS, max_size=25).map("".join)


@settings(max_examples=500, deadline=None)
@given(REPLIES)
def test_parse_never_raises_and_no_marker_tag_survives(raw):
    parsed = parse_markers(raw)
    text = parsed.display_text
    assert not ANY_TAG_RE.search(text)
    assert text == text.strip()
    assert "\n\n\n" not in text
    assert len(parsed.questions) <= 3 and len(parsed.actions) <= 4
    assert parsed.lane_present == bool(parsed.questions or parsed.actions)
    if parsed.suggest_fix is not None:
        assert 0 <= parsed.suggest_fix.confidence <= 100 and len(parsed.suggest_fix.title) <= 200
    if parsed.fork is not None:
        assert 2 <= len(parsed.fork.options) <= 4
    assert all(p.source_type is not FactSource.USER_NOTE for p in parsed.promotes)


@settings(max_examples=200, deadline=None)
@given(REPLIES)
def test_parsing_the_display_text_again_changes_nothing(raw):
    # History stores the display text; re-parsing it must neither change it nor find markers.
    once = parse_markers(raw)
    twice = parse_markers(once.display_text)
    assert twice.display_text == once.display_text
    assert (twice.questions, twice.actions, twice.promotes, twice.suggest_fix, twice.fix_outcome, twice.fork) == (
        (), (), (), None, None, None
    )
