"""The task-lane card: What we know (with provenance), questions and diagnostic checks.

Each item normally gets its own section and buttons. A big lane would pass Slack's 50 blocks, so
the card falls back, part by part, to a compact layout: numbered lines and numbered buttons
("Edit 3", "Answer Q2") in shared actions blocks."""
from __future__ import annotations

from adapters.slack.kit import MAX_BLOCKS, Kit, Rendered
from adapters.slack.mrkdwn import escape, to_mrkdwn
from core.views import Button, FactLine, LaneLine, LaneView

SOURCE_LABELS = {"user_note": "note", "question": "answer", "diagnostic_check": "check",
                 "ai_synthesis": "AI summary"}
STATUS_LABELS = {"answered": "answered", "skipped": "skipped", "done": "done", "failed": "didn't work"}
LIST_CHUNK = 2800


def provenance(fact: FactLine) -> str:
    label = SOURCE_LABELS.get(fact.source_type, fact.source_type.replace("_", " "))
    if fact.source_summary:
        label += f": {fact.source_summary}"
    return f"_({escape(label)})_"


def _fact_text(fact: FactLine) -> str:
    return f"{escape(fact.text)} {provenance(fact)}"


def _item_text(line: LaneLine, tag: str) -> str:
    parts = [f"*{tag}.* {escape(line.text)}"]
    if line.status in STATUS_LABELS:
        parts[0] += f"  _({STATUS_LABELS[line.status]})_"
    if line.context:
        parts.append(f"_{escape(line.context)}_")
    if line.command:
        parts.append(f"```{escape(line.command)}```")
    if line.description:
        parts.append(to_mrkdwn(line.description))
    if line.response:
        parts.append("> " + escape(line.response).replace("\n", "\n> "))
    return "\n".join(parts)


def _numbered(buttons_by_item: list[list[Button]], tags: list[str]) -> tuple[list[Button], list[str]]:
    flat: list[Button] = []
    labels: list[str] = []
    for tag, buttons in zip(tags, buttons_by_item):
        for b in buttons:
            flat.append(b)
            labels.append(f"{b.label} {tag}")
    return flat, labels


def _lines_in_sections(kit: Kit, lines: list[str]) -> None:
    chunk: list[str] = []
    for line in lines:
        if chunk and sum(len(c) + 1 for c in chunk) + len(line) > LIST_CHUNK:
            kit.section("\n".join(chunk))
            chunk = []
        chunk.append(line)
    if chunk:
        kit.section("\n".join(chunk))


def _facts(kit: Kit, view: LaneView, compact: bool) -> None:
    kit.section(f"*What we know · {len(view.facts)}*")
    if not view.facts:
        kit.context("_Nothing confirmed yet. Answers, check results and notes you add show up here._")
    elif not compact:
        for fact in view.facts:
            kit.section(f"• {_fact_text(fact)}")
            if fact.buttons:
                kit.buttons(fact.buttons)
    else:
        tags = [str(n) for n in range(1, len(view.facts) + 1)]
        _lines_in_sections(kit, [f"{tag}. {_fact_text(f)}" for tag, f in zip(tags, view.facts)])
        flat, labels = _numbered([f.buttons for f in view.facts], tags)
        if flat:
            kit.buttons(flat, labels)
    if view.buttons:
        kit.buttons(view.buttons)


def _items(kit: Kit, title: str, lines: list[LaneLine], prefix: str, compact: bool) -> None:
    if not lines:
        return
    kit.divider()
    kit.section(f"*{title}*")
    tags = [f"{prefix}{n}" for n in range(1, len(lines) + 1)]
    if not compact:
        for tag, line in zip(tags, lines):
            kit.section(_item_text(line, tag))
            if line.buttons:
                kit.buttons(line.buttons)
        return
    _lines_in_sections(kit, [_item_text(line, tag) for tag, line in zip(tags, lines)])
    flat, labels = _numbered([line.buttons for line in lines], tags)
    if flat:
        kit.buttons(flat, labels)


def _build(view: LaneView, compact_facts: bool, compact_items: bool) -> Kit:
    kit = Kit()
    _facts(kit, view, compact_facts)
    _items(kit, "Questions", view.questions, "Q", compact_items)
    _items(kit, "Diagnostic checks", view.checks, "C", compact_items)
    return kit


def render_lane(view: LaneView) -> Rendered:
    kit = Kit()
    for compact_facts, compact_items in ((False, False), (True, False), (True, True)):
        kit = _build(view, compact_facts, compact_items)
        if len(kit) <= MAX_BLOCKS:
            break
    open_items = sum(1 for i in view.questions + view.checks if i.status == "open")
    text = f"What we know · {len(view.facts)} — {open_items} open question(s) and check(s)"
    return kit.finish(text)
