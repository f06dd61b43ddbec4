"""Views → plain text for the terminal (and for reading cards in tests)."""
from __future__ import annotations

from datetime import datetime, timezone

from core.views import (
    EscalationView, FixView, HandoffContextView, HeaderView, LaneView, ListView, PreviewView, TextView,
)


def _ago(ts: datetime | None) -> str:
    if ts is None:
        return ""
    minutes = int((datetime.now(timezone.utc) - ts).total_seconds() // 60)
    return f"{minutes}m ago" if minutes else "just now"


def _buttons(buttons) -> str:
    return "  ".join(f"[{b.label}]" for b in buttons)


def render(view) -> str:
    if isinstance(view, TextView):
        prefix = " ".join(f"@{m.name}" for m in view.mentions)
        if view.mention_channel:
            prefix = ("@here " + prefix).strip()
        text = f"{prefix} {view.text}".strip()
        return text + (f"\n  {_buttons(view.buttons)}" if view.buttons else "")
    if isinstance(view, HeaderView):
        chip = f" · {view.ticket_ref}" if view.ticket_ref else ""
        who = f" · owner {view.owner_name}" if view.owner_name else ""
        claimer = f" · with {view.claimer_name}" if view.claimer_name else ""
        return f"== {view.title}{chip} · {view.status}{who}{claimer} ==\n  {_buttons(view.buttons)}"
    if isinstance(view, LaneView):
        lines = [f"What we know · {len(view.facts)}"]
        lines += [f"  - {f.text}" + (f" ({f.source_type}: {f.source_summary})" if f.source_summary
                                     else f" ({f.source_type})") for f in view.facts]
        if view.questions:
            lines.append("Questions")
            for n, q in enumerate(view.questions, 1):
                status = "" if q.status == "open" else f" [{q.status}]"
                lines.append(f"  Q{n}. {q.text}{status}" + (f" — {q.response}" if q.response else ""))
        if view.checks:
            lines.append("Diagnostic checks")
            for n, c in enumerate(view.checks, 1):
                status = "" if c.status == "open" else f" [{c.status}]"
                lines.append(f"  C{n}. {c.text}{status}")
                if c.command:
                    lines.append(f"      $ {c.command}")
                if c.description:
                    lines.append(f"      {c.description}")
        return "\n".join(lines)
    if isinstance(view, FixView):
        if view.collapsed:
            return f"~ Suggested fix: {view.title} ({view.state})"
        lines = [f"Suggested fix ({view.confidence}%): {view.title} — {view.state}", f"  {view.description}"]
        if view.state == "verifying":
            lines.append(f"  Applied {_ago(view.applied_at)}")
        for label, value in (("Partial notes", view.partial_notes), ("Waiting on", view.pending_reason),
                             ("Failure", view.failure_reason)):
            if value:
                lines.append(f"  {label}: {value}")
        if view.proposal:
            lines.append(f"  {view.proposal}")
        if view.buttons:
            lines.append(f"  {_buttons(view.buttons)}")
        return "\n".join(lines)
    if isinstance(view, EscalationView):
        lines = [f"ESCALATION: {view.title} — {view.state}"]
        if view.handed_off_by:
            lines.append(f"  Handed off by {view.handed_off_by}" + (f": {view.reason}" if view.reason else ""))
        if view.state == "analyzing":
            lines.append("  Summary: Analyzing…")
        elif view.summary_prose:
            lines.append(f"  Summary: {view.summary_prose}")
        elif view.state == "failed":
            lines.append("  AI summary unavailable — deterministic snapshot below")
        for item in view.what_we_know or view.snapshot.get("what_we_know", []):
            lines.append(f"  - {item}")
        if view.likely_cause:
            lines.append(f"  Likely cause: {view.likely_cause}")
        if view.claimed_by:
            lines.append(f"  Claimed by {view.claimed_by}")
        if view.status_note:
            lines.append(f"  {view.status_note}")
        if view.psa_note:
            lines.append(f"  {view.psa_note}")
        if view.buttons:
            lines.append(f"  {_buttons(view.buttons)}")
        return "\n".join(lines)
    if isinstance(view, HandoffContextView):
        who = f"@{view.senior.name} " if view.senior else ""
        lines = [f"{who}Handoff context from {view.handed_off_by or 'the engineer'}"]
        if view.summary_prose:
            lines.append(f"  Summary: {view.summary_prose}")
        lines += [f"  Known: {x}" for x in view.what_we_know]
        lines += [f"  Tried: {x}" for x in view.tried]
        if view.likely_cause:
            lines.append(f"  Likely cause: {view.likely_cause}")
        lines += [f"  Next: {x}" for x in view.next_steps]
        return "\n".join(lines)
    if isinstance(view, PreviewView):
        head = f"Preview ({view.kind})" + (f" → {view.target_ticket_ref}" if view.target_ticket_ref else "")
        if view.fallback_label:
            head += f" — {view.fallback_label}"
        return f"{head}\n{view.markdown}\n  {_buttons(view.buttons)}"
    if isinstance(view, ListView):
        if not view.items:
            return f"{view.title}\n  {view.empty_text}"
        return view.title + "\n" + "\n".join(
            f"  {n}. {i.text}" + (f"  {_buttons(i.buttons)}" if i.buttons else "") for n, i in enumerate(view.items, 1))
    return str(view)
