"""Escalation and claim end to end through the core (DOMAIN §6, §11.2, §13.7, §13.11, §13.24):
senior routes, the one escalation path with the fix intercept, the AI summary that never holds
the card back, pickup with the handoff context card, the queue and the metrics (command and
/metrics).

One account owns a console workspace (where the engineers work), a Slack workspace and a Teams
tenant. Until the Slack and Teams adapters land, recording senders registered under the
platform names "slack" and "teams" stand in for them: they keep every message, its edits and
each view the message showed."""
from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.console.sender import ConsoleSender
from bot import metrics
from bot.app import metrics_view
from bot.escalation_metrics import EscalationMetrics
from core.commands import Actor, Inbound, Where
from core.errors import Forbidden, InvalidInput
from core.handoffs import NO_ROUTE_NOTE
from core.identity import identify
from core.model import Person, Platform, Role, Session
from core.prompts.artifacts import ESCALATION_SUMMARY_PROMPT
from storage.db import Database
from tests.harness import console_inbound, running
from tests.harness import test_settings as settings_with

SLACK_TEAM, TEAMS_TENANT = "T-acme", "tenant-acme"
SLACK_SENIORS, TEAMS_SENIORS = "C-seniors", "19:seniors@thread.tacv2"
ADMIN_EMAIL = "ada@acme.test"
ADMINS = "U-admin,29:ada"
TURN = """Check the spooler, and try clearing the queue.
[ACTIONS]
[{"label": "Spooler state", "command": "Get-Service Spooler", "description": "running or not"}]
[/ACTIONS]
[SUGGEST_FIX]
{"title": "Clear the spool folder", "description": "Stop the spooler, empty the folder, start it.",
 "confidence": 70}
[/SUGGEST_FIX]"""
SUMMARY = {"summary_prose": "The print spooler hangs after every restart.", "what_we_know": ["Queue frozen"],
           "likely_cause": "A corrupt job in the spool folder",
           "suggested_steps": ["Empty the spool folder and restart the spooler", "Reinstall the driver"],
           "confidence": "medium"}


@dataclass
class RecordingSender(ConsoleSender):
    """A console-like ChannelSender for a platform whose adapter is not here yet."""

    shown: dict[str, list[Any]] = field(default_factory=dict)  # message id → every view it showed

    async def post(self, destination: dict[str, Any], view: Any) -> dict[str, Any]:
        ref = await super().post(destination, view)
        self.shown[ref["id"]] = [view]
        await self._notify()
        return ref

    async def update(self, ref: dict[str, Any], view: Any) -> dict[str, Any]:
        self.shown.setdefault(ref["id"], []).append(view)
        return await super().update(ref, view)

    def cards(self, state: str | None = None) -> list:
        return [v for v in self.views("escalation") if state is None or v.state == state]

    def card_ids(self) -> list[str]:
        return [m for m in self.order if self.messages[m].view.type == "escalation"]


# ----------------------------------------------------------------------------- helpers
def chat_user(platform: Platform, workspace: str, user: str, name: str, channel: str, *,
              email: str | None = None) -> Inbound:
    return Inbound(actor=Actor(platform, workspace, user, name, email),
                   where=Where(platform, workspace, channel, None, "seniors"))


def slack_admin() -> Inbound:
    return chat_user(Platform.SLACK, SLACK_TEAM, "U-admin", "Ada Admin", SLACK_SENIORS, email=ADMIN_EMAIL)


def teams_admin() -> Inbound:
    return chat_user(Platform.TEAMS, TEAMS_TENANT, "29:ada", "Ada Admin", TEAMS_SENIORS, email=ADMIN_EMAIL)


def senior(thread: str | None = None) -> Inbound:
    return console_inbound(user="U-sen", name="Sam Senior", thread=thread)


@pytest.fixture
def senders() -> dict[str, RecordingSender]:
    return {"slack": RecordingSender(), "teams": RecordingSender()}


def flowpilot(database_url: str, senders: dict, **env):
    return running(database_url, settings=settings_with(FLOWPILOT_ADMINS=ADMINS, **env), senders=senders)


async def linked_account(h) -> uuid.UUID:
    """The console workspace's account also owns the Slack workspace and the Teams tenant."""
    account = await h.store.ensure_workspace("console", "console-ws")
    await h.store.link_workspace("slack", SLACK_TEAM, account)
    await h.store.link_workspace("teams", TEAMS_TENANT, account)
    return account


