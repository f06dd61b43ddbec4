"""Promise 1 — exactly-once effects under duplicate delivery.

Slack retries events (same event_id, X-Slack-Retry-Num), people double-click buttons (the same
interaction payload twice) and Teams redelivers slow activities (same activity id). Through the
real server, bolt, botbuilder, workers and Postgres, a third of all inbound events arrive two or
three times, concurrently, and every event still has exactly one effect: one AI turn (one model
call, one reply message), one fact per note, one outcome record, one escalation and one claim —
counted in the database and at the fake Slack and Bot Connector."""
from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.fakes.slack_signing import (
    DEFAULT_TEAM_ID, FORM_CONTENT_TYPE, app_mention_event, block_action_body, message_event, new_event_id, new_message_ts,
    new_trigger_id,
)
from tests.integration.slack_fixtures import button, has_button
from tests.reliability.traffic import Delivery, Traffic
from tests.reliability.world import World, card_of, eventually, execute_action, new_teams_id, world

log = logging.getLogger(__name__)

SLACK_CHANNELS = ("C0RELY0001", "C0RELY0002", "C0RELY0003", "C0RELY0004")
SLACK_SENIORS = "C0SENIORS1"
SLACK_ADMIN = "U0SENIOR01"
TEAMS_CHANNEL = "19:reliabilitysessions0000000000@thread.tacv2"
TEAMS_SENIORS = "19:reliabilityseniors000000000000@thread.tacv2"
TEAMS_ADMIN = ("29:1SeniorAdmin", "6f1a8a9e-0000-4000-8000-0000000admin", "Sam Senior")


@dataclass
class Size:
    slack_sessions: int
    teams_sessions: int
    turns: int = 2  # per session, after the first
    notes: int = 3  # per session
    concurrency: int = 24
    budget_s: float = 30.0  # for each wait on the system

    @property
    def per_session(self) -> int:  # mention, turns, notes, applied, worked, escalate, claim
        return 1 + self.turns + self.notes + 4


FAST = Size(slack_sessions=10, teams_sessions=5)
LONG = Size(slack_sessions=70, teams_sessions=30, concurrency=32, budget_s=180.0)


@dataclass
class SlackSession:
    n: int
    user: str
    channel: str
    thread: str
    tokens: list[str] = field(default_factory=list)  # one per AI turn
    notes: list[str] = field(default_factory=list)

    @property
    def title_token(self) -> str:
        return self.tokens[0]


@dataclass
class TeamsSession:
    n: int
    user: tuple[str, str, str]  # channel account id, aadObjectId, name
    root: str
    tokens: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    invoke_answers: dict[str, list] = field(default_factory=dict)  # action → answers to every copy

    @property
    def title_token(self) -> str:
        return self.tokens[0]

    @property
    def thread(self) -> str:
        return f"{TEAMS_CHANNEL};messageid={self.root}"


# --------------------------------------------------------------------------- Slack deliveries
def slack_event(w: World, event: dict, kind: str, team: str = DEFAULT_TEAM_ID) -> Delivery:
    event_id = new_event_id()

    async def send(copy: int) -> int:  # a retry is the same event_id with X-Slack-Retry-Num
        return (await w.slack.event(event, event_id=event_id, retry_num=copy or None, team_id=team)).status

    return Delivery(kind, send)


def slack_click(w: World, message: dict, action: str, user: str, kind: str) -> Delivery:
    element = button(message, action)
    body = block_action_body(action_id=element["action_id"], value=element["value"],
                             button_text=element["text"]["text"], message=message, channel_id=message["channel"],
                             user_id=user, trigger_id=new_trigger_id())

    async def send(copy: int) -> int:  # a double click: the very same payload again
        return (await w.slack.post_signed(body, FORM_CONTENT_TYPE)).status

    return Delivery(kind, send)


def slack_in_thread(session: SlackSession, text: str) -> dict:
    return message_event(text=text, thread_ts=session.thread, channel=session.channel, user=session.user)


