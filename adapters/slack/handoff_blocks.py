"""The escalation card (senior channel / DMs) and the handoff context card (session thread)."""
from __future__ import annotations

from typing import Any

from adapters.slack.kit import Kit, Rendered
from adapters.slack.mrkdwn import clip, escape, to_mrkdwn
from core.views import EscalationView, HandoffContextView

ANALYZING = "_Analyzing…_"
SNAPSHOT_ITEM_LIMIT = 500


def _bullets(items: list[str]) -> str:
    return "\n".join(f"• {escape(clip(str(i), SNAPSHOT_ITEM_LIMIT))}" for i in items)


def _numbered(items: list[str]) -> str:
    return "\n".join(f"{n}. {escape(clip(str(i), SNAPSHOT_ITEM_LIMIT))}" for n, i in enumerate(items, 1))


def _snapshot_lines(snapshot: dict[str, Any]) -> list[str]:
    """The deterministic snapshot, whatever keys it has: lists as bullets, the rest as lines."""
    lines: list[str] = []
    for key, value in snapshot.items():
        if value in (None, "", [], {}):
            continue
        title = key.replace("_", " ").capitalize()
        if isinstance(value, list):
            lines.append(f"*{escape(title)}*\n{_bullets([str(v) for v in value])}")
        elif isinstance(value, dict):
            inner = "; ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, ""))
            lines.append(f"*{escape(title)}:* {escape(clip(inner, SNAPSHOT_ITEM_LIMIT))}")
        else:
            lines.append(f"*{escape(title)}:* {escape(clip(str(value), SNAPSHOT_ITEM_LIMIT))}")
    return lines


def _meta(view: EscalationView) -> str:
    parts = []
    if view.handed_off_by:
        parts.append(f"Handed off by *{escape(view.handed_off_by)}*")
    if view.ticket_ref:
        parts.append(escape(view.ticket_ref))
    if view.step_count:
        parts.append(f"{view.step_count} step(s) so far")
    if view.thread_link:
        parts.append(f"<{view.thread_link}|Open the thread>")
    return " · ".join(parts)


def render_escalation(view: EscalationView) -> Rendered:
    kit = Kit()
    kit.header(f"Escalation: {view.title}")
    kit.context(_meta(view))
    if view.reason:
        kit.section(f"*Reason:* {escape(view.reason)}")
    known = view.what_we_know or [str(x) for x in view.snapshot.get("what_we_know", []) or []]
    if view.state == "analyzing":
        kit.section(f"*Summary*\n{ANALYZING}")
        if known:
            kit.section(f"*What we know*\n{_bullets(known)}")
        kit.section(f"*Likely cause*\n{ANALYZING}\n*Suggested steps*\n{ANALYZING}")
    elif view.state == "failed" and not view.summary_prose:
        kit.context("_The AI summary is unavailable: showing the recorded snapshot._")
        for line in _snapshot_lines(view.snapshot) or ["_No snapshot was recorded._"]:
            kit.section(line)
    else:
        if view.summary_prose:
            confidence = f" _(confidence: {escape(view.confidence)})_" if view.confidence else ""
            kit.section(f"*Summary*{confidence}\n{to_mrkdwn(view.summary_prose)}")
        if known:
            kit.section(f"*What we know*\n{_bullets(known)}")
        if view.likely_cause:
            kit.section(f"*Likely cause*\n{to_mrkdwn(view.likely_cause)}")
        if view.suggested_steps:
            kit.section(f"*Suggested steps*\n{_numbered(view.suggested_steps)}")
    if view.claimed_by:
        when = f" at {view.claimed_at:%H:%M} UTC" if view.claimed_at else ""
        kit.section(f":white_check_mark: *Claimed by {escape(view.claimed_by)}*{when}")
    for note in (view.status_note, view.psa_note):
        if note:
            kit.context(to_mrkdwn(note))
    if view.buttons:
        kit.buttons(view.buttons)
    claimed = f" — claimed by {view.claimed_by}" if view.claimed_by else ""
    return kit.finish(escape(f"Escalation: {view.title}{claimed}"))


def render_handoff_context(view: HandoffContextView) -> Rendered:
    kit = Kit()
    senior = ""
    if view.senior is not None:
        senior = f"<@{view.senior.external_id}> " if view.senior.external_id else f"@{escape(view.senior.name)} "
    kit.section(f"{senior}*Handoff context* from {escape(view.handed_off_by or 'the engineer')}")
    if view.summary_prose:
        confidence = f" _(confidence: {escape(view.confidence)})_" if view.confidence else ""
        kit.section(f"*Summary*{confidence}\n{to_mrkdwn(view.summary_prose)}")
    if view.what_we_know:
        kit.section(f"*What we know*\n{_bullets(view.what_we_know)}")
    if view.tried:
        kit.section(f"*What's been tried*\n{_bullets(view.tried)}")
    if view.likely_cause or view.next_steps:
        body = to_mrkdwn(view.likely_cause) if view.likely_cause else ""
        if view.next_steps:
            body = (body + "\n" if body else "") + _numbered(view.next_steps)
        kit.section(f"*Likely cause & next steps*\n{body}")
    if view.buttons:
        kit.buttons(view.buttons)
    return kit.finish(f"{senior}Handoff context from {escape(view.handed_off_by or 'the engineer')}")
