"""Promise 4: the database restarts under steady load, and FlowPilot neither lies nor wedges.

A `flowpilot serve` subprocess (Slack and Teams mounted) runs on a PRIVATE embedded Postgres (its
own data directory, never the shared test server) while a steady stream of signed Slack requests
arrives: thread replies in open sessions and new sessions from slash commands; a Teams activity
arrives during each outage. The test stops Postgres, keeps the requests coming, then starts
Postgres again. It checks:

- during the outage every request is answered fast (well inside Slack's 3 s) with a non-2xx
  status, so Slack delivers it again; nothing is acknowledged that was not recorded;
- nothing is half-applied: every session has its header in the outbox, every engineer message its
  AI-turn job and "thinking…" placeholder, every AI-turn job its message;
- the service recovers by itself: requests answer 200 again within seconds of Postgres being
  back, the job and outbox workers resume, and LISTEN/NOTIFY reconnects (the poll interval is set
  to 30 s, so prompt replies after the restart can only come from NOTIFY wake-ups);
- once Slack's redeliveries arrive, every message has exactly one reply.

The long variant (`pytest -m long`) restarts the database several times, alternating a clean
shutdown and a crash (`pg_ctl -m immediate`), with random outage lengths."""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import aiohttp
import pytest

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.fakes.teams import FakeBotConnector, FakeOpenIdIssuer
from tests.harness import FAKE_KEY
from tests.reliability.serve_env import (
    TEAMS_APP_ID, TEAMS_PASSWORD, TOKEN, PrivatePostgres, SlackCaller, Sent, ServeProcess, TeamsCaller, admin_engine,
    free_port, last_user_text, rows, scalar, serve_env, teams_env, wait_until,
)

ENGINEER = "U0ENGINEER"
SLACK_ACK_BUDGET_S = 3.0
FAIL_FAST_S = 2.0  # "well under" Slack's budget
POLL_S = 30  # workers would sleep this long without NOTIFY
PROMPT_REPLY_S = 10.0  # well under POLL_S: only a live LISTEN explains it
RECOVERY_S = 10.0
OPEN_SESSIONS = 8  # replies spread over this many channels (Slack paces posts per channel)


def answer(body: dict) -> str:
    tokens = TOKEN.findall(last_user_text(body))
    return f"Reply to {tokens[-1]}." if tokens else "Reply to nothing."


@dataclass
class Shot:
    sent: Sent
    token: str
    phase: str  # "up" (database running), "down" (stopped), "changing" (stopping or starting)


@dataclass
class SteadyLoad:
    """A signed request every `interval` seconds: a reply in one of the open sessions, and every
    fourth one a new session (in a channel of its own). Each carries a token the model echoes
    back. The load stays under Slack's pace of about one post per second per channel, so replies
    keep up with it and a delay can only come from the outage."""

    caller: SlackCaller
    base_url: str
    threads: list[tuple[str, str]]  # (channel, header ts) of open sessions
    interval: float = 0.25
    phase: str = "up"
    shots: list[Shot] = field(default_factory=list)
    _n: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self, phase: str, accepted: bool | None = None) -> int:
        return sum(1 for s in self.shots if s.phase == phase and (accepted is None or s.sent.accepted == accepted))

    async def one(self) -> Shot:
        self._n += 1
        token, phase = f"msg-7-{self._n}", self.phase
        if self._n % 4 == 0:
            sent = await self.caller.command(self.base_url, f"new Scanner {self._n} offline {token}",
                                             channel_id=f"C0NEW{self._n:04d}")
        else:
            channel, ts = self.threads[self._n % len(self.threads)]
            sent = await self.caller.reply(self.base_url, channel, ts, f"Tried step {self._n} {token}")
        shot = Shot(sent, token, phase if phase == self.phase else "changing")
        self.shots.append(shot)
        return shot

    async def run(self) -> None:
        while not self._stop.is_set():
            await self.one()
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)  # the load's pace, not a sync point
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()


async def half_applied(engine) -> dict[str, int]:
    """Rows that exist without the rows written in the same transaction. All must be zero."""
    checks = {
        "session without header": "SELECT count(*) FROM ai_sessions s WHERE NOT EXISTS "
                                  "(SELECT 1 FROM outbox o WHERE o.card_key = 'header:' || s.id)",
        "message without turn job": "SELECT count(*) FROM session_messages m WHERE m.role = 'user' AND NOT EXISTS "
                                    "(SELECT 1 FROM jobs j WHERE j.kind = 'ai_turn' "
                                    "AND j.payload->>'message_id' = m.id::text)",
        "message without placeholder": "SELECT count(*) FROM session_messages m WHERE m.role = 'user' AND NOT EXISTS "
                                       "(SELECT 1 FROM outbox o WHERE o.card_key = 'reply:' || m.id)",
        "turn job without message": "SELECT count(*) FROM jobs j WHERE j.kind = 'ai_turn' AND NOT EXISTS "
                                    "(SELECT 1 FROM session_messages m WHERE m.id::text = j.payload->>'message_id')",
        "event recorded without effect": "SELECT (SELECT count(*) FROM inbound_events) - "
                                         "(SELECT count(*) FROM session_messages WHERE role = 'user')",
    }
    return {name: await scalar(engine, sql) for name, sql in checks.items()}


