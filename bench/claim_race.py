"""N concurrent claims of one escalation by N seniors: winners (must be 1) and wall time, against
a baseline of N concurrent bare conditional UPDATEs of one row (the floor of any atomic claim).

    python -m bench.claim_race [--claimers 100]
"""
from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from sqlalchemy import text

from bench.common import emit, fresh_database
from core.model import Role
from tests.harness import console_inbound, running


async def main(claimers: int) -> dict:
    async with fresh_database("claim") as url, running(url) as h:
        h.fake_ai.reply_text("Looking.\n[QUESTIONS]\n[{\"text\": \"When did it start?\"}]\n[/QUESTIONS]")
        started = await h.copilot.command(console_inbound(), "new VPN drops every hour")
        account = await h.store.ensure_workspace("console", "console-ws")
        seniors = [console_inbound(user=f"S{i}", name=f"Senior {i}") for i in range(claimers)]
        for s in seniors:
            await h.copilot.command(s, "help")
        async with h.store.unit(account) as uow:
            for i in range(claimers):
                p = await uow.people.by_identity("console", "console-ws", f"S{i}")
                await uow.people.set_role(p.id, Role.SENIOR)
        async with h.store.unit(account) as uow:
            session = await uow.sessions.get(uuid.UUID(started.session_id))
        thread = session.thread.thread_id if session.thread else None
        esc = await h.copilot.command(console_inbound(thread=thread), "escalate bench")
        hid = esc.extra["handoff_id"]
        t0 = time.perf_counter()
        replies = await asyncio.gather(*(h.copilot.action(s, "claim", {"handoff_id": hid,
                                                                          "session_id": started.session_id})
                                         for s in seniors))
        claim_wall = time.perf_counter() - t0
        winners = sum(1 for r in replies if r.ok)
        async with h.store.unit(account) as uow:
            claimed_by = (await uow.handoffs.get(uuid.UUID(hid))).claimed_by
        # baseline: the same concurrency on a bare conditional UPDATE
        await _baseline_setup(h)
        t0 = time.perf_counter()
        base = await asyncio.gather(*(_bare_claim(h, f"S{i}") for i in range(claimers)))
        base_wall = time.perf_counter() - t0
    return emit("claim_race", {
        "claimers": claimers, "winners": winners, "db_claimed_by_set": claimed_by is not None,
        "losers_told_winner": sum(1 for r in replies if r.error is not None and "Already claimed by" in str(r.error)),
        "claim_wall_ms": round(claim_wall * 1000, 1), "baseline_wall_ms": round(base_wall * 1000, 1),
        "baseline_winners": sum(base), "ratio_vs_bare_update": round(claim_wall / base_wall, 2) if base_wall else None,
    })


async def _baseline_setup(h) -> None:
    async with h.store.db.admin.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_claim (id int primary key, owner text)"))
        await conn.execute(text("TRUNCATE bench_claim"))
        await conn.execute(text("INSERT INTO bench_claim VALUES (1, NULL)"))


async def _bare_claim(h, who: str) -> int:
    async with h.store.db.admin.begin() as conn:
        res = await conn.execute(text("UPDATE bench_claim SET owner = :w WHERE id = 1 AND owner IS NULL"), dict(w=who))
        return res.rowcount


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--claimers", type=int, default=100)
    asyncio.run(main(p.parse_args().claimers))
