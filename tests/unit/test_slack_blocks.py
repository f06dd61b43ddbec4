"""Views → Block Kit: every view type renders inside Slack's limits, long and big content is
split or compacted rather than rejected, and markdown reads right in Slack."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from adapters.slack.blocks import render
from adapters.slack.modals import INPUT_BLOCK, form_modal, input_modal
from adapters.slack.mrkdwn import to_mrkdwn
from adapters.slack.payloads import ModalContext, decode_button, encode_button
from core.views import (
    Action, Button, EscalationView, FactLine, FixView, FormField, FormView, HandoffContextView, HeaderView, InputSpec,
    LaneLine, LaneView, ListItem, ListView, Mention, PreviewView, TextView,
)

SID = str(uuid.uuid4())
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def ids(**extra: Any) -> dict[str, str]:
    return {"session_id": SID, "v": "7", **{k: str(v) for k, v in extra.items()}}


def buttons_of(blocks: list[dict]) -> list[dict]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def texts_of(blocks: list[dict]) -> str:
    out = []
    for b in blocks:
        if b["type"] in ("section", "header"):
            out.append(b["text"]["text"])
        elif b["type"] == "context":
            out += [e["text"] for e in b["elements"]]
    return "\n".join(out)


def assert_within_limits(blocks: list[dict]) -> None:
    assert 0 < len(blocks) <= 50
    action_ids = []
    for b in blocks:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
        if b["type"] == "actions":
            assert len(b["elements"]) <= 25
            for e in b["elements"]:
                assert len(e["text"]["text"]) <= 75
                assert len(e["value"]) <= 2000
                assert len(e["action_id"]) <= 255
                action_ids.append(e["action_id"])
    assert len(action_ids) == len(set(action_ids)), "action ids must be unique within a message"


def fact(n: int, editable: bool = True) -> FactLine:
    fid = uuid.uuid4()
    buttons = [Button(action=Action.DELETE_FACT, label="Delete", style="danger", value=ids(fact_id=fid))]
    if editable:
        buttons.insert(0, Button(action=Action.EDIT_FACT, label="Edit", value=ids(fact_id=fid),
                                 input=InputSpec(label="Fact", initial=f"Fact number {n}", multiline=True,
                                                 max_length=2000, title="Edit fact")))
    return FactLine(id=str(fid), text=f"Fact number {n}: the spooler service restarts every {n} minutes",
                    source_type="diagnostic_check", source_summary="Get-Service Spooler", editable=editable,
                    buttons=buttons)


def question(n: int) -> LaneLine:
    iid = uuid.uuid4()
    return LaneLine(id=str(iid), kind="question", text=f"Question {n}: does it happen for every user?",
                    context="scope", status="open", buttons=[
                        Button(action=Action.ANSWER, label="Answer", style="primary", value=ids(item_id=iid),
                               input=InputSpec(label="Does it happen for every user?", multiline=True,
                                               max_length=10000, title="Answer")),
                        Button(action=Action.SKIP, label="Skip", value=ids(item_id=iid))])


def check(n: int) -> LaneLine:
    iid = uuid.uuid4()
    return LaneLine(id=str(iid), kind="check", text=f"Check {n}: the print spooler", command="Get-Service Spooler",
                    description="Shows whether the **service** runs", status="open", buttons=[
                        Button(action=Action.PASTE_OUTPUT, label="Paste output", style="primary",
                               value=ids(item_id=iid), input=InputSpec(label="Output", multiline=True)),
                        Button(action=Action.CHECK_DONE, label="Done", value=ids(item_id=iid)),
                        Button(action=Action.CHECK_FAILED, label="Didn't work", value=ids(item_id=iid))])


def lane(facts: int, questions: int, checks: int) -> LaneView:
    return LaneView(session_id=SID, state_version=7, facts=[fact(i, editable=i % 3 != 0) for i in range(facts)],
                    questions=[question(i) for i in range(questions)], checks=[check(i) for i in range(checks)],
                    buttons=[Button(action=Action.ADD_NOTE, label="+ Add a note", value=ids(),
                                    input=InputSpec(label="Note", multiline=True, title="Add to What we know"))])


def fix_view(state: str, **kw: Any) -> FixView:
    fid = str(uuid.uuid4())
    buttons = [] if state in ("worked", "failed", "dismissed", "superseded") else [
        Button(action=Action.FIX_WORKED, label="It worked", style="primary", value=ids(fix_id=fid)),
        Button(action=Action.FIX_PARTIAL, label="Mark partial…", value=ids(fix_id=fid),
               input=InputSpec(label="What was done, and what is left?", multiline=True, title="Fix outcome"))]
    return FixView(session_id=SID, fix_id=fid, state=state, title="Restart the print spooler",
                   description="Run `Restart-Service Spooler` on **PRN-01**.", confidence=80, status="proposed",
                   collapsed=state in ("superseded", "dismissed"), buttons=buttons, **kw)


EVERY_VIEW = [
    TextView(kind="reply", text="## Next\n**Check** the [docs](https://example.com)."),
    TextView(kind="working", text="FlowPilot is thinking…"),
    TextView(kind="error", text="The AI is unavailable right now."),
    HeaderView(session_id=SID, title="Printer queue stuck", status="active", ticket_ref="CW #48291",
               client="Contoso", owner_name="Erin", buttons=[Button(action=Action.PAUSE, label="Pause", value=ids())]),
    lane(3, 2, 2),
    fix_view("proposed"), fix_view("verifying", applied_at=NOW - timedelta(minutes=5)),
    fix_view("partial", partial_notes="done on 2 of 3 PCs"), fix_view("pending", pending_reason="user is out"),
    fix_view("ai_confirming", proposal="FlowPilot thinks the fix worked — confirm?"), fix_view("nudge"),
    fix_view("worked"), fix_view("failed", failure_reason="still stuck"), fix_view("dismissed"), fix_view("superseded"),
    EscalationView(handoff_id=str(uuid.uuid4()), session_id=SID, title="Printer queue stuck", state="analyzing",
                   handed_off_by="Erin", reason="out of ideas", ticket_ref="CW #48291", step_count=4,
                   thread_link="https://example.slack.com/archives/C1/p1",
                   buttons=[Button(action=Action.CLAIM, label="Pick up", style="primary", value=ids())]),
    EscalationView(handoff_id=str(uuid.uuid4()), session_id=SID, title="T", state="ready", summary_prose="Spooler dies.",
                   what_we_know=["all users"], likely_cause="driver", suggested_steps=["update driver"],
                   confidence="medium"),
    HandoffContextView(handoff_id=str(uuid.uuid4()), session_id=SID, senior=Mention(name="Sam", external_id="U0SAM"),
                       handed_off_by="Erin", summary_prose="Spooler dies.", what_we_know=["all users"],
                       tried=["restart"], likely_cause="driver", next_steps=["update driver"]),
    PreviewView(session_id=SID, kind="resolution_note", markdown="## Resolution\n**Fixed** the driver.",
                target_ticket_ref="CW #48291", target_status="Resolved", state_version=7,
                buttons=[Button(action=Action.PREVIEW_CONFIRM, label="Confirm & post", value=ids())]),
    ListView(title="Unclaimed escalations", items=[ListItem(text="Printer", buttons=[
        Button(action=Action.CLAIM, label="Pick up", value=ids())])]),
    ListView(title="Nothing", items=[]),
    FormView(title="Connect ConnectWise", intro="Enter your keys.", action=Action.PSA_CONNECT,
             fields=[FormField(name="site", label="Site")]),
]


@pytest.mark.parametrize("view", EVERY_VIEW, ids=lambda v: f"{v.type}-{getattr(v, 'state', getattr(v, 'kind', ''))}")
def test_every_view_type_renders_within_slack_limits(view) -> None:
    rendered = render(view, now=NOW)
    assert_within_limits(rendered.blocks)
    assert rendered.text and len(rendered.text) <= 3000


def test_buttons_carry_action_and_ids_as_json_and_round_trip() -> None:
    rendered = render(lane(2, 1, 1))
    for element in buttons_of(rendered.blocks):
        data = json.loads(element["value"])
        assert set(data) <= {"a", "v", "i"} and data["v"]["session_id"] == SID
        assert element["action_id"].startswith(f"fp:{data['a']}:")
    answer = next(e for e in buttons_of(rendered.blocks) if json.loads(e["value"])["a"] == "answer")
    click = decode_button(answer["value"])
    assert click.action == "answer" and click.input is not None and click.input.multiline
    assert click.value["item_id"]


def test_a_huge_lane_stays_under_50_blocks_and_keeps_every_item_and_button() -> None:
    view = lane(20, 5, 4)
    rendered = render(view)
    assert_within_limits(rendered.blocks)
    text = texts_of(rendered.blocks)
    for f in view.facts:
        assert f.text in text
    for item in view.questions + view.checks:
        assert item.text in text
    expected = sum(len(f.buttons) for f in view.facts) + sum(len(i.buttons) for i in view.questions + view.checks) + 1
    assert len(buttons_of(rendered.blocks)) == expected
    labels = [b["text"]["text"] for b in buttons_of(rendered.blocks)]
    assert "Delete 1" in labels and "Edit 2" in labels  # numbered compact layout


def test_a_small_lane_shows_provenance_commands_and_per_item_buttons() -> None:
    view = lane(2, 1, 1)
    rendered = render(view)
    text = texts_of(rendered.blocks)
    assert "*What we know · 2*" in text
    assert "_(check: Get-Service Spooler)_" in text
    assert "```Get-Service Spooler```" in text
    labels = [b["text"]["text"] for b in buttons_of(rendered.blocks)]
    assert labels.count("Delete") == 2 and "Answer" in labels and "Paste output" in labels and "+ Add a note" in labels


def test_a_20000_character_reply_is_split_across_sections_without_losing_text() -> None:
    paragraph = "The spooler keeps crashing because of the driver. " * 20
    reply = "\n\n".join(f"{n}. {paragraph}" for n in range(20))
    assert len(reply) >= 20_000
    rendered = render(TextView(kind="reply", text=reply))
    sections = [b for b in rendered.blocks if b["type"] == "section"]
    assert len(sections) >= 7
    assert_within_limits(rendered.blocks)
    joined = "".join(s["text"]["text"] for s in sections)
    assert joined.replace("\n", "").replace(" ", "") == to_mrkdwn(reply).replace("\n", "").replace(" ", "")


def test_markdown_becomes_slack_mrkdwn() -> None:
    converted = to_mrkdwn("## Next steps\n**Restart** the [spooler docs](https://example.com/a?b=1)\n"
                          "- run `Get-Service <name>`\n<placeholder> & more")
    assert converted.splitlines()[0] == "*Next steps*"
    assert "*Restart*" in converted and "**" not in converted
    assert "<https://example.com/a?b=1|spooler docs>" in converted
    assert "• run `Get-Service &lt;name&gt;`" in converted
    assert "&lt;placeholder&gt; &amp; more" in converted


def test_text_mentions_people_and_the_channel() -> None:
    view = TextView(text="Escalation waiting", mention_channel=True,
                    mentions=[Mention(name="Sam", external_id="U0SAM"), Mention(name="Teams Tom")])
    rendered = render(view)
    assert rendered.blocks[0]["text"]["text"].startswith("<!here> <@U0SAM> @Teams Tom Escalation waiting")
    assert "<@U0SAM>" in rendered.text and "<!here>" in rendered.text


def test_header_shows_ticket_chip_status_and_buttons() -> None:
    rendered = render(EVERY_VIEW[3])
    assert rendered.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Printer queue stuck"}}
    assert "*CW #48291*" in texts_of(rendered.blocks) and "Active" in texts_of(rendered.blocks)
    assert [b["text"]["text"] for b in buttons_of(rendered.blocks)] == ["Pause"]


def test_fix_card_states_read_right() -> None:
    verifying = render(fix_view("verifying", applied_at=NOW - timedelta(minutes=5)), now=NOW)
    assert "Applied 5m ago" in texts_of(verifying.blocks)
    assert "80% confidence" in texts_of(verifying.blocks)
    for state in ("superseded", "dismissed"):
        collapsed = render(fix_view(state))
        assert len(collapsed.blocks) == 1 and collapsed.blocks[0]["type"] == "context"
        assert "~Suggested fix: Restart the print spooler~" in texts_of(collapsed.blocks)
    assert "done on 2 of 3 PCs" in texts_of(render(fix_view("partial", partial_notes="done on 2 of 3 PCs")).blocks)
    assert "still stuck" in texts_of(render(fix_view("failed", failure_reason="still stuck")).blocks)


def test_escalation_card_placeholders_snapshot_fallback_and_claim() -> None:
    analyzing = texts_of(render(EVERY_VIEW[15]).blocks)
    assert analyzing.count("_Analyzing…_") >= 3
    failed = render(EscalationView(handoff_id="h", session_id=SID, title="T", state="failed",
                                   snapshot={"what_we_know": ["all users"], "tried": ["restart"]}))
    assert "snapshot" in texts_of(failed.blocks) and "• all users" in texts_of(failed.blocks)
    claimed = render(EscalationView(handoff_id="h", session_id=SID, title="T", state="claimed", claimed_by="Sam",
                                    summary_prose="x"))
    assert "Claimed by Sam" in texts_of(claimed.blocks) and not buttons_of(claimed.blocks)


def test_handoff_context_pings_the_senior_and_has_the_four_sections() -> None:
    text = texts_of(render(EVERY_VIEW[17]).blocks)
    assert text.startswith("<@U0SAM>")
    for title in ("*Summary*", "*What we know*", "*What's been tried*", "*Likely cause & next steps*"):
        assert title in text


def test_an_over_long_prefill_is_dropped_from_the_button_value_not_cut() -> None:
    button = Button(action=Action.EDIT_FACT, label="Edit", value=ids(fact_id=uuid.uuid4()),
                    input=InputSpec(label="Fact", initial="x" * 1990, max_length=2000))
    encoded = encode_button(button)
    assert len(encoded) <= 2000
    assert decode_button(encoded).input.initial is None
    short = Button(action=Action.EDIT_FACT, label="Edit", value=ids(), input=InputSpec(label="Fact", initial="ok"))
    assert decode_button(encode_button(short)).input.initial == "ok"


def test_input_modal_and_form_modal() -> None:
    context = ModalContext(action="fix_partial", value=ids(fix_id="f"), team_id="T1", channel_id="C1",
                           thread_ts="1.2", user_id="U1", input_name="text")
    modal = input_modal(InputSpec(label="What was done, and what is left?", multiline=True, max_length=10000,
                                  title="A title that is far too long for Slack"), context, "Mark partial…")
    assert len(modal["title"]["text"]) <= 24 and modal["callback_id"] == "fp:input"
    block = modal["blocks"][0]
    assert block["block_id"] == INPUT_BLOCK and block["optional"] is False
    assert block["element"]["max_length"] == 3000 and block["element"]["multiline"] is True
    assert ModalContext.decode(modal["private_metadata"]) == context

    form = FormView(title="Escalation", action=Action.INTERCEPT, value=ids(), fields=[
        FormField(name="outcome", label="What happened with the fix?", kind="choice",
                  options=[("worked", "It worked"), ("failed", "It didn't")], initial="failed"),
        FormField(name="key", label="Private key", kind="secret"),
        FormField(name="notes", label="Notes", kind="multiline", required=False)])
    built = form_modal(form, context)
    kinds = [b["element"]["type"] for b in built["blocks"]]
    assert kinds == ["radio_buttons", "plain_text_input", "plain_text_input"]
    assert built["blocks"][0]["element"]["initial_option"]["value"] == "failed"
    assert built["blocks"][2]["optional"] is True and built["callback_id"] == "fp:form"


def test_an_extreme_lane_compacts_questions_and_checks_too() -> None:
    view = lane(30, 20, 20)
    rendered = render(view)
    assert_within_limits(rendered.blocks)
    labels = [b["text"]["text"] for b in buttons_of(rendered.blocks)]
    assert "Answer Q20" in labels and "Didn't work C20" in labels
    expected = sum(len(f.buttons) for f in view.facts) + sum(len(i.buttons) for i in view.questions + view.checks) + 1
    assert len(labels) == expected
