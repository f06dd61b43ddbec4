"""Views (core/views.py) → Slack messages (Block Kit + notification text). Pure functions.

`render(view)` handles every view type; the lane, escalation and handoff cards live in their own
modules. Modals are in modals.py. Buttons carry JSON values (payloads.py) and unique action ids."""
from __future__ import annotations

from datetime import datetime, timezone

from adapters.slack.handoff_blocks import render_escalation, render_handoff_context
from adapters.slack.kit import MAX_BLOCKS, Kit, Rendered
from adapters.slack.lane_blocks import render_lane
from adapters.slack.mrkdwn import clip, escape, to_mrkdwn
from core.views import (
    EscalationView, FixView, FormView, HandoffContextView, HeaderView, LaneView, ListView, PreviewView, TextView,
)

STATUS_LABELS = {"active": ":large_green_circle: Active", "paused": ":double_vertical_bar: Paused",
                 "escalated": ":sos: Escalated", "requesting_escalation": ":sos: Escalating",
                 "resolved": ":white_check_mark: Resolved", "abandoned": ":black_circle: Closed"}
TEXT_PREFIX = {"error": ":warning: ", "working": ":hourglass_flowing_sand: "}
PREVIEW_TITLES = {"resolution_note": "Resolution note", "escalation_package": "Escalation package",
                  "status_update": "Status update"}
FIX_COLLAPSED = {"superseded": "superseded by a newer suggestion", "dismissed": "dismissed"}


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "just now"
    now = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    minutes = int((now - moment).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes}m ago"
    if minutes < 48 * 60:
        return f"{minutes // 60}h ago"
    return f"{minutes // (24 * 60)}d ago"


def render(view: object, now: datetime | None = None) -> Rendered:
    if isinstance(view, TextView):
        return render_text(view)
    if isinstance(view, HeaderView):
        return render_header(view)
    if isinstance(view, LaneView):
        return render_lane(view)
    if isinstance(view, FixView):
        return render_fix(view, now)
    if isinstance(view, EscalationView):
        return render_escalation(view)
    if isinstance(view, HandoffContextView):
        return render_handoff_context(view)
    if isinstance(view, PreviewView):
        return render_preview(view)
    if isinstance(view, ListView):
        return render_list(view)
    if isinstance(view, FormView):
        return render_form_notice(view)
    raise TypeError(f"no Slack rendering for {type(view).__name__}")


# ----------------------------------------------------------------------------- text
def mention_prefix(view: TextView) -> str:
    """`<!here>` and `<@U…>` ping people; a mention without a Slack id is shown as plain text."""
    parts = ["<!here>"] if view.mention_channel else []
    parts += [f"<@{m.external_id}>" if m.external_id else f"@{escape(m.name)}" for m in view.mentions]
    return " ".join(parts)


def render_text(view: TextView) -> Rendered:
    body = to_mrkdwn(view.text) if view.markdown else escape(view.text)
    full = " ".join(p for p in (mention_prefix(view), TEXT_PREFIX.get(view.kind, "") + body) if p).strip()
    kit = Kit()
    kit.section(full or " ")
    if len(kit) > MAX_BLOCKS - 1:  # ~145,000 characters: keep the start, say it was cut
        kit.blocks = kit.blocks[: MAX_BLOCKS - 2]
        kit.context("_The rest of this message was too long for Slack and was cut._")
    if view.buttons:
        kit.buttons(view.buttons)
    return kit.finish(full)


# ----------------------------------------------------------------------------- header
def render_header(view: HeaderView) -> Rendered:
    kit = Kit()
    kit.header(view.title)
    facts = [f"*{escape(view.ticket_ref)}*"] if view.ticket_ref else []
    facts.append(STATUS_LABELS.get(view.status, escape(view.status)))
    for label, value in (("Client", view.client), ("Priority", view.priority), ("Owner", view.owner_name),
                         ("With", view.claimer_name)):
        if value:
            facts.append(f"{label}: {escape(value)}")
    kit.context(" · ".join(facts))
    if view.buttons:
        kit.buttons(view.buttons)
    chip = f" · {view.ticket_ref}" if view.ticket_ref else ""
    return kit.finish(escape(f"{view.title}{chip} · {view.status}"))