async def restart_cycle(db: PrivatePostgres, load: SteadyLoad, mode: str, outage_requests: int,
                        teams: "TeamsCaller | None" = None) -> dict[str, float]:
    """Stop the database, let `outage_requests` requests meet the outage (a Teams activity among
    them), start it again, and measure how long until a request is accepted again."""
    load.phase = "changing"
    await db.stop(mode)
    load.phase = "down"
    seen = load.count("down")
    if teams is not None:
        teams.during_outage.append(await teams.post(load.base_url, f"new Teams {len(teams.during_outage)} "
                                                                    f"laptop dock msg-9-{len(teams.during_outage)}"))
    await wait_until(lambda: load.count("down") >= seen + outage_requests, 30, "requests during the outage")
    load.phase = "changing"
    await db.start()
    back = time.perf_counter()
    accepted = load.count("up", accepted=True)
    load.phase = "up"
    await wait_until(lambda: load.count("up", accepted=True) > accepted, RECOVERY_S,
                     "a request to be accepted after the database came back", every=0.05)
    recovered = time.perf_counter() - back
    await wait_until(lambda: load.count("up", accepted=True) >= accepted + 3, 20, "steady load after recovery")
    return {"recovered_s": round(recovered, 2)}


async def redeliver(caller: SlackCaller, base_url: str, load: SteadyLoad) -> list[str]:
    """Slack's retries of everything that was not acknowledged; returns every accepted token."""
    for shot in load.shots:
        if not shot.sent.accepted:
            again = await caller.retry(base_url, shot.sent)
            assert again.accepted, f"a retried {shot.sent.kind} was refused after recovery: {again.status}"
            shot.sent = again
    return [s.token for s in load.shots]


