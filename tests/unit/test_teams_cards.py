"""Views → Adaptive Cards for Teams: every view renders, clicks carry their ids, cards stay small."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest

from adapters.teams.cardkit import MAX_CARD_BYTES, card_size
from adapters.teams.cards import ChannelMention, message_activity, render_card
from adapters.teams.markdown import to_elements
from adapters.teams.payloads import read_action
from core.views import (
    Action, Button, EscalationView, FactLine, FixView, FormField, FormView, HandoffContextView, HeaderView,
    InputSpec, LaneLine, LaneView, ListItem, ListView, Mention, PreviewView, TextView,
)

SESSION = str(uuid.uuid4())
VERSION = "17"


def ids(**more: Any) -> dict[str, str]:
    return {"session_id": SESSION, "v": VERSION, **{k: str(v) for k, v in more.items()}}


# --------------------------------------------------------------------------- walking a card
def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def executes(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in walk(card) if n.get("type") == "Action.Execute"]


def execute_for(card: dict[str, Any], verb: str) -> dict[str, Any]:
    found = [a for a in executes(card) if a["verb"] == verb]
    assert found, f"no Action.Execute with verb {verb!r}"
    return found[0]


def texts(card: dict[str, Any]) -> str:
    parts = [n.get("text", "") for n in walk(card) if n.get("type") in ("TextBlock", "TextRun")]
    parts += [f"{f['title']}: {f['value']}" for n in walk(card) if n.get("type") == "FactSet" for f in n["facts"]]
    return "\n".join(parts)


def click(action: dict[str, Any], **inputs: str) -> dict[str, Any]:
    """What Teams sends back for a click: the action's data with the card's input values merged in."""
    return {**action["data"], **inputs}


# --------------------------------------------------------------------------- realistic views
def big_lane() -> LaneView:
    facts = []
    for n in range(20):
        editable = n % 3 == 0
        fact_ids = ids(fact_id=uuid.uuid4())
        buttons = [Button(action=Action.DELETE_FACT, label="Delete", style="danger", value=fact_ids)]
        if editable:
            buttons.insert(0, Button(action=Action.EDIT_FACT, label="Edit", value=fact_ids, input=InputSpec(
                label="Fact", multiline=True, max_length=2000, title="Edit fact",
                initial=f"User {n} reports the VPN drops every 20-30 minutes on the Wi-Fi in building {n}.")))
        facts.append(FactLine(
            id=fact_ids["fact_id"], editable=editable, buttons=buttons,
            text=f"Fact {n}: the GlobalProtect client on LT-{1000 + n} logs 'tunnel keepalive timeout' right "
                 f"before each drop, and the gateway shows the session idle-reaped after 1800 seconds.",
            source_type="question" if n % 2 else "user_note",
            source_summary="Does it happen on wired connections too?" if n % 2 else None))
    questions = []
    for n in range(5):
        item = ids(item_id=uuid.uuid4())
        questions.append(LaneLine(
            id=item["item_id"], kind="question", status="open",
            text=f"Question {n}: does the drop happen for every user in the office, or only for laptops that "
                 f"roam between the 2.4 GHz and 5 GHz access points on floor {n}?",
            context="Separates a gateway-side timeout from a client roaming problem.",
            buttons=[Button(action=Action.ANSWER, label="Answer", style="primary", value=item, input=InputSpec(
                         label="Does the drop happen for every user in the office?", multiline=True,
                         max_length=10000, title="Answer")),
                     Button(action=Action.SKIP, label="Skip", value=item)]))
    checks = []
    for n in range(4):
        item = ids(item_id=uuid.uuid4())
        checks.append(LaneLine(
            id=item["item_id"], kind="check", status="answered" if n == 0 else "open",
            text=f"Check {n}: keepalive settings on the portal",
            command="Get-NetAdapterAdvancedProperty -Name 'Wi-Fi' | Where-Object DisplayName -like '*Roam*'",
            description="Shows the roaming aggressiveness; high values cause drops on busy floors.",
            response=("DisplayName: Roaming Aggressiveness  DisplayValue: 5. Highest\n" * 6) if n == 0 else None,
            buttons=[Button(action=Action.PASTE_OUTPUT, label="Paste output", style="primary", value=item,
                            input=InputSpec(label=f"Output of: Check {n}", multiline=True, max_length=10000,
                                            title="Paste output")),
                     Button(action=Action.CHECK_DONE, label="Done", value=item),
                     Button(action=Action.CHECK_FAILED, label="Didn't work", value=item)]
            + ([Button(action=Action.PROMOTE, label="Add to What we know", value=item, input=InputSpec(
                label="Fact (one confirmed sentence)", multiline=True, max_length=2000,
                initial="Roaming aggressiveness is set to the highest value."))] if n == 0 else [])))
    return LaneView(session_id=SESSION, state_version=int(VERSION), facts=facts, questions=questions,
                    checks=checks, buttons=[Button(action=Action.ADD_NOTE, label="+ Add a note", value=ids(),
                                                   input=InputSpec(label="Note", multiline=True, max_length=2000,
                                                                   title="Add to What we know"))])


def fix_view(state: str, **extra: Any) -> FixView:
    fix_id = str(uuid.uuid4())
    buttons = {
        "proposed": [Button(action=Action.FIX_APPLIED, label="I applied it", style="primary", value=ids(fix_id=fix_id)),
                     Button(action=Action.FIX_DISMISS, label="Dismiss", value=ids(fix_id=fix_id))],
        "verifying": [Button(action=Action.FIX_WORKED, label="It worked", style="primary", value=ids(fix_id=fix_id)),
                      Button(action=Action.FIX_PARTIAL, label="Mark partial…", value=ids(fix_id=fix_id),
                             input=InputSpec(label="What was done, and what is left?", multiline=True,
                                             title="Fix outcome"))],
    }.get(state, [])
    return FixView(session_id=SESSION, fix_id=fix_id, state=state, title="Lower Wi-Fi roaming aggressiveness",
                   description="Set **Roaming Aggressiveness** to *Medium* on the Intel AX201:\n\n"
                               "```\nSet-NetAdapterAdvancedProperty -Name 'Wi-Fi' -DisplayName 'Roaming*' "
                               "-DisplayValue '3. Medium'\n```",
                   confidence=72, status="proposed", collapsed=state in ("superseded", "dismissed"),
                   buttons=buttons, **extra)


def every_view() -> list[Any]:
    claimed_at = datetime(2026, 3, 2, 14, 5, tzinfo=timezone.utc)
    handoff = str(uuid.uuid4())
    claim = Button(action=Action.CLAIM, label="Pick up", style="primary",
                   value={"handoff_id": handoff, "session_id": SESSION})
    escalation = dict(handoff_id=handoff, session_id=SESSION, title="VPN drops every 20 minutes",
                      handed_off_by="Ada Engineer", reason="Beyond my access", ticket_ref="CW #48291", step_count=9)
    return [
        TextView(kind="reply", text="## Findings\nThe keepalive is **too short**.\n\n* check A\n* check B"),
        TextView(kind="error", text="Only the session's engineer can do that."),
        HeaderView(session_id=SESSION, title="VPN drops every 20 minutes", status="active", ticket_ref="CW #48291",
                   client="Contoso", priority="P2", owner_name="Ada Engineer",
                   buttons=[Button(action=Action.PAUSE, label="Pause", value=ids()),
                            Button(action=Action.ESCALATE, label="Escalate", value=ids(), input=InputSpec(
                                label="Why are you escalating?", required=False, title="Escalate to a senior")),
                            Button(action=Action.RESOLVE, label="Resolve", style="primary", value=ids())]),
        big_lane(),
        LaneView(session_id=SESSION, state_version=1),
        *(fix_view(state) for state in ("proposed", "verifying", "partial", "pending", "ai_confirming", "nudge",
                                        "worked", "failed", "dismissed", "superseded")),
        EscalationView(**escalation, state="analyzing", buttons=[claim],
                       snapshot={"what_we_know": ["Drops every 20 minutes"], "whats_been_tried": ["Rebooted"]}),
        EscalationView(**escalation, state="ready", summary_prose="Gateway idle timeout.", what_we_know=["A", "B"],
                       likely_cause="Idle reaping", suggested_steps=["Raise the timeout"], confidence="medium",
                       buttons=[claim], thread_link="https://teams.microsoft.com/l/message/x"),
        EscalationView(**escalation, state="failed", buttons=[claim], snapshot={
            "what_we_know": ["Drops every 20 minutes"], "whats_been_tried": ["Rebooted the gateway"],
            "fix": {"title": "Raise the timeout", "status": "applied_failed"}}),
        EscalationView(**escalation, state="claimed", claimed_by="Sam Senior", claimed_at=claimed_at,
                       summary_prose="Gateway idle timeout."),
        EscalationView(**escalation, state="closed", status_note="Session is resolved; no pick-up needed."),
        HandoffContextView(handoff_id=handoff, session_id=SESSION, senior=Mention(name="Sam Senior", external_id="aad-sam"),
                           handed_off_by="Ada Engineer", summary_prose="Gateway idle timeout.", confidence="medium",
                           what_we_know=["Drops every 20 minutes"], tried=["Rebooted"], likely_cause="Idle reaping",
                           next_steps=["Raise the timeout", "Check the portal config"],
                           buttons=[Button(action=Action.SUGGESTED_STEP, label="Raise the timeout",
                                           value={"handoff_id": handoff, "session_id": SESSION, "i": "0"}),
                                    Button(action=Action.HIDE_STEPS, label="Hide",
                                           value={"handoff_id": handoff, "session_id": SESSION})]),
        preview("## Problem\nVPN drops.\n\n## Resolution\nRaised the idle timeout."),
        ListView(title="Unclaimed escalations (oldest first)", items=[
            ListItem(text="VPN drops — from Ada, 5m ago", buttons=[claim]),
            ListItem(text="Printer offline — from Bo, 9m ago", buttons=[])]),
        ListView(title="Unclaimed escalations (oldest first)", empty_text="No unclaimed escalations."),
        intercept_form(),
    ]


def preview(markdown: str) -> PreviewView:
    value = {"session_id": SESSION, "kind": "resolution_note", "v": VERSION}
    return PreviewView(session_id=SESSION, kind="resolution_note", markdown=markdown, target_ticket_ref="CW #48291",
                       target_status="status #5", state_version=int(VERSION),
                       buttons=[Button(action=Action.PREVIEW_EDIT, label="Edit", value=value, input=InputSpec(
                                    label="Resolution note", multiline=True, max_length=20000, initial=markdown,
                                    title="Edit note")),
                                Button(action=Action.PREVIEW_CONFIRM, label="Confirm & post", style="primary",
                                       value=value)])


def intercept_form() -> FormView:
    return FormView(title="Before escalating", intro="What happened with the fix?", action=Action.INTERCEPT,
                    submit_label="Continue to escalate",
                    value={"session_id": SESSION, "fix_id": str(uuid.uuid4()), "v": VERSION, "reason": "stuck"},
                    fields=[FormField(name="outcome", label="What happened with the fix?", kind="choice",
                                      options=[("failed", "It didn't work"), ("partial", "Partly")], initial="failed"),
                            FormField(name="notes", label="Notes", kind="multiline", required=False)])


# --------------------------------------------------------------------------- tests
@pytest.mark.parametrize("view", every_view(), ids=lambda v: f"{v.type}-{getattr(v, 'state', getattr(v, 'kind', ''))}")
def test_every_view_renders_as_a_small_adaptive_card_1_5(view):
    card = render_card(view)

    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert card_size(card) <= MAX_CARD_BYTES
    assert texts(card).strip()
    for action in executes(card):  # every click says what it does, to what, at which version
        assert action["verb"] == action["data"]["a"] and action["data"]["k"] == view.type
        assert action["fallback"]["type"] == "Action.Submit" and action["fallback"]["data"] == action["data"]


def test_the_largest_realistic_lane_fits_28_kb_and_keeps_every_item():
    lane = big_lane()
    card = render_card(lane)

    assert card["version"] == "1.5"
    assert card_size(card) <= 28 * 1024
    shown = texts(card)
    assert "What we know · 20" in shown
    assert all(f"Question {n}:" in shown for n in range(5))
    assert all(f"Check {n}:" in shown for n in range(4))
    assert "Get-NetAdapterAdvancedProperty" in shown  # the command, verbatim in monospace
    for question in lane.questions:  # each open question keeps its own Answer and Skip
        answer = [a for a in executes(card) if a["verb"] == "answer" and a["data"]["v"]["item_id"] == question.id]
        skip = [a for a in executes(card) if a["verb"] == "skip" and a["data"]["v"]["item_id"] == question.id]
        assert len(answer) == 1 and len(skip) == 1
        assert answer[0]["data"]["v"]["v"] == VERSION and answer[0]["data"]["v"]["session_id"] == SESSION


def test_a_large_lane_with_a_fix_card_each_fit_and_together_fit_one_message():
    lane_card = render_card(big_lane())
    fix_card = render_card(fix_view("verifying", applied_at=datetime.now(timezone.utc)))
    assert card_size(lane_card) <= MAX_CARD_BYTES and card_size(fix_card) <= MAX_CARD_BYTES
    assert card_size(lane_card) + card_size(fix_card) < 40 * 1024


def test_many_facts_are_edited_through_a_picker_that_sends_the_chosen_fact_id():
    lane = big_lane()
    card = render_card(lane)
    edit = execute_for(card, "edit_fact")
    picker = next(n for n in walk(card) if n.get("type") == "Input.ChoiceSet")
    editable = [f for f in lane.facts if f.editable]
    assert [c["value"] for c in picker["choices"]] == [f.id for f in editable]

    clicked = read_action(click(edit, **{picker["id"]: editable[2].id, edit["data"]["i"]: "New wording"}),
                          edit["verb"])

    assert clicked.action == "edit_fact"
    assert clicked.value == {"session_id": SESSION, "v": VERSION, "fact_id": editable[2].id}
    assert clicked.text == "New wording"


def test_a_few_facts_get_their_own_edit_and_delete_buttons():
    lane = big_lane().model_copy(update={"facts": big_lane().facts[:3]})
    card = render_card(lane)
    deletes = [a["data"]["v"]["fact_id"] for a in executes(card) if a["verb"] == "delete_fact"]
    assert deletes == [f.id for f in lane.facts]
    assert not [n for n in walk(card) if n.get("type") == "Input.ChoiceSet"]


def test_a_button_that_needs_text_shows_an_inline_input_and_sends_it():
    view = fix_view("verifying")
    card = render_card(view)
    show = next(a for a in card["actions"] if a["type"] == "Action.ShowCard")
    field = show["card"]["body"][0]
    submit = show["card"]["actions"][0]

    assert show["title"] == "Mark partial…"
    assert (field["type"], field["isMultiline"], field["isRequired"]) == ("Input.Text", True, True)
    assert submit["verb"] == "fix_partial" and submit["data"]["i"] == field["id"]
    clicked = read_action(click(submit, **{field["id"]: "Reset done on 3 of 5 laptops"}))
    assert clicked.text == "Reset done on 3 of 5 laptops"
    assert clicked.value == {"session_id": SESSION, "v": VERSION, "fix_id": view.fix_id}
    assert clicked.kind == "fix"


def test_preview_edit_is_a_multiline_input_prefilled_with_the_draft():
    markdown = "## Problem\nVPN drops.\n\n## Resolution\n- Raised the idle timeout to 8h"
    card = render_card(preview(markdown))
    field = next(n for n in walk(card) if n.get("type") == "Input.Text")
    assert field["isMultiline"] and field["value"] == markdown
    assert "**Problem**" in texts(card) and "## Problem" not in texts(card)
    confirm = execute_for(card, "preview_confirm")
    assert confirm["data"]["v"] == {"session_id": SESSION, "kind": "resolution_note", "v": VERSION}


def test_a_long_preview_stays_fully_editable_within_the_size_limit():
    markdown = "## Resolution\n" + "\n".join(f"- step {n}: " + "restarted the spooler and cleared the queue " * 3
                                             for n in range(120))
    assert 15000 < len(markdown) < 20000  # near the core's MARKDOWN_MAX
    card = render_card(preview(markdown))
    field = next(n for n in walk(card) if n.get("type") == "Input.Text")
    assert card_size(card) <= MAX_CARD_BYTES
    assert field["value"] == markdown  # editing never starts from a cut text
    assert "shortened" in texts(card)


def test_form_fields_render_as_inputs_and_come_back_by_name():
    form = intercept_form()
    card = render_card(form)
    choice = next(n for n in walk(card) if n.get("type") == "Input.ChoiceSet")
    notes = next(n for n in walk(card) if n.get("type") == "Input.Text")
    submit = execute_for(card, "intercept")

    assert [c["value"] for c in choice["choices"]] == ["failed", "partial"] and choice["value"] == "failed"
    assert notes["isMultiline"] and not notes["isRequired"]
    clicked = read_action(click(submit, **{choice["id"]: "partial", notes["id"]: "2 of 3 done"}))
    assert clicked.fields == {"outcome": "partial", "notes": "2 of 3 done"}
    assert clicked.value == form.value


def test_a_secret_form_field_is_a_password_input_never_prefilled():
    form = FormView(title="Connect ConnectWise", action=Action.PSA_CONNECT, fields=[
        FormField(name="private_key", label="Private key", kind="secret", initial="should-not-show")])
    field = next(n for n in walk(render_card(form)) if n.get("type") == "Input.Text")
    assert field["style"] == "Password" and "value" not in field


def test_mentions_are_at_tags_with_entities():
    view = TextView(kind="notice", text="Sam picked this up.", mentions=[Mention(name="Sam Senior", external_id="aad-1")])
    card = render_card(view)
    assert "<at>Sam Senior</at>" in texts(card)
    assert card["msteams"]["entities"] == [{"type": "mention", "text": "<at>Sam Senior</at>",
                                            "mentioned": {"id": "aad-1", "name": "Sam Senior"}}]


def test_a_reping_mentions_the_channel():
    view = TextView(kind="notice", text="Still unclaimed after 10m.", mention_channel=True,
                    buttons=[Button(action=Action.CLAIM, label="Pick up", value={"handoff_id": "h", "session_id": "s"})])
    card = render_card(view, channel=ChannelMention(id="19:esc@thread.tacv2", name="Escalations"))
    [entity] = card["msteams"]["entities"]
    assert entity["mentioned"] == {"id": "19:esc@thread.tacv2", "name": "Escalations", "type": "channel"}
    assert entity["text"] in texts(card)
    assert execute_for(card, "claim")["data"]["v"] == {"handoff_id": "h", "session_id": "s"}


def test_a_mention_without_a_platform_id_is_plain_text():
    card = render_card(TextView(text="done", mentions=[Mention(name="Ada")]))
    assert "@Ada" in texts(card) and "entities" not in card["msteams"]


def test_escalation_card_states():
    analyzing, ready, failed, claimed = (v for v in every_view() if v.type == "escalation" and v.state != "closed")
    assert "Analyzing…" in texts(render_card(analyzing))
    assert "Pick up" in [a["title"] for a in render_card(analyzing)["actions"]]
    assert "Raise the timeout" in texts(render_card(ready))
    assert {"type": "Action.OpenUrl", "title": "Open thread", "url": ready.thread_link} in render_card(ready)["actions"]
    assert "Rebooted the gateway" in texts(render_card(failed)) and "unavailable" in texts(render_card(failed))
    claimed_card = render_card(claimed)
    assert "Claimed by Sam Senior" in texts(claimed_card) and not executes(claimed_card)


def test_handoff_context_offers_suggested_steps_and_mentions_the_senior():
    view = next(v for v in every_view() if v.type == "handoff_context")
    card = render_card(view)
    step = execute_for(card, "suggested_step")
    assert step["title"] == "Raise the timeout" and step["data"]["v"]["i"] == "0"
    assert card["msteams"]["entities"][0]["mentioned"]["id"] == "aad-sam"


def test_every_fix_state_says_where_it_stands():
    for state in ("proposed", "verifying", "worked", "failed", "superseded"):
        shown = texts(render_card(fix_view(state)))
        assert "Lower Wi-Fi roaming aggressiveness" in shown
    proposed = render_card(fix_view("proposed"))
    assert [a["title"] for a in proposed["actions"]] == ["I applied it", "Dismiss"]
    assert "Set-NetAdapterAdvancedProperty" in texts(proposed)
    assert not executes(render_card(fix_view("superseded")))


def test_list_items_have_their_own_buttons():
    view = next(v for v in every_view() if v.type == "list" and v.items)
    card = render_card(view)
    assert [a["data"]["v"]["handoff_id"] for a in executes(card)] == [view.items[0].buttons[0].value["handoff_id"]]
    empty = next(v for v in every_view() if v.type == "list" and not v.items)
    assert "No unclaimed escalations." in texts(render_card(empty))


def test_a_huge_list_is_cut_with_a_note_instead_of_failing():
    items = [ListItem(text=f"Escalation {n}: " + "x" * 300, buttons=[Button(
        action=Action.CLAIM, label="Pick up", value={"handoff_id": str(uuid.uuid4()), "session_id": SESSION})])
        for n in range(200)]
    card = render_card(ListView(title="Queue", items=items))
    assert card_size(card) <= MAX_CARD_BYTES
    assert "not shown here" in texts(card)


def test_markdown_headings_become_bold_and_code_stays_literal():
    elements = to_elements("# Title\nSome *text*\n\n```\nGet-Service *spool*\n```\n* one\n* two")
    assert elements[0]["text"] == "**Title**"
    assert elements[1]["text"] == "Some *text*"
    assert elements[2] == {"type": "RichTextBlock", "inlines": [
        {"type": "TextRun", "text": "Get-Service *spool*", "fontType": "Monospace"}]}
    assert elements[3]["text"] == "- one\n- two"


def test_message_activity_carries_the_card_and_a_summary():
    view = HeaderView(session_id=SESSION, title="VPN drops", status="paused")
    activity = message_activity(view)
    assert activity["type"] == "message" and activity["summary"] == "VPN drops · paused"
    [attachment] = activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["version"] == "1.5"
    json.dumps(activity)  # plain JSON, ready for the Bot Connector


def test_a_notice_is_added_for_the_clicker():
    card = render_card(fix_view("verifying"), notice="Marked as applied — tell FlowPilot how it goes.")
    assert "Marked as applied" in texts(card)


def test_data_from_another_app_is_not_an_action():
    assert read_action({"msteams": {"type": "messageBack"}}) is None
    assert read_action("not a dict") is None