async def add_senior_channels(h) -> uuid.UUID:
    account = await linked_account(h)
    for inbound in (slack_admin(), teams_admin()):
        reply = await h.copilot.command(inbound, "seniors here")
        assert reply.ok, reply.error
    return account


async def add_person(h, account: uuid.UUID, user: str, name: str, role: Role) -> None:
    async with h.store.unit(account) as uow:
        person = await identify(uow, Platform.CONSOLE, "console-ws", user, name)
        await uow.people.set_role(person.id, role)


async def start_session(h, reply: str = TURN, engineer: Inbound | None = None) -> tuple[str, str]:
    """A session whose first AI turn has landed; returns (session id, thread id)."""
    engineer = engineer or console_inbound()
    h.fake_ai.reply_text(reply)
    seen = len(h.console.views("lane"))
    started = await h.copilot.command(engineer, "new Printer queue stuck")
    assert started.ok, started.error
    await h.console.wait_for(lambda: len(h.console.views("lane")) > seen)
    header = next(m for m in reversed(h.console.order) if h.console.messages[m].view.type == "header"
                  and h.console.messages[m].view.session_id == started.session_id)
    return started.session_id, header


async def fix_ids(h) -> dict[str, str]:
    """What a fix card's buttons carry (read from the database: the card may still be in flight)."""
    (fix_id, session_id, version), = await sql(
        h, "SELECT f.id, s.id, s.state_version FROM session_suggested_fixes f JOIN ai_sessions s "
           "ON s.id = f.session_id WHERE f.superseded_at IS NULL")
    return {"session_id": str(session_id), "fix_id": str(fix_id), "v": str(version)}


async def sql(h, query: str, /, **params) -> list:
    async with h.store.db.admin_tx() as conn:
        result = await conn.execute(text(query), params)
        return result.all() if result.returns_rows else []


def summary_requests(fake) -> list:
    return [r for r in fake.requests if ESCALATION_SUMMARY_PROMPT[:60] in json.dumps(r.body)]


def dm_cards(sender: ConsoleSender) -> dict[str, Any]:
    return {m.destination["user_id"]: m.view for m in sender.messages.values()
            if m.view.type == "escalation" and m.destination.get("user_id")}


# ----------------------------------------------------------------------------- routes and the escalation
async def test_seniors_here_is_for_admins_and_escalations_reach_every_route(db, database_url, senders):
    async with flowpilot(database_url, senders) as h:
        account = await linked_account(h)
        refused = await h.copilot.command(chat_user(Platform.SLACK, SLACK_TEAM, "U-eve", "Eve", SLACK_SENIORS),
                                          "seniors here")
        assert isinstance(refused.error, Forbidden)
        assert str(refused.error) == "Only admins can choose where escalations go."
        assert (await h.copilot.command(slack_admin(), "seniors here")).text == "#seniors now receives escalations."
        assert (await h.copilot.command(slack_admin(), "seniors here")).text == "#seniors already receives escalations."
        assert (await h.copilot.command(teams_admin(), "seniors here")).ok
        routes = await sql(h, "SELECT platform, channel_id FROM escalation_routes ORDER BY platform")
        assert routes == [("slack", SLACK_SENIORS), ("teams", TEAMS_SENIORS)]
        await add_person(h, account, "U-sen", "Sam Senior", Role.SENIOR)
        session_id, thread = await start_session(h)

        escalated = await h.copilot.command(console_inbound(thread=thread),
                                            "escalate <@U-sen> printer still jammed after restart")

        assert escalated.ok, escalated.error
        assert escalated.text == "Escalated. Seniors have the card with your context."
        handoff_id = escalated.extra["handoff_id"]
        (status, owner, reason), = await sql(
            h, "SELECT s.status, p.display_name, s.escalation_reason FROM ai_sessions s "
               "JOIN people p ON p.id = s.user_id WHERE s.id = :s", s=session_id)
        assert (status, owner, reason) == ("escalated", "Erin Engineer", "printer still jammed after restart")
        (by, target, handoff_reason), = await sql(
            h, "SELECT b.display_name, t.display_name, h.reason FROM session_handoffs h "
               "JOIN people b ON b.id = h.handed_off_by JOIN people t ON t.id = h.target_user_id")
        assert (by, target, handoff_reason) == ("Erin Engineer", "Sam Senior", "printer still jammed after restart")
        for sender, channel in ((senders["slack"], SLACK_SENIORS), (senders["teams"], TEAMS_SENIORS)):
            await sender.wait_for(sender.card_ids)
            (card_id,) = sender.card_ids()
            assert sender.messages[card_id].destination["channel_id"] == channel
            first = sender.shown[card_id][0]
            assert first.state == "analyzing" and first.handoff_id == handoff_id
            assert first.handed_off_by == "Erin Engineer" and first.buttons[0].label == "Pick up"
        dm = await h.console.wait_for(lambda: dm_cards(h.console))
        assert list(dm) == ["U-sen"]  # the named senior's DM (a channel copy exists, so nobody else)
        note = "Escalated to seniors; Sam Senior was messaged directly. Reason: printer still jammed after restart"
        await h.console.wait_for(lambda: note in h.console.texts())
        jobs = await sql(h, "SELECT kind FROM jobs WHERE payload->>'handoff_id' = :h ORDER BY kind", h=handoff_id)
        assert [k for (k,) in jobs] == ["escalation_reping", "escalation_summary"]  # no ticket: no PSA job