def slack_mention(session: SlackSession, text: str, *, top_level: bool = False) -> dict:
    return app_mention_event(text=text, channel=session.channel, user=session.user,
                             ts=session.thread if top_level else None,
                             thread_ts=None if top_level else session.thread)


# --------------------------------------------------------------------------- Teams deliveries
def teams_activity(w: World, activity: dict, kind: str, answers: list | None = None) -> Delivery:
    async def send(copy: int) -> int:  # a redelivery: the same activity id, a fresh channel token
        status, body = await w.teams.post(activity)
        if answers is not None:
            answers.append(body)
        return status

    return Delivery(kind, send)


def teams_message(w: World, session: TeamsSession, text: str, *, root: bool = False) -> dict:
    cid, aad, name = session.user
    return w.teams.message(text, channel=TEAMS_CHANNEL, message_id=session.root if root else new_teams_id(),
                           thread_root=None if root else session.root, user=cid, aad=aad, name=name)


def teams_card(w: World, session: TeamsSession, verb: str):
    for activity in w.connector.activities(session.thread):
        if execute_action(card_of(activity.body), verb) is not None:
            return activity
    return None


def teams_click(w: World, session: TeamsSession, verb: str, kind: str, *, card=None, channel: str = TEAMS_CHANNEL,
                thread_root: str | None = None, user: tuple[str, str, str] | None = None) -> Delivery:
    card = card or teams_card(w, session, verb)
    assert card is not None, f"no {verb} card in Teams session {session.n}"
    cid, aad, name = user or session.user
    answers = session.invoke_answers.setdefault(verb, [])
    activity = w.teams.invoke(execute_action(card_of(card.body), verb), card.id, thread_root or session.root,
                              channel=channel, user=cid, aad=aad, name=name)
    return teams_activity(w, activity, kind, answers)


# --------------------------------------------------------------------------- the run
async def run_phase(w: World, traffic: Traffic, deliveries: list[Delivery], budget: float) -> None:
    """Send one phase and wait until every copy reached the core and the work it caused is done."""
    before = len(w.copilot.calls)
    sent = await traffic.run(deliveries)
    await w.copilot.wait_calls(before + sent, timeout=budget)
    await w.settle(budget)


async def setup_routes(w: World) -> None:
    fake = w.fake_slack
    fake.add_channel(SLACK_SENIORS, "escalations")
    fake.add_user(SLACK_ADMIN, name="sam", real_name="Sam Senior")
    for channel in SLACK_CHANNELS:
        fake.add_channel(channel, f"support-{channel[-1]}")
    assert (await w.slack.command("seniors here", user_id=SLACK_ADMIN, channel_id=SLACK_SENIORS,
                                  channel_name="escalations")).status == 200
    cid, aad, name = TEAMS_ADMIN
    status, _ = await w.teams.post(w.teams.message("seniors here", channel=TEAMS_SENIORS, user=cid, aad=aad,
                                                   name=name))
    assert status == 201
    await w.copilot.wait_calls(2)
    assert await w.scalar("SELECT count(*) FROM escalation_routes") == 2


