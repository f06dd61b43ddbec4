"""Promise 2 — platform outages lose nothing and duplicate nothing.

While people keep working, the fake Slack Web API and Bot Connector answer 429 (with Retry-After)
or 5xx on 30% of calls and are completely down for a window in the middle (Slack refuses
connections, the Bot Connector answers 503). Afterwards every card and message the outbox holds
is delivered exactly once, each edit lands on a message that was posted before it, each thread
shows its messages in outbox order and the outbox is empty. When the retry budget runs out, the
rows end `failed`, visibly: counted in flowpilot_outbox_total{outcome="failed"} and logged as
errors."""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.slack.blocks import render
from adapters.teams.cards import summary_of
from bot import metrics
from core.views import load_view
from tests.fakes.slack_signing import app_mention_event, message_event, new_event_id, new_message_ts
from tests.reliability.traffic import Delivery, Traffic
from tests.reliability.world import World, new_teams_id, world

log = logging.getLogger(__name__)

SLACK_CHANNELS = ("C0OUTAGE01", "C0OUTAGE02", "C0OUTAGE03")
TEAMS_CHANNEL = "19:outagesessions00000000000000000@thread.tacv2"
FAILING = dict(FLOWPILOT_BACKOFF_BASE_SECONDS=0.05, FLOWPILOT_BACKOFF_CAP_SECONDS=0.5, FLOWPILOT_WORKERS=4,
               FLOWPILOT_POLL_SECONDS=0.2, FLOWPILOT_DB_POOL_SIZE=20)


@dataclass
class Size:
    slack_sessions: int
    teams_sessions: int
    waves: int  # before, during and after the outage: this many rounds of messages each
    outage_s: float
    budget_s: float


FAST = Size(slack_sessions=6, teams_sessions=3, waves=1, outage_s=3.0, budget_s=40.0)
LONG = Size(slack_sessions=30, teams_sessions=12, waves=3, outage_s=30.0, budget_s=240.0)


@dataclass
class Session:
    platform: str
    n: int
    user: str
    channel: str
    thread: str  # Slack: the mention's ts; Teams: the root message id
    turns: int = 0


# --------------------------------------------------------------------------- traffic
def slack_send(w: World, event: dict) -> Delivery:
    event_id = new_event_id()

    async def send(copy: int) -> int:
        return (await w.slack.event(event, event_id=event_id)).status

    return Delivery("slack", send)


def teams_send(w: World, activity: dict) -> Delivery:
    async def send(copy: int) -> int:
        return (await w.teams.post(activity))[0]

    return Delivery("teams", send)


def start(w: World, s: Session) -> Delivery:
    text = f"tok-{s.platform[0].upper()}{s.n}-T0 printer queue stuck"
    if s.platform == "slack":
        return slack_send(w, app_mention_event(text=text, channel=s.channel, user=s.user, ts=s.thread))
    return teams_send(w, w.teams.message(text, channel=TEAMS_CHANNEL, message_id=s.thread, user=s.user,
                                         aad=s.user, name=f"Eng {s.n}"))


def work(w: World, s: Session) -> list[Delivery]:
    """One round in a session: a turn, and in Slack also a note (its lane card is edited)."""
    s.turns += 1
    text = f"tok-{s.platform[0].upper()}{s.n}-T{s.turns} it happens again"
    if s.platform == "teams":
        return [teams_send(w, w.teams.message(text, channel=TEAMS_CHANNEL, thread_root=s.thread, user=s.user,
                                              aad=s.user, name=f"Eng {s.n}"))]
    note = app_mention_event(text=f"note seen at round {s.turns}", channel=s.channel, user=s.user, thread_ts=s.thread)
    return [slack_send(w, message_event(text=text, thread_ts=s.thread, channel=s.channel, user=s.user)),
            slack_send(w, note)]


async def send_wave(w: World, traffic: Traffic, sessions: list[Session]) -> int:
    before = len(w.copilot.calls)
    sent = await traffic.run([d for s in sessions for d in work(w, s)])
    await w.copilot.wait_calls(before + sent, timeout=30)  # committed: its outbox rows exist
    return sent