async def test_a_linked_ticket_adds_the_psa_job_to_the_same_escalation(db, database_url, senders):
    async with flowpilot(database_url, senders) as h:
        account = await add_senior_channels(h)
        async with h.store.unit(account) as uow:
            await uow.psa.add_connection("https://cw.example.test", "acme", "sealed", active=True)
        h.fake_ai.reply_text(TURN)
        started = await h.copilot.command(console_inbound(), "new Printer queue stuck #48291")
        await h.console.wait_for(lambda: h.console.views("lane"))
        escalated = await h.copilot.action(console_inbound(), "escalate", {"session_id": started.session_id},
                                           text="needs a senior")
        assert escalated.ok, escalated.error
        jobs = await sql(h, "SELECT kind FROM jobs WHERE payload->>'handoff_id' = :h ORDER BY kind",
                         h=escalated.extra["handoff_id"])
        assert [k for (k,) in jobs] == ["escalation_reping", "escalation_summary", "psa_escalation"]
        for sender in senders.values():
            card = await sender.wait_for(sender.cards)
            assert card[0].ticket_ref == "CW #48291"


async def test_without_a_senior_channel_seniors_and_admins_get_dms_and_the_engineer_is_told(
        db, database_url, senders):
    async with flowpilot(database_url, senders) as h:
        account = await linked_account(h)
        await add_person(h, account, "U-sen", "Sam Senior", Role.SENIOR)
        await add_person(h, account, "U-eng2", "Eve Engineer", Role.ENGINEER)
        assert (await h.copilot.command(slack_admin(), "help")).ok  # the admin, known on Slack and Teams
        assert (await h.copilot.command(teams_admin(), "help")).ok
        _, thread = await start_session(h)

        escalated = await h.copilot.command(console_inbound(thread=thread), "escalate stuck")

        assert escalated.ok, escalated.error
        assert NO_ROUTE_NOTE in escalated.text
        await h.console.wait_for(lambda: any(NO_ROUTE_NOTE in t for t in h.console.texts()))
        assert set(await h.console.wait_for(lambda: dm_cards(h.console))) == {"U-sen"}
        assert set(await senders["slack"].wait_for(lambda: dm_cards(senders["slack"]))) == {"U-admin"}
        assert set(await senders["teams"].wait_for(lambda: dm_cards(senders["teams"]))) == {"29:ada"}
        for sender in (h.console, *senders.values()):
            assert all(m.destination.get("channel_id") is None for m in sender.messages.values()
                       if m.view.type == "escalation")


async def test_naming_a_senior_takes_a_mention_or_a_bare_user_id_and_refuses_anyone_else(
        db, database_url, senders):
    async with flowpilot(database_url, senders) as h:
        account = await add_senior_channels(h)
        await add_person(h, account, "U-sen", "Sam Senior", Role.SENIOR)
        await add_person(h, account, "U-eng2", "Eve Engineer", Role.ENGINEER)
        session_id, thread = await start_session(h)
        engineer = console_inbound(thread=thread)

        for named, who in (("<@U-eng2>", "Eve Engineer"), ("<@U-nobody|Nora>", "U-nobody"), ("<@U-eng>", None)):
            refused = await h.copilot.command(engineer, f"escalate {named} printer still jammed")
            assert isinstance(refused.error, InvalidInput), named
            assert (who or "yourself") in str(refused.error)
        assert await sql(h, "SELECT display_name FROM people WHERE display_name = 'U-nobody'") == []  # rolled back
        await nothing_escalated(h, session_id)

        # the Teams adapter hands the core a bare user id where the @mention was
        escalated = await h.copilot.command(engineer, "escalate U-sen printer still jammed")

        assert escalated.ok, escalated.error
        assert await sql(h, "SELECT p.display_name, h.reason FROM session_handoffs h "
                            "JOIN people p ON p.id = h.target_user_id") == [("Sam Senior", "printer still jammed")]
        assert list(await h.console.wait_for(lambda: dm_cards(h.console))) == ["U-sen"]