async def run_restarts(tmp_path, cycles: list[tuple[str, int]], seed: int = 1) -> dict:
    rng = random.Random(seed)
    db = await PrivatePostgres().start_new()
    slack = FakeSlack()
    slack.add_user(ENGINEER, name="erin", real_name="Erin Engineer")
    ai = FakeAnthropic(api_key=FAKE_KEY)
    ai.responder = answer
    engine = admin_engine(db.url)
    figures: dict = {"cycles": []}
    issuer = FakeOpenIdIssuer()
    connector = FakeBotConnector(app_id=TEAMS_APP_ID, app_password=TEAMS_PASSWORD)
    async with slack, ai, issuer, connector, aiohttp.ClientSession() as http:
        proc = ServeProcess("serve", serve_env(db.url, port=free_port(), slack=slack, ai=ai,
                                               FLOWPILOT_POLL_SECONDS=str(POLL_S), FLOWPILOT_WORKERS="6",
                                               **teams_env(issuer, connector)),
                           tmp_path / "serve.log")
        teams = TeamsCaller(http, issuer, connector, channel="19:d0d0d0restart000000000000000000@thread.tacv2")
        caller = SlackCaller(http)
        try:
            await proc.start()
            await proc.wait_ready()
            threads, first_tokens = [], []
            for k in range(1, OPEN_SESSIONS + 1):
                first_tokens.append(f"msg-7-0{k}")
                sent = await caller.command(proc.base_url, f"new Outlook {k} keeps crashing msg-7-0{k}",
                                            channel_id=f"C0RESTAR{k}")
                assert sent.accepted
            for k in range(1, OPEN_SESSIONS + 1):
                root = await slack.wait_for(lambda: [m for m in slack.messages(f"C0RESTAR{k}")
                                                     if "Outlook" in m["text"]])
                threads.append((f"C0RESTAR{k}", root[0]["ts"]))
                await wait_until(lambda: scalar(engine, "SELECT count(*) FROM chat_threads WHERE thread_id = :t",
                                                t=root[0]["ts"]), 10, "the thread to be bound to its session")
            load = SteadyLoad(caller, proc.base_url, threads)
            runner = asyncio.create_task(load.run())
            await wait_until(lambda: load.count("up", accepted=True) >= 4, 20, "steady load before the outage")
            for n, (mode, outage_requests) in enumerate(cycles):
                if n:  # vary where the next cut lands in the stream of requests (a pace, not a sync point)
                    await asyncio.sleep(rng.uniform(0.2, 1.5))
                figures["cycles"].append({"mode": mode, **await restart_cycle(db, load, mode, outage_requests,
                                                                              teams)})
            load.stop()
            await runner

            # during the outage: refused, fast, and with a status Slack retries
            down = [s for s in load.shots if s.phase == "down"]
            assert len(down) >= sum(n for _, n in cycles)
            for shot in down:
                assert shot.sent.status is not None and not 200 <= shot.sent.status < 300, shot.sent
                assert shot.sent.seconds < FAIL_FAST_S < SLACK_ACK_BUDGET_S, shot.sent.seconds
            figures["outage_requests"] = len(down)
            figures["slowest_refusal_s"] = round(max(s.sent.seconds for s in down), 3)
            figures["statuses"] = sorted({s.sent.status for s in down})

            # Teams was refused the same way, fast and with a status it redelivers on
            for status, seconds, _ in teams.during_outage:
                assert not 200 <= status < 300 and seconds < FAIL_FAST_S, (status, seconds)
            figures["teams_outage_statuses"] = sorted({status for status, _, _ in teams.during_outage})

            # Slack and Teams redeliver what was refused; then every message has exactly one reply
            tokens = [*first_tokens, *await redeliver(caller, proc.base_url, load)]
            teams_tokens = await teams.redeliver(proc.base_url)

            async def settled() -> bool:
                busy = await scalar(engine, "SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')")
                sending = await scalar(engine, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
                return busy == 0 and sending == 0

            await wait_until(settled, 60, "the backlog to drain", every=0.25)
            # recovered by itself, LISTEN included: with the backlog done, a new session's answer
            # comes promptly, which with a 30 s poll only a NOTIFY wake-up explains
            for n in range(3):
                token = f"msg-8-{n}"
                sent = await caller.command(proc.base_url, f"new Probe {n} after the restart {token}",
                                            channel_id=f"C0PROBE{n}")
                assert sent.accepted
                started = time.perf_counter()
                await slack.wait_for(lambda: any(f"Reply to {token}." in m["text"] for m in slack.messages()),
                                     PROMPT_REPLY_S)
                figures.setdefault("reply_after_restart_s", []).append(round(time.perf_counter() - started, 2))
                tokens.append(token)
            texts = [m["text"] for m in slack.messages()]
            for token in tokens:
                hits = sum(f"Reply to {token}." in t for t in texts)
                if hits != 1:  # say everything known about it
                    shot = next((x for x in load.shots if x.token == token), None)
                    facts = await rows(engine, "SELECT m.id, m.content, j.status, j.attempts, j.last_error FROM "
                                               "session_messages m LEFT JOIN jobs j ON j.payload->>'message_id' = "
                                               "m.id::text WHERE m.content LIKE :t", t=f"%{token}%")
                    raise AssertionError(f"{token}: {hits} replies; request {shot}; stored {facts}; "
                                         f"texts {[t for t in texts if token in t]}")
            assert not [t for t in texts if "FlowPilot is thinking" in t]
            for token in teams_tokens:  # one Teams message carries the answer
                assert len(teams.carrying(f"Reply to {token}.")) == 1, (token, teams.texts())
            assert await half_applied(engine) == {
                "session without header": 0, "message without turn job": 0, "message without placeholder": 0,
                "turn job without message": 0, "event recorded without effect": 0}
            assert await scalar(engine, "SELECT count(*) FROM jobs WHERE status = 'failed'") == 0
            assert await scalar(engine, "SELECT count(*) FROM outbox WHERE status = 'failed'") == 0, \
                await rows(engine, "SELECT last_error FROM outbox WHERE status = 'failed'")
            figures["messages"] = len(tokens)
            return figures
        except BaseException:
            print(proc.log_tail())
            raise
        finally:
            await proc.stop()
            await engine.dispose()
            await db.destroy()


async def test_a_database_restart_under_load_fails_fast_loses_nothing_and_recovers_by_itself(tmp_path) -> None:
    figures = await run_restarts(tmp_path, [("fast", 4)])
    assert figures["cycles"][0]["recovered_s"] < RECOVERY_S
    print(f"\ndb restart figures: {figures}")


@pytest.mark.long
async def test_repeated_database_restarts_and_crashes_under_load(tmp_path) -> None:
    rng = random.Random(4)
    cycles = [(mode, rng.randint(3, 20)) for mode in ("fast", "immediate", "fast", "immediate", "immediate")]
    figures = await run_restarts(tmp_path, cycles, seed=4)
    print(f"\nLONG db restart run: {figures}")
    assert all(c["recovered_s"] < RECOVERY_S for c in figures["cycles"])
