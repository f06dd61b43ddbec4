"""Escalation latency with the fake model at a fixed latency: escalate → card delivered at the
channel, and → the summary edit delivered. Baselines in the same run: the model latency itself
(the floor of the summary edit) and a bare outbox message (the floor of the card).

    python -m bench.escalation [--runs 10] [--model-latency 1.0]
"""
from __future__ import annotations

import argparse
import asyncio
import time

from bench.common import emit, fresh_database, percentiles
from core.ports import Destination
from core.views import TextView
from tests.harness import console_inbound, running, test_settings

SUMMARY = {"summary_prose": "Printer spooler stalls after the driver update.", "what_we_know": ["Queue frozen"],
           "likely_cause": "Driver", "suggested_steps": ["Roll back the driver"], "confidence": "medium"}


async def main(runs: int, latency: float) -> dict:
    settings = test_settings(FLOWPILOT_ADMINS="U-eng", FLOWPILOT_POLL_SECONDS=2.0)
    async with fresh_database("escalation") as url, running(url, settings=settings) as h:
        async def responder(body):
            await asyncio.sleep(latency)  # the fixed model latency under test
            if body.get("output_config") or body.get("tools"):
                return SUMMARY
            return "Looking.\n[QUESTIONS]\n[{\"text\": \"When did it start?\"}]\n[/QUESTIONS]"

        h.fake_ai.responder = responder
        await h.copilot.command(console_inbound(), "seniors here")
        card_lat, summary_lat, bare_lat = [], [], []
        account = await h.store.ensure_workspace("console", "console-ws")
        for i in range(runs):
            before = len(h.console.order)
            started = await h.copilot.command(console_inbound(), f"new Printer queue stuck #{i}")
            header = await h.console.wait_for(lambda: [m for m in h.console.order[before:]
                                                       if h.console.messages[m].view.type == "header"], timeout=30)
            await h.console.wait_for(lambda: [v for v in h.console.views("lane") if v.session_id == started.session_id],
                                     timeout=30)
            t0 = time.perf_counter()
            await h.copilot.command(console_inbound(thread=header[0]), "escalate stuck")
            card = await h.console.wait_for(lambda: [m for m in h.console.messages.values()
                                                     if m.view.type == "escalation"
                                                     and m.view.session_id == started.session_id], timeout=30)
            card_lat.append(time.perf_counter() - t0)
            await h.console.wait_for(lambda: card[0].view.state == "ready", timeout=60)
            summary_lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            mark = f"bare-{i}"
            async with h.store.unit(account) as uow:
                await uow.send(Destination(platform="console", workspace_id="console-ws", channel_id="bench"),
                               TextView(text=mark))
            await h.console.wait_for(lambda: any(getattr(m.view, "text", None) == mark
                                                 for m in h.console.messages.values()), timeout=30)
            bare_lat.append(time.perf_counter() - t0)
    card, summ, bare = percentiles(card_lat), percentiles(summary_lat), percentiles(bare_lat)
    return emit("escalation", {
        "runs": runs, "model_latency_ms": latency * 1000, "card_delivered": card, "summary_edit_delivered": summ,
        "baseline_bare_outbox_message": bare,
        "ratio_card_vs_bare_message_p50": round(card["p50_ms"] / bare["p50_ms"], 2) if bare["p50_ms"] else None,
        "ratio_summary_vs_model_latency_p50": round(summ["p50_ms"] / (latency * 1000), 2),
    })


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--model-latency", type=float, default=1.0)
    a = p.parse_args()
    asyncio.run(main(a.runs, a.model_latency))