# ----------------------------------------------------------------------------- the intercept
def choices(form) -> tuple[list[str], str]:
    outcome = next(f for f in form.fields if f.name == "outcome")
    return [value for value, _ in outcome.options], outcome.initial


async def nothing_escalated(h, session_id: str) -> None:
    assert (await sql(h, "SELECT status FROM ai_sessions WHERE id = :s", s=session_id)) == [("active",)]
    assert await sql(h, "SELECT id FROM session_handoffs") == []
    assert await sql(h, "SELECT id FROM jobs WHERE kind = 'escalation_summary'") == []
    assert await sql(h, "SELECT id FROM outbox WHERE view->>'type' = 'escalation'") == []


async def test_escalating_with_an_open_fix_records_its_outcome_first(db, database_url, senders):
    async with flowpilot(database_url, senders) as h:
        account = await add_senior_channels(h)
        await add_person(h, account, "U-sen", "Sam Senior", Role.SENIOR)
        session_id, thread = await start_session(h)
        engineer = console_inbound(thread=thread)
        assert (await h.copilot.action(engineer, "fix_applied", await fix_ids(h))).ok

        verifying = await h.copilot.action(engineer, "escalate", {"session_id": session_id},
                                           text="printer still jammed")  # the header button
        assert verifying.ok and verifying.form is not None, verifying.error
        assert verifying.form.action == "intercept" and verifying.form.title == "Before escalating"
        assert "what happened with the fix" in verifying.form.intro
        assert choices(verifying.form) == (["failed", "success", "dismissed", "partial"], "failed")
        assert verifying.form.value["reason"] == "printer still jammed"
        await nothing_escalated(h, session_id)

        assert (await h.copilot.action(engineer, "fix_partial", await fix_ids(h), text="cleared half")).ok
        partial = await h.copilot.command(engineer, "escalate still jammed")
        assert choices(partial.form) == (["failed", "success", "dismissed"], "failed")  # partial is hidden

        assert (await h.copilot.action(engineer, "fix_pending", await fix_ids(h),
                                       text="waiting for the overnight sync")).ok
        pending = await h.copilot.command(engineer, "escalate <@U-sen> still jammed")
        assert choices(pending.form) == (["failed", "success", "dismissed", "partial", "wait"], "wait")
        form_value = dict(pending.form.value)

        no_notes = await h.copilot.action(engineer, "intercept", form_value,
                                          fields={"outcome": "partial", "notes": "  "})
        assert isinstance(no_notes.error, InvalidInput) and no_notes.error.field == "notes"
        await nothing_escalated(h, session_id)
        assert await sql(h, "SELECT status FROM session_suggested_fixes") == [("applied_pending",)]

        done = await h.copilot.action(engineer, "intercept", form_value,
                                      fields={"outcome": "failed", "notes": "still jammed after the sync"})

        assert done.ok, done.error
        assert done.text == "Fix outcome recorded and escalated."
        assert await sql(h, "SELECT status, failure_reason FROM session_suggested_fixes") == [
            ("applied_failed", "still jammed after the sync")]
        (snapshot, target), = await sql(h, "SELECT h.snapshot, p.display_name FROM session_handoffs h "
                                           "JOIN people p ON p.id = h.target_user_id")
        assert target == "Sam Senior" and snapshot["fix"]["status"] == "applied_failed"
        assert (await sql(h, "SELECT status FROM ai_sessions")) == [("escalated",)]
        for sender in senders.values():
            await sender.wait_for(sender.cards)
        assert list(await h.console.wait_for(lambda: dm_cards(h.console))) == ["U-sen"]