# --------------------------------------------------------------------------- the run
async def outage_run(database_url: str, size: Size) -> dict[str, Any]:
    started = time.monotonic()
    traffic = Traffic(random.Random(7), concurrency=16, duplicates=False)
    async with world(database_url, FLOWPILOT_OUTBOX_MAX_ATTEMPTS=100_000, **FAILING) as w:
        for channel in SLACK_CHANNELS:
            w.fake_slack.add_channel(channel, channel.lower())
        sessions = [Session("slack", n, f"U0OUT{n:05d}", SLACK_CHANNELS[n % len(SLACK_CHANNELS)], new_message_ts())
                    for n in range(size.slack_sessions)]
        sessions += [Session("teams", n, f"6f1a8a9e-0000-4000-8000-{n:012d}", TEAMS_CHANNEL, new_teams_id())
                     for n in range(size.teams_sessions)]
        await traffic.run([start(w, s) for s in sessions])
        await w.copilot.wait_calls(len(sessions), timeout=30)
        await w.settle(size.budget_s)
        threads = [f"{TEAMS_CHANNEL};messageid={s.thread}" for s in sessions if s.platform == "teams"]
        await w.connector.wait_for(lambda c: all(any("Started a FlowPilot" in json.dumps(a.body)
                                                     for a in c.activities(t)) for t in threads), 15)
        quiet_teams = {a.id for a in w.connector.activities()}  # the handler's own notices (not the outbox's)

        w.fake_slack.fail_rate(0.3, seed=11, retry_after=1)
        w.connector.fail_rate(0.3, seed=12, retry_after=1)
        for _ in range(size.waves):
            await send_wave(w, traffic, sessions)
        await w.fake_slack.down("refuse")
        w.connector.down()
        outage_started = time.monotonic()
        for _ in range(size.waves):
            await send_wave(w, traffic, sessions)
        pending_in_outage = (await w.busy())["outbox"]
        await asyncio.sleep(max(0.0, size.outage_s - (time.monotonic() - outage_started)))  # the outage lasts
        outage = time.monotonic() - outage_started
        await w.fake_slack.up()
        w.connector.up()
        for _ in range(size.waves):
            await send_wave(w, traffic, sessions)
        await w.settle(size.budget_s)
        drained = time.monotonic() - started

        rows = await w.rows("SELECT id, platform, op, card_key, lane_key, view, message_ref, status, attempts "
                            "FROM outbox ORDER BY id")
        assert pending_in_outage > 0, "the outage should have held messages back"
        assert Counter(r.status for r in rows) == Counter({"delivered": len(rows)}), "every row delivered"
        slack_figures = check_slack_delivery(w, [r for r in rows if r.platform == "slack"])
        teams_figures = check_teams_delivery(w, [r for r in rows if r.platform == "teams"], quiet_teams)
        injected_slack = Counter(c.status for c in w.fake_slack.calls if c.status >= 400)
        figures = {
            "inbound events": traffic.sent, "outbox rows": len(rows),
            "delivery attempts": sum(r.attempts for r in rows),
            "retried rows": sum(r.attempts > 1 for r in rows),
            "injected slack failures": dict(injected_slack),
            "injected teams failures": dict(w.connector.injected),
            "teams 503 during outage": sum(c.status == 503 for c in w.connector.calls) - w.connector.injected[503],
            "outage seconds": round(outage, 1), "held back during outage": pending_in_outage,
            "seconds to drain": round(drained, 1), "messages lost": 0, "duplicate posts": 0,
            **slack_figures, **teams_figures,
        }
        assert injected_slack and w.connector.injected, "faults were injected on both platforms"
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


# --------------------------------------------------------------------------- the checks
def first_rows(rows: list[Any]) -> set[int]:
    """Rows that post a message: plain posts, and the first upsert of each card key."""
    seen: set[str] = set()
    posting = set()
    for r in rows:
        if r.card_key is None or r.op == "post" or r.card_key not in seen:
            posting.add(r.id)
        if r.card_key is not None:
            seen.add(r.card_key)
    return posting


def check_slack_delivery(w: World, rows: list[Any]) -> dict[str, int]:
    """Map every delivered row to the one successful Web API call that delivered it."""
    calls = [(i, c) for i, c in enumerate(w.fake_slack.calls)
             if c.ok and c.method in ("chat.postMessage", "chat.update") and c.params.get("channel") in SLACK_CHANNELS]
    posts = {c.response["ts"]: i for i, c in calls if c.method == "chat.postMessage"}
    updates: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, c in calls:
        if c.method == "chat.update":
            assert c.params["ts"] in posts and posts[c.params["ts"]] < i, "an edit overtook the post it edits"
            updates[c.params["ts"]].append((i, c.params.get("text")))
    posting = first_rows(rows)
    delivered_by: dict[int, int] = {}
    ts_of_card: dict[str, str] = {}
    for r in rows:
        ts = r.message_ref["ts"]
        if r.id in posting:
            assert ts in posts, f"row {r.id} says it posted {ts}, Slack has no such post"
            delivered_by[r.id] = posts.pop(ts)
        else:
            assert ts_of_card[r.card_key] == ts, f"row {r.id} edited another message than its card's"
            assert updates[ts], f"row {r.id} ({r.card_key}) was never applied"
            index, text = updates[ts].pop(0)
            assert text == render(load_view(r.view)).text, f"row {r.id}: edits applied out of order"
            delivered_by[r.id] = index
        if r.card_key:
            ts_of_card.setdefault(r.card_key, ts)
    assert not posts, f"{len(posts)} message(s) posted twice or by no row"
    assert not any(updates.values()), "edits no row asked for"
    check_lane_order(rows, delivered_by)
    return {"slack posts": len(posting), "slack edits": len(rows) - len(posting)}