async def exactly_once(database_url: str, size: Size) -> dict:
    started = time.monotonic()
    rng = random.Random(20240901)
    traffic = Traffic(rng, concurrency=size.concurrency)
    env = dict(FLOWPILOT_ADMINS=f"{SLACK_ADMIN},{TEAMS_ADMIN[1]}", FLOWPILOT_WORKERS=4, FLOWPILOT_DB_POOL_SIZE=20)
    async with world(database_url, **env) as w:
        await setup_routes(w)
        setup_events = len(w.copilot.calls)
        slack = [SlackSession(n, f"U0ENG{n:05d}", SLACK_CHANNELS[n % len(SLACK_CHANNELS)], new_message_ts())
                 for n in range(size.slack_sessions)]
        teams = [TeamsSession(n, (f"29:1Eng{n:05d}", f"6f1a8a9e-0000-4000-8000-{n:012d}", f"Eng {n}"),
                              new_teams_id()) for n in range(size.teams_sessions)]

        # 1. Sessions: a mention of the bot with the problem starts a session in that thread.
        phase: list[Delivery] = []
        for s in slack:
            s.tokens.append(f"tok-S{s.n}-T0")
            phase.append(slack_event(w, slack_mention(s, f"{s.tokens[0]} printer queue stuck", top_level=True),
                                     "session"))
        for t in teams:
            t.tokens.append(f"tok-M{t.n}-T0")
            phase.append(teams_activity(w, teams_message(w, t, f"{t.tokens[0]} VPN drops", root=True), "session"))
        await run_phase(w, traffic, phase, size.budget_s)

        # 2. Turns, notes and "I applied it" on the fix card, all at once.
        phase = []
        for s in slack:
            fix = next(m for m in w.fake_slack.thread(s.channel, s.thread) if has_button(m, "fix_applied"))
            phase.append(slack_click(w, fix, "fix_applied", s.user, "outcome"))
            for k in range(1, size.turns + 1):
                s.tokens.append(f"tok-S{s.n}-T{k}")
                phase.append(slack_event(w, slack_in_thread(s, f"{s.tokens[-1]} it happens on floor {k}"), "turn"))
            for k in range(size.notes):
                s.notes.append(f"tok-S{s.n}-N{k}")
                phase.append(slack_event(w, slack_mention(s, f"note {s.notes[-1]} spooler restarted {k}x"), "note"))
        for t in teams:
            phase.append(teams_click(w, t, "fix_applied", "outcome"))
            for k in range(1, size.turns + 1):
                t.tokens.append(f"tok-M{t.n}-T{k}")
                phase.append(teams_activity(w, teams_message(w, t, f"{t.tokens[-1]} only on 5 GHz {k}"), "turn"))
            for k in range(size.notes):
                t.notes.append(f"tok-M{t.n}-N{k}")
                phase.append(teams_activity(w, teams_message(w, t, f"note {t.notes[-1]} wired is fine {k}"), "note"))
        await run_phase(w, traffic, phase, size.budget_s)

        # 3. "It worked" on the (now verifying) fix card.
        phase = []
        for s in slack:
            fix = next(m for m in w.fake_slack.thread(s.channel, s.thread) if has_button(m, "fix_worked"))
            phase.append(slack_click(w, fix, "fix_worked", s.user, "outcome"))
        for t in teams:
            phase.append(teams_click(w, t, "fix_worked", "outcome"))
        await run_phase(w, traffic, phase, size.budget_s)

        # 4. Escalate, by command in the session thread.
        phase = [slack_event(w, slack_mention(s, f"escalate tok-S{s.n}-E customer is waiting"), "escalate")
                 for s in slack]
        phase += [teams_activity(w, teams_message(w, t, f"escalate tok-M{t.n}-E customer is waiting"), "escalate")
                  for t in teams]
        await run_phase(w, traffic, phase, size.budget_s)

        # 5. Pick up each escalation card in the seniors' channels.
        phase = []
        for s in slack:
            card = next(m for m in w.fake_slack.messages(SLACK_SENIORS)
                        if s.title_token + " " in m["text"] and has_button(m, "claim"))
            phase.append(slack_click(w, card, "claim", SLACK_ADMIN, "claim"))
        for t in teams:
            card = next(a for a in w.connector.activities() if a.conversation_id.startswith(TEAMS_SENIORS)
                        and t.title_token + " " in json.dumps(a.body) and execute_action(card_of(a.body), "claim"))
            phase.append(teams_click(w, t, "claim", "claim", card=card, channel=TEAMS_SENIORS,
                                     thread_root=card.id, user=TEAMS_ADMIN))
        await run_phase(w, traffic, phase, size.budget_s)

        figures = await check_effects(w, size, slack, teams, traffic, setup_events)
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


