"""Promise 3: a `flowpilot serve` killed with SIGKILL in the middle of its work loses nothing that
Slack was told was accepted, and shows nothing twice.

The processes are real (`flowpilot serve` subprocesses on a fresh test database), Slack is
FakeSlack and the model FakeAnthropic, both in this test process. Every request is signed as Slack
signs it; a request that got HTTP 200 is *accepted*: Slack will never send it again, so its
reply must come. A request that got no 200 (the process was gone) is sent again, as Slack
retries, and must still have exactly one effect.

The kill is placed deterministically where it hurts most:
- model calls (AI turns, one of them a Teams session's, and escalation summaries) are waiting on the
  model (a gated responder);
- Slack has accepted posts whose answers are still on the wire (HoldingSlack holds them), so the
  dying process never learned their message ts;
- a slash command is half way through its transaction when the process dies (the test holds the
  row its de-duplication insert waits for): with "ack first" it would have had its 200 already
  and be lost; with "record, then ack" it has no 200, and Slack's retry completes it.

What must hold afterwards: one reply per accepted message (its "thinking…" placeholder edited into
the answer), one header and one task-lane card per AI turn per session, one escalation card per
escalation per route with its AI summary, no failed job or delivery, and no Slack message posted
twice (every post carries its outbox delivery key; none appears twice).

The long variant (`pytest -m long`) runs two processes side by side behind a round-robin "load
balancer" and kills one of them at random moments, over and over, while traffic continues (some
requests on the wire at the moment of the kill); then the same checks."""
from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from urllib.parse import unquote

import aiohttp
import pytest
from sqlalchemy import text

from core.prompts.chat import CHAT_SYSTEM_PROMPT
from core.turns import AI_UNAVAILABLE, TURN_JOB
from storage import jobs as jobq
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.fakes.slack_signing import FORM_CONTENT_TYPE
from tests.harness import FAKE_KEY, console_inbound, running
from tests.harness import test_settings as make_settings
from tests.fakes.teams import FakeBotConnector, FakeOpenIdIssuer
from tests.reliability.serve_env import (
    TEAMS_APP_ID, TEAMS_PASSWORD, TOKEN, SlackCaller, Sent, ServeProcess, TeamsCaller, admin_engine, free_port,
    fresh_database, last_user_text, rows, scalar, serve_env, teams_env, wait_until,
)

ENGINEER = "U0ENGINEER"
NEWBIE = "U0NEWBIE1"
ADMIN = "U0SENIOR1"
SENIORS = "C0SENIORS"
SUMMARY = {"summary_prose": "SUMMARY-OK: the spooler keeps dying after restarts.",
           "what_we_know": ["Spooler stops"], "likely_cause": "A corrupt driver",
           "suggested_steps": ["Reinstall the driver", "Clear the queue"], "confidence": "medium"}
THINKING = "FlowPilot is thinking"
SERVE_EXTRA = dict(FLOWPILOT_ADMINS=ADMIN, ESCALATION_REPING_MINUTES="600", FLOWPILOT_WORKERS="8")


