"""Two `flowpilot serve` processes on one database re-ping an unclaimed escalation exactly once
per slot (issue 6): the slots are delayed rows in the job queue, claimed with SKIP LOCKED."""
from __future__ import annotations

import aiohttp

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.reliability.serve_env import (
    SlackCaller, admin_engine, free_port, fresh_database, rows, scalar, serve_env, serving, wait_until,
)

SENIORS = "C0SENIORS"
WORK = "C0FPCHAN1"
REPLY = "Let's look.\n[QUESTIONS]\n[{\"text\": \"When did it start?\"}]\n[/QUESTIONS]"
SLOTS = 3


async def test_two_serve_processes_post_one_reping_per_slot(tmp_path):
    async with FakeSlack() as slack, FakeAnthropic(api_key="sk-test-fake-key") as ai, \
            fresh_database("reping") as url, aiohttp.ClientSession() as http:
        ai.responder = lambda body: REPLY
        common = dict(FLOWPILOT_ADMINS="U0ENGINEER", ESCALATION_REPING_MINUTES="0.01",
                      ESCALATION_REPING_MAX=str(SLOTS), ESCALATION_SUMMARY_TIMEOUT_SECONDS="5")
        envs = [serve_env(url, port=free_port(), slack=slack, ai=ai, **common) for _ in range(2)]
        async with serving(tmp_path, *envs) as (one, two):
            caller = SlackCaller(http, team_id=slack.team_id, bot_user_id=slack.identity().bot_user_id)
            assert (await caller.command(one.base_url, "seniors here", channel_id=SENIORS)).accepted
            assert (await caller.command(two.base_url, "new Printer offline on floor 3")).accepted
            header = await slack.wait_for(lambda: [m for m in slack.messages(WORK) if not m.get("thread_ts")
                                                   or m.get("thread_ts") == m.get("ts")], timeout=30)
            root = header[0]["ts"]
            await slack.wait_for(lambda: len(slack.thread(WORK, root)) >= 3, timeout=30)
            assert (await caller.mention(one.base_url, WORK, "escalate printer still offline",
                                         thread_ts=root)).accepted
            engine = admin_engine(url)
            try:
                await wait_until(lambda: scalar(engine, "SELECT count(*) FROM jobs WHERE kind = 'escalation_reping' "
                                                "AND status = 'done'"), timeout=60, what="first re-ping slot")

                async def all_slots_done():
                    done = await scalar(engine, "SELECT count(*) FROM jobs WHERE kind = 'escalation_reping' "
                                        "AND status = 'done'")
                    waiting = await scalar(engine, "SELECT count(*) FROM jobs WHERE kind = 'escalation_reping' "
                                           "AND status <> 'done'")
                    return done >= SLOTS and waiting == 0

                await wait_until(all_slots_done, timeout=60, what="every re-ping slot to run")
                await wait_until(lambda: scalar(engine, "SELECT count(*) = 0 FROM outbox WHERE status <> 'delivered'"),
                                 timeout=30, what="the outbox to drain")
                slot_rows = await rows(engine, "SELECT payload->>'slot' AS slot, locked_by FROM jobs "
                                       "WHERE kind = 'escalation_reping' ORDER BY id")
            finally:
                await engine.dispose()
            pings = [m for m in slack.messages(SENIORS) if "<!here>" in (m.get("text") or "")]
            assert [r.slot for r in slot_rows] == [str(n) for n in range(1, SLOTS + 1)]
            assert len(pings) == SLOTS, [m.get("text") for m in pings]
            # both processes were running workers the whole time (neither was idle by accident)
            assert one.alive and two.alive