async def test_a_fix_still_waiting_to_verify_can_escalate_unchanged(db, database_url, senders):
    async with flowpilot(database_url, senders) as h:
        await add_senior_channels(h)
        session_id, thread = await start_session(h)
        engineer = console_inbound(thread=thread)
        assert (await h.copilot.action(engineer, "fix_pending", await fix_ids(h),
                                       text="waiting for the overnight sync")).ok
        form = (await h.copilot.action(engineer, "escalate", {"session_id": session_id}, text="stuck")).form

        done = await h.copilot.action(engineer, "intercept", dict(form.value), fields={"outcome": "wait"})

        assert done.ok, done.error
        assert await sql(h, "SELECT status, pending_reason FROM session_suggested_fixes") == [
            ("applied_pending", "waiting for the overnight sync")]
        assert (await sql(h, "SELECT status FROM ai_sessions")) == [("escalated",)]


# ----------------------------------------------------------------------------- the AI summary
async def test_the_card_posts_while_the_model_thinks_then_is_edited_in_place(db, database_url, senders):
    async with flowpilot(database_url, senders, ESCALATION_SUMMARY_TIMEOUT_SECONDS=60) as h:
        await add_senior_channels(h)
        _, thread = await start_session(h)
        h.fake_ai.delay(3)  # stands in for a slow (20 s) model without slowing the suite
        h.fake_ai.reply_json(SUMMARY)

        assert (await h.copilot.command(console_inbound(thread=thread), "escalate stuck")).ok

        for sender in senders.values():
            cards = await sender.wait_for(sender.cards)
            assert cards[0].state == "analyzing" and cards[0].summary_prose is None
        assert not [r for r in summary_requests(h.fake_ai) if r.status], "the model answered before the card"
        assert (await sql(h, "SELECT summary_status FROM session_handoffs")) == [("pending",)]
        for sender in senders.values():
            await sender.wait_for(lambda s=sender: s.cards("ready"))
            (card_id,) = sender.card_ids()
            assert sender.messages[card_id].edits == 1
            assert [v.state for v in sender.shown[card_id]] == ["analyzing", "ready"]
            ready = sender.messages[card_id].view
            assert ready.summary_prose == SUMMARY["summary_prose"] and ready.likely_cause == SUMMARY["likely_cause"]
            assert ready.suggested_steps == SUMMARY["suggested_steps"] and ready.confidence == "medium"
        assert [r.status for r in summary_requests(h.fake_ai)] == [200]


@pytest.mark.parametrize("failure", ["timeout", "model error"])
async def test_without_a_summary_every_copy_shows_the_snapshot(db, database_url, senders, failure):
    budget = 1 if failure == "timeout" else 60
    async with flowpilot(database_url, senders, ESCALATION_SUMMARY_TIMEOUT_SECONDS=budget) as h:
        account = await add_senior_channels(h)
        await add_person(h, account, "U-sen", "Sam Senior", Role.SENIOR)
        session_id, thread = await start_session(h)
        engineer = console_inbound(thread=thread)
        assert (await h.copilot.command(engineer, "note Only the second floor printer is affected")).ok
        check = h.console.views("lane")[-1].checks[0]
        done = next(b for b in check.buttons if b.action == "check_done")
        assert (await h.copilot.action(engineer, "check_done", dict(done.value))).ok
        assert (await h.copilot.action(engineer, "fix_applied", await fix_ids(h))).ok
        assert (await h.copilot.action(engineer, "fix_failed", await fix_ids(h),
                                       text="jammed again within a minute")).ok
        if failure == "timeout":
            h.fake_ai.delay(3)
            h.fake_ai.reply_json(SUMMARY)
        else:
            h.fake_ai.fail(529)

        assert (await h.copilot.command(engineer, "escalate <@U-sen> still stuck")).ok

        copies = [*senders.values(), h.console]
        for sender in copies:
            failed = await sender.wait_for(lambda s=sender: [v for v in s.views("escalation") if v.state == "failed"])
            snapshot = failed[0].snapshot
            assert snapshot["what_we_know"] == ["Only the second floor printer is affected"]
            assert snapshot["whats_been_tried"] == [
                "Check: Spooler state (`Get-Service Spooler`) — done",
                'Applied the fix "Clear the spool folder"; it did not resolve the issue: jammed again within a minute.']
            assert snapshot["fix"]["status"] == "applied_failed"
            assert failed[0].summary_prose is None and failed[0].buttons[0].label == "Pick up"
        assert await sql(h, "SELECT summary_status FROM session_handoffs WHERE session_id = :s", s=session_id) == [
            ("failed",)]