# --------------------------------------------------------------------------- the checks
async def check_effects(w: World, size: Size, slack: list[SlackSession], teams: list[TeamsSession],
                        traffic: Traffic, setup_events: int) -> dict:
    sessions = len(slack) + len(teams)
    all_turns = [tok for s in slack + teams for tok in s.tokens]
    all_notes = [tok for s in slack + teams for tok in s.notes]
    assert traffic.unique == sessions * size.per_session
    assert set(traffic.statuses) <= {200, 201}, traffic.statuses

    # In the database: one row per effect, never one per delivery.
    assert await w.scalar("SELECT count(*) FROM inbound_events") == traffic.unique + setup_events
    assert await w.scalar("SELECT count(*) FROM ai_sessions") == sessions
    assert await w.scalar("SELECT count(*) FROM session_messages WHERE role = 'user'") == len(all_turns)
    assert await w.scalar("SELECT count(*) FROM session_messages WHERE role = 'assistant'") == len(all_turns)
    assert await w.scalar("SELECT count(*) FROM jobs WHERE kind = 'ai_turn' AND status = 'done'") == len(all_turns)
    assert w.model.turns == Counter({tok: 1 for tok in all_turns}), "one model call per turn"
    facts = [r.text for r in await w.rows("SELECT text FROM session_facts WHERE source_type = 'user_note'")]
    assert Counter(f.split()[0] for f in facts) == Counter({tok: 1 for tok in all_notes}), "one fact per note"
    fixes = await w.rows("SELECT session_id, status, applied_at FROM session_suggested_fixes")
    assert len(fixes) == sessions and {(f.status, f.applied_at is not None) for f in fixes} == {
        ("applied_success", True)}
    handoffs = await w.rows("SELECT session_id, claimed_by FROM session_handoffs")
    assert len(handoffs) == sessions == len({h.session_id for h in handoffs})
    assert all(h.claimed_by is not None for h in handoffs)
    assert await w.scalar("SELECT count(*) FROM ai_sessions WHERE status = 'active' "
                          "AND escalated_to_id IS NOT NULL") == sessions
    people = 2 + sessions  # two admins, one engineer per session
    assert await w.scalar("SELECT count(*) FROM people") == people

    # At the platforms: one visible result per effect.
    await check_slack(w, slack)
    await check_teams(w, teams)
    return {"unique events": traffic.unique, "duplicated events": traffic.duplicated,
            "requests sent": traffic.sent, "by kind": dict(traffic.kinds), "turns": len(all_turns),
            "notes": len(all_notes), "sessions": sessions}


async def check_slack(w: World, slack: list[SlackSession]) -> None:
    fake = w.fake_slack
    # Notices are sent right after each request's ack: wait for all of them, then count exactly.
    expected = {s.user: len(s.notes) + 4 for s in slack}  # started, notes, applied, recorded, escalated
    expected[SLACK_ADMIN] = len(slack) + 1  # "now receives escalations", then one pick-up each
    await fake.wait_for(lambda: all(len(fake.ephemerals(u)) >= n for u, n in expected.items()), 30)
    assert {u: len(fake.ephemerals(u)) for u in expected} == expected, "a duplicate was answered twice"
    messages = fake.messages()
    for s in slack:
        for tok in s.tokens:
            replies = [m for m in messages if f"Reply for {tok}." in m["text"]]
            assert len(replies) == 1 and replies[0]["thread_ts"] == s.thread, (tok, replies)
        mine = [e["text"] for e in fake.ephemerals(s.user)]
        told = Counter(text.split(".")[0] for text in mine)
        assert told["Added to What we know"] == len(s.notes), mine
        assert told["Marked as applied — tell FlowPilot how it goes"] == 1, mine
        assert told["Recorded: applied success"] == 1, mine
        assert told["Escalated"] == 1, mine
        assert not [t for t in mine if t.startswith(":")], f"an error or a refusal was shown: {mine}"
        cards = [m for m in fake.messages(SLACK_SENIORS) if s.title_token + " " in m["text"]]
        assert len(cards) == 1 and "Claimed by" in json.dumps(cards[0]["blocks"]), cards
    assert not [m for m in messages if "FlowPilot is thinking" in m["text"]], "a reply never replaced its placeholder"
    admin = [e["text"] for e in fake.ephemerals(SLACK_ADMIN)]
    assert sum(t.startswith("You picked it up") for t in admin) == len(slack), admin
    assert not [t for t in admin if "already yours" in t or t.startswith(":")], admin