# ----------------------------------------------------------------------------- fakes with a grip
class HoldingSlack(FakeSlack):
    """FakeSlack that can hold its *answer* to chosen calls after doing the work: a held
    chat.postMessage is already in the channel, but the caller has not learned its ts. That is
    the window in which a crash used to mean "post it again" (and show it twice)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_if: Any = None  # (method, params) -> bool
        self.held: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # (method, params, answer)
        self._release = asyncio.Event()
        self.answer_delay: tuple[float, float] | None = None  # (min, max) seconds after posting
        self._rng = random.Random(7)

    def hold(self, predicate: Any) -> None:
        self.hold_if = predicate
        self._release.clear()

    def release(self) -> None:
        self.hold_if = None
        self._release.set()

    async def _dispatch(self, method: str, params: dict, request: Any, headers: dict[str, str]) -> dict:
        answer = await super()._dispatch(method, params, request, headers)
        if self.hold_if is not None and self.hold_if(method, params):
            self.held.append((method, dict(params), answer))
            await self._notify()
            await self._release.wait()
        elif self.answer_delay and method == "chat.postMessage":
            await asyncio.sleep(self._rng.uniform(*self.answer_delay))  # widens the crash window
        return answer

    def held_posts(self) -> list[dict[str, Any]]:
        return [answer for method, _, answer in self.held if method == "chat.postMessage"]


def is_chat(body: dict[str, Any]) -> bool:
    system = body.get("system", "")
    text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system)
    return CHAT_SYSTEM_PROMPT[:80] in text


class Model:
    """FakeAnthropic's responder. Chat turns answer "Reply to <token>." for the token in the
    engineer's message; summaries answer SUMMARY. While gated, chat answers need an allowance
    (`allow_chat`) and summaries wait for `open()`; every answer takes `delay` seconds."""

    def __init__(self, ai: FakeAnthropic, delay: tuple[float, float] = (0.05, 0.15), gated: bool = False) -> None:
        self.delay = delay
        self.gated = gated
        self.chat_budget = 0
        self.waiting = Counter()
        self._cond = asyncio.Condition()
        self._rng = random.Random(11)
        ai.responder = self

    async def allow_chat(self, n: int) -> None:
        async with self._cond:
            self.chat_budget += n
            self._cond.notify_all()

    async def open(self) -> None:
        async with self._cond:
            self.gated = False
            self._cond.notify_all()

    async def wait_waiting(self, kind: str, n: int, timeout: float = 20.0) -> None:
        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: self.waiting[kind] >= n), timeout)

    async def __call__(self, body: dict[str, Any]) -> Any:
        kind = "chat" if is_chat(body) else "summary"
        async with self._cond:
            self.waiting[kind] += 1
            self._cond.notify_all()
            await self._cond.wait_for(lambda: not self.gated or (kind == "chat" and self.chat_budget > 0))
            if self.gated:
                self.chat_budget -= 1
            self.waiting[kind] -= 1
        await asyncio.sleep(self._rng.uniform(*self.delay))
        if kind == "summary":
            return SUMMARY
        tokens = TOKEN.findall(last_user_text(body))
        return f"Reply to {tokens[-1]}." if tokens else "Reply to nothing."


# ----------------------------------------------------------------------------- bookkeeping
@dataclass
class Session:
    channel: str
    title: str
    header_ts: str | None = None
    tokens: list[str] = field(default_factory=list)  # accepted messages (the problem and replies)
    escalated: bool = False


@dataclass
class Traffic:
    """Slack's side: what was sent, what was accepted, and re-sending what was not."""

    caller: SlackCaller
    sessions: dict[int, Session] = field(default_factory=dict)
    unaccepted: list[tuple[Sent, Any]] = field(default_factory=list)  # (request, what to record on acceptance)

    def record(self, sent: Sent, on_accept: Any) -> None:
        if sent.accepted:
            on_accept()
        else:
            self.unaccepted.append((sent, on_accept))

    async def redeliver(self, base_urls: Any, timeout: float = 60.0) -> None:
        """Slack's retries: the same bytes again until some process accepts them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        n = 0
        while self.unaccepted:
            sent, on_accept = self.unaccepted[0]
            again = await self.caller.retry(base_urls()[n % len(base_urls())], sent, retry_num=1)
            n += 1
            if again.accepted:
                self.unaccepted.pop(0)
                on_accept()
            else:
                assert loop.time() < deadline, f"no process accepted a retried {sent.kind}"
                await asyncio.sleep(0.2)


def top_level(slack: FakeSlack, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if m.get("thread_ts") in (None, m["ts"])]


def buttons_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            out += [json.loads(e["value"]) for e in block.get("elements", []) if e.get("value")]
    return out


async def start_session(traffic: Traffic, base_url: str, k: int, user: str = ENGINEER) -> None:
    channel, token = f"C0CRASH{k:02d}", f"msg-{k}-0"
    session = Session(channel=channel, title=f"Printer {k} down {token}")
    traffic.sessions[k] = session
    sent = await traffic.caller.command(base_url, f"new {session.title}", user_id=user, channel_id=channel)
    traffic.record(sent, lambda: session.tokens.append(token))


async def headers_posted(slack: FakeSlack, engine: Any, traffic: Traffic, keys: Any, timeout: float = 30.0) -> None:
    """Each session's header is in Slack and its thread is bound to the session (a reply before
    that would rightly be ignored: the thread is not a session yet)."""
    def found() -> bool:
        for k in keys:
            s = traffic.sessions[k]
            roots = [m for m in top_level(slack, s.channel) if s.title in m["text"]]
            if roots:
                s.header_ts = roots[0]["ts"]
        return all(traffic.sessions[k].header_ts for k in keys)

    await slack.wait_for(found, timeout)
    stamps = [traffic.sessions[k].header_ts for k in keys]
    await wait_until(lambda: scalar(engine, "SELECT count(*) = :n FROM chat_threads WHERE thread_id = ANY(:t)",
                                    n=len(stamps), t=stamps), timeout, "the threads to be bound to their sessions")


async def reply(traffic: Traffic, base_url: str, k: int, n: int) -> None:
    s, token = traffic.sessions[k], f"msg-{k}-{n}"
    sent = await traffic.caller.reply(base_url, s.channel, s.header_ts, f"Still broken after step {n} {token}")
    traffic.record(sent, lambda: s.tokens.append(token))


async def escalate(traffic: Traffic, base_url: str, k: int) -> None:
    s = traffic.sessions[k]
    sent = await traffic.caller.mention(base_url, s.channel, "escalate customer is waiting", thread_ts=s.header_ts)

    def accepted() -> None:
        s.escalated = True

    traffic.record(sent, accepted)


# ----------------------------------------------------------------------------- settling and checking
async def quiet(engine: Any, timeout: float) -> None:
    """No work left: every job (but the far-future re-pings) and every delivery has finished."""
    async def settled() -> bool:
        busy = await scalar(engine, "SELECT count(*) FROM jobs WHERE status IN ('pending', 'running') "
                                    "AND kind <> 'escalation_reping'")
        sending = await scalar(engine, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')")
        return busy == 0 and sending == 0

    await wait_until(settled, timeout, "jobs and deliveries to finish", every=0.25)


async def check_nothing_lost_nothing_twice(slack: FakeSlack, engine: Any, traffic: Traffic) -> dict[str, int]:
    everything = slack.messages()
    texts = [m["text"] for m in everything]

    # no job or delivery gave up
    assert await scalar(engine, "SELECT count(*) FROM jobs WHERE status = 'failed'") == 0, \
        await rows(engine, "SELECT kind, attempts, last_error FROM jobs WHERE status = 'failed'")
    assert await scalar(engine, "SELECT count(*) FROM outbox WHERE status = 'failed'") == 0, \
        await rows(engine, "SELECT id, last_error FROM outbox WHERE status = 'failed'")

    # one reply per accepted message, and no placeholder left waiting for an answer that died
    accepted = [t for s in traffic.sessions.values() for t in s.tokens]
    assert len(accepted) == len(set(accepted))
    for token in accepted:
        hits = [t for t in texts if f"Reply to {token}." in t]
        assert len(hits) == 1, f"{token}: {len(hits)} replies"
    assert not [t for t in texts if THINKING in t], "a 'thinking…' placeholder was never answered"

    for s in traffic.sessions.values():
        if not s.tokens:
            continue
        headers = [m for m in top_level(slack, s.channel) if s.title in m["text"]]
        assert len(headers) == 1, f"{s.title}: {len(headers)} headers"
        thread = slack.thread(s.channel, headers[0]["ts"])
        lanes = [m for m in thread if m["text"].startswith("What we know")]
        assert len(lanes) == len(s.tokens), f"{s.title}: {len(lanes)} lane cards for {len(s.tokens)} turns"

    # one card per escalation per route (one route: the seniors' channel), summary included
    handoffs = await rows(engine, "SELECT h.id, s.title, h.summary_status FROM session_handoffs h "
                                  "JOIN ai_sessions s ON s.id = h.session_id")
    assert sorted(h.title for h in handoffs) == sorted(s.title for s in traffic.sessions.values() if s.escalated)
    for h in handoffs:
        cards = [m for m in slack.messages(SENIORS)
                 if any(b.get("v", {}).get("handoff_id") == str(h.id) for b in buttons_of(m))]
        assert len(cards) == 1, f"handoff {h.id}: {len(cards)} cards"
        assert h.summary_status == "ready" and "SUMMARY-OK" in json.dumps(cards[0]["blocks"])

    # the direct check: no outbox row was ever posted twice
    keys = Counter(m["metadata"]["event_payload"]["key"] for m in everything
                   if (m.get("metadata") or {}).get("event_type") == "flowpilot_delivery")
    assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    return {"accepted_messages": len(accepted), "escalations": len(handoffs), "slack_messages": len(everything)}


def common_fakes() -> tuple[HoldingSlack, FakeAnthropic]:
    slack = HoldingSlack()
    slack.add_user(ENGINEER, name="erin", real_name="Erin Engineer")
    slack.add_user(NEWBIE, name="nina", real_name="Nina Newbie")
    slack.add_user(ADMIN, name="sam", real_name="Sam Senior")
    slack.add_channel(SENIORS, "escalations")
    return slack, FakeAnthropic(api_key=FAKE_KEY)


async def route_escalations(caller: SlackCaller, base_url: str) -> None:
    sent = await caller.command(base_url, "seniors here", user_id=ADMIN, channel_id=SENIORS,
                                channel_name="escalations")
    assert sent.accepted, sent


# ----------------------------------------------------------------------------- fast variant
async def test_kill_9_mid_flight_loses_no_accepted_event_and_posts_nothing_twice(tmp_path) -> None:
    slack, ai = common_fakes()
    issuer, connector = FakeOpenIdIssuer(), FakeBotConnector(app_id=TEAMS_APP_ID, app_password=TEAMS_PASSWORD)
    async with fresh_database("crash") as url, slack, ai, issuer, connector, aiohttp.ClientSession() as http:
        model = Model(ai, gated=True)
        engine = admin_engine(url)
        both = dict(slack=slack, ai=ai, **teams_env(issuer, connector), **SERVE_EXTRA)
        first = ServeProcess("serve-A", serve_env(url, port=free_port(), **both), tmp_path / "serve-A.log")
        second = ServeProcess("serve-B", serve_env(url, port=free_port(), **both), tmp_path / "serve-B.log")
        traffic = Traffic(SlackCaller(http))
        teams = TeamsCaller(http, issuer, connector, channel="19:c4a5hcrash000000000000000000000@thread.tacv2")
        try:
            await first.start()
            await first.wait_ready()
            a = first.base_url
            await route_escalations(traffic.caller, a)

            # three sessions, each with its first AI turn waiting on the model, and a reply queued
            for k in (1, 2, 3):
                await start_session(traffic, a, k)
            await headers_posted(slack, engine, traffic, (1, 2, 3))
            await model.wait_waiting("chat", 3)
            for k in (1, 2, 3):
                await reply(traffic, a, k, 1)

            # from now on Slack accepts posts but the answers stay on the wire
            slack.hold(lambda method, params: method == "chat.postMessage")
            for k in (1, 2):
                await escalate(traffic, a, k)
            await model.wait_waiting("summary", 2)
            await model.allow_chat(3)  # the first turns finish: their lane cards are posted (held)

            pid = first.pid
            running = f"%:{pid}:%"

            async def mid_flight() -> bool:
                kinds = {r.kind for r in await rows(engine, "SELECT kind FROM jobs WHERE status = 'running' "
                                                            "AND locked_by LIKE :p", p=running)}
                return ({"ai_turn", "escalation_summary"} <= kinds and len(slack.held_posts()) >= 3
                        and model.waiting["chat"] >= 3)

            await wait_until(mid_flight, 20, "turns, summaries and posts in flight in serve-A")
            held_at_kill = [p["ts"] for p in slack.held_posts()]
            # a Teams session too, its first turn waiting on the model when the process dies
            teams_status, _, _ = await teams.post(first.base_url, "new Teams dock flickers msg-10-0")
            assert teams_status == 201
            await model.wait_waiting("chat", 4)

            # A request caught half way through its transaction when the process dies: the test
            # holds the row its de-duplication insert needs, so the server waits inside the core call.
            traffic.sessions[9] = Session(channel="C0CRASH09", title="Printer 9 down msg-9-0")
            body = traffic.caller.command_body(f"new {traffic.sessions[9].title}", user_id=NEWBIE,
                                               channel_id="C0CRASH09")
            trigger = re.search(r"trigger_id=([^&]+)", body).group(1)
            async with engine.connect() as blocker:
                await blocker.execute(text("INSERT INTO inbound_events (platform, workspace_id, event_id) "
                                           "VALUES ('slack', 'T0FPTEAM1', :e)"), dict(e=f"cmd:{unquote(trigger)}"))
                newbie = asyncio.create_task(traffic.caller.post(a, body, FORM_CONTENT_TYPE, "command"))
                await wait_until(lambda: scalar(engine, "SELECT count(*) FROM pg_stat_activity WHERE "
                                                        "datname = current_database() AND wait_event_type = 'Lock'"),
                                 20, "serve-A to wait inside the command's transaction")
                assert not newbie.done(), "the command was acknowledged before it was recorded"
                first.kill()
                await first.wait_exit()
                await blocker.rollback()
            newbie_sent = await newbie
            assert newbie_sent.status is None
            traffic.unaccepted.append((newbie_sent, lambda: traffic.sessions[9].tokens.append("msg-9-0")))

            # Slack keeps sending: a reply to the dead process is not accepted either
            await reply(traffic, a, 3, 2)
            assert traffic.unaccepted[-1][0].status is None

            slack.release()
            await model.open()
            await second.start()
            await second.wait_ready()
            await traffic.redeliver(lambda: [second.base_url])
            await headers_posted(slack, engine, traffic, (9,))
            await quiet(engine, 60)

            figures = await check_nothing_lost_nothing_twice(slack, engine, traffic)
            assert figures["accepted_messages"] == 3 * 2 + 1 + 1 and figures["escalations"] == 2
            assert traffic.sessions[9].tokens == ["msg-9-0"]  # completed by Slack's retry
            assert len(teams.carrying("Reply to msg-10-0.")) == 1  # the Teams turn, taken over by serve-B
            assert not teams.carrying("FlowPilot is thinking")
            # the posts held at the kill were found at Slack by the next process, not posted again
            refs = {r.ts: r.attempts for r in await rows(
                engine, "SELECT message_ref->>'ts' AS ts, max(attempts) AS attempts FROM outbox "
                        "WHERE status = 'delivered' GROUP BY 1")}
            for ts in held_at_kill:
                assert refs.get(ts, 0) >= 2, f"held post {ts} was not re-delivered by serve-B"
            # the turns and summaries cut off by the kill were taken over and run again by serve-B
            taken_over = {r.kind for r in await rows(engine, "SELECT kind FROM jobs WHERE attempts > 1")}
            assert {"ai_turn", "escalation_summary"} <= taken_over, taken_over
        except BaseException:
            print(first.log_tail(), second.log_tail(), sep="\n----\n")
            raise
        finally:
            slack.release()
            await model.open()
            first.kill()
            await second.stop()
            await engine.dispose()


# ----------------------------------------------------------------------------- a job that keeps dying
async def test_a_turn_whose_worker_dies_on_its_last_attempt_is_given_up_out_loud(db, database_url) -> None:
    """Crashes count as attempts (a job that kills its worker must not loop forever), but running
    out of them is a failure like any other: the person is told, the placeholder does not hang."""
    settings = make_settings(FLOWPILOT_JOB_MAX_ATTEMPTS=1, FLOWPILOT_JOB_LEASE_SECONDS=1)
    async with running(database_url, settings=settings, start_workers=False) as h:
        started = await h.copilot.command(console_inbound(), "new Printer down msg-1-0")
        assert started.ok, started.error
        async with h.comps.db.no_tenant() as conn:  # a worker claims the turn, then dies with it
            [doomed] = await jobq.claim(conn, "doomed-worker", lease_s=0.2, kinds=[TURN_JOB])
        await h.comps.runtime.start()
        told = await h.console.wait_for(lambda: [t for t in h.console.texts() if AI_UNAVAILABLE[:40] in t])
        assert len(told) == 1
        assert not [t for t in h.console.texts() if THINKING in t]
        async with h.comps.db.no_tenant() as conn:
            row = (await conn.execute(text("SELECT status, last_error FROM jobs WHERE id = :i"),
                                      dict(i=doomed.id))).one()
        assert row.status == "failed" and "[lease expired]" in row.last_error
        assert h.fake_ai.requests == []  # it was never run again


# ----------------------------------------------------------------------------- long variant
@pytest.mark.long
async def test_repeated_kill_9_of_either_of_two_processes_under_load(tmp_path) -> None:
    rng = random.Random(20261122)
    sessions, rounds = 8, 8
    slack, ai = common_fakes()
    slack.answer_delay = (0.0, 0.25)  # Slack answers a post a little after making it
    async with fresh_database("crash_long") as url, slack, ai, aiohttp.ClientSession() as http:
        Model(ai, delay=(0.3, 2.5))
        engine = admin_engine(url)
        ports = [free_port(), free_port()]
        generation = [0, 0]

        def new_process(i: int) -> ServeProcess:
            generation[i] += 1
            # more attempts than kills: every cut-off turn must still get its real answer here
            return ServeProcess(f"serve-{i}-{generation[i]}", serve_env(url, port=ports[i], slack=slack, ai=ai,
                                                                       FLOWPILOT_JOB_MAX_ATTEMPTS=str(rounds + 4),
                                                                       **SERVE_EXTRA),
                                tmp_path / f"serve-{i}-{generation[i]}.log")

        procs = [new_process(0), new_process(1)]
        traffic = Traffic(SlackCaller(http))
        kills = 0
        try:
            for p in procs:
                await p.start()
            await asyncio.gather(*(p.wait_ready() for p in procs))

            def live() -> list[str]:
                return [p.base_url for p in procs if p.alive]

            await route_escalations(traffic.caller, live()[0])
            for k in range(1, sessions + 1):
                await start_session(traffic, rng.choice(live()), k)
            await traffic.redeliver(live)
            await headers_posted(slack, engine, traffic, range(1, sessions + 1))

            restarts: list[asyncio.Task] = []
            for n in range(1, rounds + 1):
                await asyncio.gather(*restarts)  # the last victim is back before this round's traffic
                restarts.clear()
                for k in range(1, sessions + 1):
                    s = traffic.sessions[k]
                    if not s.escalated:
                        await reply(traffic, rng.choice(live()), k, n)
                if n in (3, 6):
                    for k in rng.sample([k for k, s in traffic.sessions.items() if not s.escalated], 2):
                        await escalate(traffic, rng.choice(live()), k)
                await asyncio.sleep(rng.uniform(0.1, 1.5))  # let work get under way, then cut it (a pace)
                victim = rng.randrange(2)
                # a few requests are on the wire when the process dies: those cut off get no 200
                # and are sent again (to the survivor) by Traffic.redeliver, as Slack would
                targets = [p.base_url for p in procs]
                burst = [asyncio.create_task(reply(traffic, rng.choice(targets), k, 100 + n))
                         for k in rng.sample([k for k, s in traffic.sessions.items() if not s.escalated], 3)]
                await asyncio.sleep(0)  # let them leave
                procs[victim].kill()
                await asyncio.gather(*burst)
                await procs[victim].wait_exit()
                kills += 1
                procs[victim] = new_process(victim)
                await procs[victim].start()
                restarts.append(asyncio.create_task(procs[victim].wait_ready()))
                await traffic.redeliver(live)
            await asyncio.gather(*restarts)
            await traffic.redeliver(live)
            await quiet(engine, 180)
            figures = await check_nothing_lost_nothing_twice(slack, engine, traffic)
            retried = await scalar(engine, "SELECT count(*) FROM jobs WHERE attempts > 1")
            redelivered = await scalar(engine, "SELECT count(*) FROM outbox WHERE attempts > 1")
            print(f"\nLONG crash run: {kills} kills, {figures}, jobs taken over: {retried}, "
                  f"deliveries retried: {redelivered}, requests re-sent: "
                  f"{sum(1 for s in traffic.caller.sent if s.status is None)}")
        except BaseException:
            for p in procs:
                print(p.name, p.log_tail(2000), sep="\n")
            raise
        finally:
            for p in procs:
                await p.stop()
            await engine.dispose()