# ----------------------------------------------------------------------------- pickup
async def test_the_senior_picks_up_gets_the_context_and_takes_over_the_thread(db, database_url, senders):
    async with flowpilot(database_url, senders, ESCALATION_SUMMARY_TIMEOUT_SECONDS=60) as h:
        account = await add_senior_channels(h)
        await add_person(h, account, "U-sen", "Sam Senior", Role.SENIOR)
        await add_person(h, account, "U-eng2", "Eve Engineer", Role.ENGINEER)
        session_id, thread = await start_session(h)
        h.fake_ai.delay(3)  # picked up while the summary is still being written
        h.fake_ai.reply_json(SUMMARY)
        escalated = await h.copilot.command(console_inbound(thread=thread), "escalate stuck")
        handoff_id = escalated.extra["handoff_id"]

        claimed = await h.copilot.action(senior(), "claim", {"handoff_id": handoff_id, "session_id": session_id})

        assert claimed.ok and claimed.card.state == "claimed" and claimed.card.claimed_by == "Sam Senior"
        (status, owner, claimer, acted), = await sql(
            h, "SELECT s.status, o.display_name, c.display_name, h.first_action_at FROM ai_sessions s "
               "JOIN people o ON o.id = s.user_id JOIN people c ON c.id = s.escalated_to_id "
               "JOIN session_handoffs h ON h.session_id = s.id")
        assert (status, owner, claimer, acted) == ("active", "Erin Engineer", "Sam Senior", None)
        context_id = await h.console.wait_for(
            lambda: [m for m in h.console.order if h.console.messages[m].view.type == "handoff_context"])
        context = h.console.messages[context_id[0]]
        assert context.destination["thread_id"] == thread
        assert context.view.senior.name == "Sam Senior" and context.view.senior.external_id == "U-sen"
        assert context.view.handed_off_by == "Erin Engineer"
        assert context.view.summary_prose is None and context.view.what_we_know == []  # no summary yet

        # the summary lands after the pickup: the context card gains it and the suggested steps
        await h.console.wait_for(lambda: context.view.next_steps)
        assert context.edits == 1
        assert context.view.summary_prose == SUMMARY["summary_prose"] and context.view.confidence == "medium"
        assert context.view.what_we_know == ["Queue frozen"] and context.view.likely_cause == SUMMARY["likely_cause"]
        steps = [b for b in context.view.buttons if b.action == "suggested_step"]
        assert [b.label for b in steps] == SUMMARY["suggested_steps"]
        for sender in senders.values():  # and every channel card shows the claim
            assert (await sender.wait_for(lambda s=sender: s.cards("claimed")))[0].claimed_by == "Sam Senior"

        h.fake_ai.reply_text("Good idea. Stop the spooler first.")
        clicked = await h.copilot.action(senior(thread), "suggested_step", dict(steps[0].value))

        assert clicked.ok, clicked.error
        await h.console.wait_for(lambda: "Good idea. Stop the spooler first." in h.console.texts())
        assert SUMMARY["suggested_steps"][0] in json.dumps(h.fake_ai.requests[-1].body["messages"][-1])
        assert context.edits == 2 and context.view.buttons == []  # the quick replies are gone
        (author, content), = await sql(h, "SELECT p.display_name, m.content FROM session_messages m "
                                          "JOIN people p ON p.id = m.author_id WHERE m.role = 'user' "
                                          "ORDER BY m.created_at DESC LIMIT 1")
        assert (author, content) == ("Sam Senior", SUMMARY["suggested_steps"][0])
        (acted, claimed_at), = await sql(h, "SELECT first_action_at, claimed_at FROM session_handoffs")
        assert acted is not None and acted >= claimed_at

        h.fake_ai.reply_text("Then reinstall the driver.")
        assert (await h.copilot.message(senior(thread), "Spooler stopped, folder cleared")).ok
        stranger = await h.copilot.message(console_inbound(user="U-eng2", name="Eve Engineer", thread=thread), "hi")
        assert isinstance(stranger.error, Forbidden) and "not your session" in str(stranger.error)
        assert (await sql(h, "SELECT first_action_at FROM session_handoffs")) == [(acted,)]