def check_teams_delivery(w: World, rows: list[Any], quiet: set[str]) -> dict[str, int]:
    posting = first_rows(rows)
    versions: dict[str, list[dict]] = {}
    delivered_by: dict[int, int] = {}
    for r in rows:
        activity_id = r.message_ref["activity_id"]
        activity = w.connector.activity(activity_id)
        assert activity is not None, f"row {r.id} says it posted {activity_id}, the connector has no such activity"
        if r.id in posting:
            versions[activity_id] = list(activity.versions)
            delivered_by[r.id] = int(activity_id)
        shown = versions[activity_id].pop(0)
        assert shown.get("summary") == summary_of(load_view(r.view)), f"row {r.id}: out of order or lost"
    assert not any(versions.values()), "edits no row asked for"
    ours = {r.message_ref["activity_id"] for r in rows}
    threads = {r.message_ref["conversation_id"] for r in rows}
    extra = [a for a in w.connector.activities() if a.conversation_id in threads and a.id not in ours
             and a.id not in quiet and a.body.get("type") != "typing"]
    assert not extra, f"posted twice or by no row: {[a.body.get('summary') for a in extra]}"
    assert not [c for c in w.connector.calls if c.status == 404], "an edit reached Teams before its post"
    check_lane_order([r for r in rows if r.id in posting], delivered_by)
    return {"teams posts": len(posting), "teams edits": len(rows) - len(posting)}


def check_lane_order(rows: list[Any], delivered_by: dict[int, int]) -> None:
    """Within a thread (outbox lane) the platform saw the rows in outbox id order."""
    by_lane: dict[str, list[int]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r.id):
        if r.id in delivered_by:
            by_lane[r.lane_key].append(delivered_by[r.id])
    for lane, order in by_lane.items():
        assert order == sorted(order), f"thread {lane} shows its messages out of order"


# --------------------------------------------------------------------------- budget exhausted
def failed_count(platform: str) -> float:
    return metrics.REGISTRY.get_sample_value("flowpilot_outbox_total", {"platform": platform, "outcome": "failed"}) or 0


async def scraped_failures(w: World) -> dict[str, float]:
    body = await (await w.http.get("/metrics")).text()
    return {s.labels["platform"]: s.value for family in text_string_to_metric_families(body)
            for s in family.samples if s.name == "flowpilot_outbox_total" and s.labels.get("outcome") == "failed"}


async def test_messages_survive_rate_limits_errors_and_an_outage_exactly_once(db, database_url) -> None:
    figures = await outage_run(database_url, FAST)
    log.warning("outage (fast): %s", figures)
    assert figures["messages lost"] == 0


@pytest.mark.long
async def test_messages_survive_rate_limits_errors_and_an_outage_exactly_once_long(db, database_url) -> None:
    figures = await outage_run(database_url, LONG)
    print("\noutage (long):", json.dumps(figures))
    assert figures["outage seconds"] >= 30


async def test_a_permanent_outage_ends_in_failed_rows_counted_and_logged(db, database_url, caplog) -> None:
    caplog.set_level(logging.INFO, logger="bot.workers")
    async with world(database_url, FLOWPILOT_OUTBOX_MAX_ATTEMPTS=2, **FAILING) as w:
        assert (await w.slack.command("help")).status == 200  # bolt has verified its token before the outage
        await w.fake_slack.wait_for(lambda: w.fake_slack.ephemerals())
        before = {p: failed_count(p) for p in ("slack", "teams")}
        await w.fake_slack.down("refuse")
        w.connector.down()

        await w.slack.mention("tok-X1-T0 printer queue stuck", ts=new_message_ts())
        await w.teams.post(w.teams.message("tok-Y1-T0 VPN drops", channel=TEAMS_CHANNEL))
        await w.copilot.wait_calls(3, timeout=10)
        await w.settle(30)

        rows = await w.rows("SELECT id, platform, status, attempts, last_error FROM outbox ORDER BY id")
        assert {r.platform for r in rows} == {"slack", "teams"}
        assert [(r.status, r.attempts) for r in rows] == [("failed", 2)] * len(rows), "nothing left pending"
        assert all(r.last_error for r in rows)
        for platform in ("slack", "teams"):
            failed = sum(r.platform == platform for r in rows)
            assert failed_count(platform) - before[platform] == failed
            assert (await scraped_failures(w))[platform] >= failed
        errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.getMessage() == "delivery failed"]
        assert sorted(r.outbox_id for r in errors) == [r.id for r in rows]
        assert {r.status for r in errors} == {"failed"}