def notices(activities: list, thread: str) -> list:
    return [a for a in activities if a.conversation_id == thread
            and a.body.get("summary", "").startswith("Added to What we know")]


async def check_teams(w: World, teams: list[TeamsSession]) -> None:
    await w.connector.wait_for(lambda c: all(len(notices(c.activities(), t.thread)) >= len(t.notes) for t in teams), 30)
    activities = [a for a in w.connector.activities() if a.body.get("type") != "typing"]
    for t in teams:
        shown = [a for a in activities if a.conversation_id == t.thread]
        for tok in t.tokens:
            replies = [a for a in shown if f"Reply for {tok}." in json.dumps(a.body)]
            assert len(replies) == 1, (tok, [r.body.get("summary") for r in replies])
        assert len(notices(shown, t.thread)) == len(t.notes), [a.body.get("summary") for a in shown]
        for verb, answers in t.invoke_answers.items():
            assert answers and all(a == answers[0] for a in answers), f"{verb}: a redelivery answered differently"
            assert "⚠️" not in json.dumps(answers[0]), (verb, answers[0])
        cards = [a for a in w.connector.activities() if a.conversation_id.startswith(TEAMS_SENIORS)
                 and a.kind == "create" and t.title_token + " " in json.dumps(a.versions[0])]
        assert len(cards) == 1, [c.body.get("summary") for c in cards]
    errors = [a for a in activities if "⚠️" in json.dumps(a.body, ensure_ascii=False)]
    assert not errors, [a.body.get("summary") for a in errors]


# --------------------------------------------------------------------------- tests
async def test_duplicated_deliveries_have_exactly_one_effect_each(db, database_url) -> None:
    figures = await exactly_once(database_url, FAST)
    log.warning("exactly-once (fast): %s", figures)
    assert figures["unique events"] == 150


@pytest.mark.long
async def test_duplicated_deliveries_have_exactly_one_effect_each_long(db, database_url) -> None:
    figures = await exactly_once(database_url, LONG)
    log.warning("exactly-once (long): %s", figures)
    print("\nexactly-once (long):", json.dumps(figures))
    assert figures["unique events"] == 1000



async def test_concurrent_first_contacts_create_one_account_and_one_person(db, database_url) -> None:
    """A new workspace's first user sends several messages at once (some retried): one account per
    workspace, one person per user, and every distinct message still has its effect."""
    traffic = Traffic(random.Random(5), concurrency=24)
    async with world(database_url) as w:
        team, user = "T0FRESHMSP", "U0FIRSTONE"
        teams_user = ("29:1FirstOne", "6f1a8a9e-0000-4000-8000-00000f1r5t01")
        deliveries = [slack_event(w, app_mention_event(text=f"tok-F{n}-T0 new problem {n}", ts=new_message_ts(),
                                                       user=user, team=team), "session", team=team)
                      for n in range(12)]
        deliveries += [teams_activity(w, w.teams.message(f"tok-G{n}-T0 VPN drops {n}", channel=TEAMS_CHANNEL,
                                                         user=teams_user[0], aad=teams_user[1]), "session")
                       for n in range(12)]
        sent = await traffic.run(deliveries)
        await w.copilot.wait_calls(sent, timeout=30)
        await w.settle(30)
        assert await w.counts(("accounts", "workspaces", "people", "identities", "ai_sessions")) == {
            "accounts": 2, "workspaces": 2, "people": 2, "identities": 2, "ai_sessions": 24}