# ----------------------------------------------------------------------------- queue and metrics
async def test_queue_lists_unclaimed_escalations_oldest_first_without_your_own(db, database_url, senders):
    async with flowpilot(database_url, senders) as h:
        account = await add_senior_channels(h)
        await add_person(h, account, "U-sen", "Sam Senior", Role.SENIOR)
        erin, eve = console_inbound(), console_inbound(user="U-eng2", name="Eve Engineer")
        await add_person(h, account, "U-eng2", "Eve Engineer", Role.ENGINEER)
        ids = {}
        for who, reason in ((erin, "recent one"), (eve, "old one"), (erin, "already taken")):
            session_id, thread = await start_session(h, engineer=who)
            where = Inbound(who.actor, Where(Platform.CONSOLE, "console-ws", "console", thread))
            escalated = await h.copilot.command(where, f"escalate {reason}")
            ids[reason] = (escalated.extra["handoff_id"], session_id)
        taken = dict(zip(("handoff_id", "session_id"), ids["already taken"]))
        assert (await h.copilot.action(senior(), "claim", taken)).ok
        for reason, age in (("recent one", "30 minutes"), ("old one", "2 hours")):
            await sql(h, f"UPDATE session_handoffs SET created_at = now() - interval '{age}' WHERE id = :h",
                      h=ids[reason][0])

        for_senior = (await h.copilot.command(senior(), "queue")).card
        for_erin = (await h.copilot.command(erin, "queue")).card

        assert [i.text for i in for_senior.items] == [
            "Printer queue stuck — from Eve Engineer, 2 hours ago — old one",
            "Printer queue stuck — from Erin Engineer, 30 minutes ago — recent one"]
        assert [i.buttons[0].value["handoff_id"] for i in for_senior.items] == [ids["old one"][0],
                                                                               ids["recent one"][0]]
        assert all(i.buttons[0].label == "Pick up" for i in for_senior.items)
        assert [i.text for i in for_erin.items] == [for_senior.items[0].text]  # never your own
        assert for_erin.items[0].buttons == []  # engineers see the queue without Pick up


async def seed_metrics(h) -> None:
    """Handoffs with known times, written through SQL (admin) so the clock is ours. Account A is
    the caller's; account B's numbers must stay out of A's `metrics` but count fleet-wide."""
    rows = {  # created (ago) → (seconds to claim, seconds from claim to first action)
        "A": [("1 hour", None, None), ("1 day", 60, 30), ("2 days", 120, 90), ("3 days", 600, None),
              ("20 days", 3600, 600), ("40 days", 9999, 9999)],
        "B": [("1 day", 5000, 100)],
    }
    for name, handoffs in rows.items():
        account = await h.store.ensure_workspace("console", "console-ws" if name == "A" else "other-ws")
        person = Person(id=uuid.uuid4(), account_id=account, display_name=f"{name} engineer", role=Role.ENGINEER)
        session = Session(id=uuid.uuid4(), account_id=account, user_id=person.id, title="Printer")
        async with h.store.unit(account) as uow:
            await uow.people.add(person)
            await uow.sessions.add(session)
        for ago, to_claim, to_act in handoffs:
            await sql(h, f"""
                INSERT INTO session_handoffs (id, account_id, session_id, handed_off_by, created_at, claimed_at,
                                              claimed_by, first_action_at)
                SELECT :id, :a, :s, :p, t, t + make_interval(secs => CAST(:c AS float8)),
                       CASE WHEN CAST(:c AS float8) IS NULL THEN NULL ELSE CAST(:p AS uuid) END,
                       t + make_interval(secs => CAST(:c AS float8) + CAST(:f AS float8))
                FROM (SELECT now() - interval '{ago}' AS t) x""",
                      id=uuid.uuid4(), a=account, s=session.id, p=person.id, c=to_claim, f=to_act)


async def test_metrics_are_for_seniors_and_computed_in_sql(db, database_url, senders):
    async with flowpilot(database_url, senders) as h:
        await seed_metrics(h)
        account = await h.store.ensure_workspace("console", "console-ws")
        await add_person(h, account, "U-sen", "Sam Senior", Role.SENIOR)

        refused = await h.copilot.command(console_inbound(), "metrics")
        shown = await h.copilot.command(senior(), "metrics")

        assert isinstance(refused.error, Forbidden)
        assert str(refused.error) == "Escalation metrics are for seniors and admins."
        lines = shown.text.splitlines()
        # 7 days: claims 60/120/600 s, first actions 30/90 s; 30 days adds 3600 s and 600 s
        assert lines[1] == ("Last 7 days: 4 escalations · time to claim p50 2m, p90 8m (n=3) · time to first "
                            "action after claim p50 60s, p90 84s (n=2)")
        assert lines[2] == ("Last 30 days: 5 escalations · time to claim p50 6m, p90 45m (n=4) · time to first "
                            "action after claim p50 90s, p90 8m (n=3)")
        assert "manual baseline minus" in lines[3]