# ----------------------------------------------------------------------------- fix
def _fix_status_line(view: FixView, now: datetime | None) -> str:
    if view.state == "proposed":
        return "Not applied yet."
    if view.state == "verifying":
        return f"Applied {ago(view.applied_at, now)} — tell FlowPilot whether it worked."
    if view.state == "partial":
        return "Partly applied" + (f": {escape(view.partial_notes)}" if view.partial_notes else ".")
    if view.state == "pending":
        return "Waiting to verify" + (f": {escape(view.pending_reason)}" if view.pending_reason else ".")
    if view.state == "ai_confirming":
        return escape(view.proposal or "FlowPilot thinks there is an outcome to confirm.")
    if view.state == "nudge":
        return f"Applied {ago(view.applied_at, now)}. Did it fix it?"
    if view.state == "worked":
        return ":white_check_mark: It worked."
    if view.state == "failed":
        return ":x: It didn't work" + (f": {escape(view.failure_reason)}" if view.failure_reason else ".")
    return escape(view.status)


def render_fix(view: FixView, now: datetime | None = None) -> Rendered:
    kit = Kit()
    if view.collapsed:
        note = FIX_COLLAPSED.get(view.state, view.state)
        kit.context(f"~Suggested fix: {escape(clip(view.title, 300))}~ · {note}")
        return kit.finish(escape(f"Suggested fix: {view.title} ({note})"))
    kit.section(f"*Suggested fix* · {view.confidence}% confidence\n*{escape(view.title)}*\n"
                f"{to_mrkdwn(view.description)}")
    kit.context(_fix_status_line(view, now))
    if view.state == "ai_confirming":  # the proposal line above; keep notes visible too
        for label, value in (("Notes", view.partial_notes), ("Waiting on", view.pending_reason)):
            if value:
                kit.context(f"{label}: {escape(value)}")
    if view.buttons:
        kit.buttons(view.buttons)
    return kit.finish(escape(f"Suggested fix ({view.confidence}%): {view.title}"))


# ----------------------------------------------------------------------------- preview, list, form
def render_preview(view: PreviewView) -> Rendered:
    kit = Kit()
    title = PREVIEW_TITLES.get(view.kind, view.kind.replace("_", " ").capitalize())
    target = []
    if view.target_ticket_ref:
        target.append(f"will be posted to *{escape(view.target_ticket_ref)}*")
    if view.target_status:
        target.append(f"status after posting: *{escape(view.target_status)}*")
    kit.section(f"*Preview · {escape(title)}*" + (f"\n{' · '.join(target)}" if target else ""))
    if view.fallback_label:
        kit.context(f"_{escape(view.fallback_label)}_")
    kit.divider()
    kit.section(to_mrkdwn(view.markdown) or "_(empty)_")
    if len(kit) > MAX_BLOCKS - 1:
        kit.blocks = kit.blocks[: MAX_BLOCKS - 2]
        kit.context("_The preview is too long to show in full here; the full text is what will be posted._")
    if view.buttons:
        kit.buttons(view.buttons)
    return kit.finish(escape(f"Preview: {title}"))


def render_list(view: ListView) -> Rendered:
    kit = Kit()
    kit.section(f"*{escape(view.title)}*")
    if not view.items:
        kit.context(escape(view.empty_text))
        return kit.finish(escape(f"{view.title}: {view.empty_text}"))
    roomy = 1 + sum(1 + (1 if item.buttons else 0) for item in view.items) <= MAX_BLOCKS
    if roomy:
        for n, item in enumerate(view.items, 1):
            kit.section(f"{n}. {to_mrkdwn(item.text)}")
            if item.buttons:
                kit.buttons(item.buttons)
    else:
        lines = [f"{n}. {to_mrkdwn(item.text)}" for n, item in enumerate(view.items, 1)]
        kit.section("\n".join(lines))
        flat, labels = [], []
        for n, item in enumerate(view.items, 1):
            for b in item.buttons:
                flat.append(b)
                labels.append(f"{b.label} {n}")
        room = (MAX_BLOCKS - len(kit) - 1) * 25
        if flat:
            kit.buttons(flat[:room], labels[:room])
        if len(flat) > room:
            kit.context(f"_{len(flat) - room} more button(s) not shown._")
    return kit.finish(escape(f"{view.title} ({len(view.items)})"))


def render_form_notice(view: FormView) -> Rendered:
    """Forms open as modals (modals.py); a form that ends up posted as a message says so."""
    kit = Kit()
    kit.section(f"*{escape(view.title)}*" + (f"\n{to_mrkdwn(view.intro)}" if view.intro else ""))
    return kit.finish(escape(view.title))
