"""Token economics of a scripted 10-turn session against the fake Anthropic server (which models
prompt caching): model calls, input tokens per turn, the cached share from turn 2 on, calls per
escalation and per repeated preview. Baseline: the same turns' input with no cache hits.

    python -m bench.tokens [--turns 10]
"""
from __future__ import annotations

import argparse
import asyncio

from bench.common import emit, fresh_database
from tests.harness import console_inbound, running, test_settings

TURN = ("Next step.\n[QUESTIONS]\n[{\"text\": \"What changed since turn %d?\"}]\n[/QUESTIONS]\n"
        "[ACTIONS]\n[{\"label\": \"Check logs %d\", \"command\": \"Get-WinEvent -LogName System -MaxEvents 20\", "
        "\"description\": \"recent errors\"}]\n[/ACTIONS]")


async def main(turns: int) -> dict:
    async with fresh_database("tokens") as url, running(url, settings=test_settings(FLOWPILOT_ADMINS="U-eng")) as h:
        fake = h.fake_ai
        await h.copilot.command(console_inbound(), "seniors here")
        first = await h.copilot.command(console_inbound(), "new Outlook search returns nothing")
        fake.reply_text(TURN % (1, 1))
        await h.console.wait_for(lambda: len(h.console.views("lane")) >= 1, timeout=30)
        thread = h.console.order[0]
        for n in range(2, turns + 1):
            fake.reply_text(TURN % (n, n))
            await h.copilot.message(console_inbound(thread=thread), f"Observation number {n}: still failing")
            await h.console.wait_for(lambda: len(h.console.views("lane")) >= n, timeout=30)
        chat = [r for r in fake.requests if r.status == 200]
        per_turn = []
        for r in chat:
            u = r.response.get("usage", {})
            total_in = u.get("input_tokens", 0) + u.get("cache_read_input_tokens", 0) + u.get("cache_creation_input_tokens", 0)
            per_turn.append({"input_total": total_in, "cache_read": u.get("cache_read_input_tokens", 0),
                             "cache_creation": u.get("cache_creation_input_tokens", 0)})
        later = per_turn[1:]
        cached_share = (sum(t["cache_read"] for t in later) / max(1, sum(t["input_total"] for t in later)))
        calls_before = len(fake.requests)
        fake.reply_json({"summary_prose": "x", "what_we_know": [], "likely_cause": None, "suggested_steps": [],
                         "confidence": "low"})
        await h.copilot.command(console_inbound(thread=thread), "escalate bench")
        await h.console.wait_for(lambda: [v for v in h.console.views("escalation") if v.state != "analyzing"])
        calls_per_escalation = len(fake.requests) - calls_before
        before_preview = len(fake.requests)
        fake.reply_text("## Problem\na\n\n## What we confirmed\nb\n\n## Root cause\nc\n\n## Resolution\nd")
        await h.copilot.action(console_inbound(thread=thread), "resolve", {"session_id": first.session_id})
        await h.console.wait_for(lambda: h.console.views("preview"))
        await h.copilot.action(console_inbound(thread=thread), "resolve", {"session_id": first.session_id})
        await h.console.wait_for(lambda: len([m for m in h.console.messages.values()
                                              if m.view.type == "preview" and m.edits >= 1]) >= 1)
        calls_for_two_previews = len(fake.requests) - before_preview
    baseline_input = sum(t["input_total"] for t in later)
    billed_equiv = sum(t["input_total"] - t["cache_read"] * 0.9 for t in later)
    return emit("tokens", {
        "turns": turns, "model_calls_for_turns": len(per_turn), "input_tokens_per_turn": [t["input_total"] for t in per_turn],
        "cached_share_from_turn_2": round(cached_share, 3), "calls_per_escalation": calls_per_escalation,
        "calls_for_two_identical_previews": calls_for_two_previews,
        "ratio_billed_input_vs_uncached": round(billed_equiv / baseline_input, 3) if baseline_input else None,
    })


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--turns", type=int, default=10)
    asyncio.run(main(p.parse_args().turns))