def scraped(body: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


async def test_metrics_endpoint_exports_fleet_wide_times_and_the_funnel(db, database_url, senders):
    funnel_before = {stage: metrics.REGISTRY.get_sample_value("flowpilot_escalation_funnel_total",
                                                              {"stage": stage}) or 0.0
                     for stage in ("escalated", "claimed", "first_action")}
    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    async with flowpilot(database_url, senders, FLOWPILOT_TICKER_SECONDS=0.2) as h, \
            TestClient(TestServer(app)) as client:
        await seed_metrics(h)
        # every account, both windows, computed in SQL (percentile_cont), exported by the ticker
        expected = {
            ("flowpilot_escalation_time_to_claim_seconds", "p50", "7d"): 360.0,
            ("flowpilot_escalation_time_to_claim_seconds", "p90", "7d"): 3680.0,
            ("flowpilot_escalation_time_to_claim_seconds", "p50", "30d"): 600.0,
            ("flowpilot_escalation_time_to_claim_seconds", "p90", "30d"): 4440.0,
            ("flowpilot_escalation_time_to_first_action_seconds", "p50", "7d"): 90.0,
            ("flowpilot_escalation_time_to_first_action_seconds", "p90", "7d"): 98.0,
            ("flowpilot_escalation_time_to_first_action_seconds", "p50", "30d"): 95.0,
            ("flowpilot_escalation_time_to_first_action_seconds", "p90", "30d"): 450.0,
        }
        funnel = {"escalated": 7, "claimed": 6, "first_action": 5}

        def matches(values: dict) -> bool:
            times = all(math.isclose(values.get((name, (("quantile", q), ("window", w))), math.nan), v)
                        for (name, q, w), v in expected.items())
            counts = all(values.get(("flowpilot_escalation_funnel_total", (("stage", s),))) == funnel_before[s] + n
                         for s, n in funnel.items())
            return times and counts

        async def scrape_until_refreshed() -> dict:
            while True:
                response = await client.get("/metrics")
                assert response.status == 200
                values = scraped(await response.text())
                if matches(values):
                    return values
                await asyncio.sleep(0.1)

        await asyncio.wait_for(scrape_until_refreshed(), timeout=10)


async def test_metrics_read_nothing_and_warn_when_the_database_role_is_bound_by_rls(db, store, caplog):
    """What an operator sees when DATABASE_URL's role is subject to FORCE ROW LEVEL SECURITY (an
    owner without BYPASSRLS): a warning and empty figures, never another tenant's numbers."""
    probe = "flowpilot_rls_bound_probe"
    async with db.admin.begin() as conn:
        await conn.execute(text(f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{probe}') "
                                f"THEN CREATE ROLE {probe} NOLOGIN NOSUPERUSER NOBYPASSRLS; END IF; END $$"))
        await conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {probe}"))
        await conn.execute(text(f"GRANT SELECT ON session_handoffs TO {probe}"))
    await seed_metrics(SimpleNamespace(store=store))
    admin_as_probe = create_async_engine(db.url, connect_args={"server_settings": {"role": probe}})
    try:
        refresher = EscalationMetrics(Database(url=db.url, app=db.app, admin=admin_as_probe))
        with caplog.at_level(logging.WARNING, logger="bot.escalation_metrics"):
            await refresher.refresh()
        assert "neither SUPERUSER nor BYPASSRLS" in caplog.text
        claim_p50 = metrics.REGISTRY.get_sample_value("flowpilot_escalation_time_to_claim_seconds",
                                                      {"quantile": "p50", "window": "7d"})
        assert math.isnan(claim_p50)
    finally:
        await admin_as_probe.dispose()
        async with db.admin.begin() as conn:
            await conn.execute(text(f"REVOKE SELECT ON session_handoffs FROM {probe}"))
            await conn.execute(text(f"REVOKE USAGE ON SCHEMA public FROM {probe}"))
