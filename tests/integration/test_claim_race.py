"""Pick up (DOMAIN §6.5, pitfalls 24–25): fifty seniors pressing it at once get exactly one
winner, decided by one atomic conditional UPDATE, and everyone else is told who won; plus the
claim rules (no self-claim, seniors and admins only, an idempotent double click, a session
resolved in the meantime).

The account owns a console workspace (where the engineer works), a Slack workspace and a Teams
tenant, each with a senior channel. Until the Slack and Teams adapters land, recording senders
registered under the platform names "slack" and "teams" stand in for them."""
from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from adapters.console.sender import ConsoleSender
from core.commands import Actor, Inbound, Where
from core.errors import Conflict, Forbidden
from core.identity import identify
from core.model import Platform, Role
from tests.harness import console_inbound, running
from tests.harness import test_settings as settings_with

SLACK_TEAM, TEAMS_TENANT = "T-acme", "tenant-acme"
ADMIN_EMAIL = "ada@acme.test"
TURN = """Check the spooler.
[ACTIONS]
[{"label": "Spooler state", "command": "Get-Service Spooler", "description": "running or not"}]
[/ACTIONS]"""
SUMMARY = {"summary_prose": "The print spooler hangs after restart.", "what_we_know": ["Queue frozen"],
           "likely_cause": "A corrupt job in the spool folder", "suggested_steps": ["Clear the spool folder"],
           "confidence": "medium"}
SENIORS = 50


def chat_user(platform: Platform, workspace: str, user: str, name: str, channel: str, *, email: str | None = None,
              event_id: str | None = None) -> Inbound:
    return Inbound(actor=Actor(platform, workspace, user, name, email),
                   where=Where(platform, workspace, channel, None, "seniors"), event_id=event_id)


async def with_senior_channels(h) -> uuid.UUID:
    """One account across three platforms; its admin (one person, two identities) runs
    `seniors here` in a Slack channel and in a Teams channel."""
    account = await h.store.ensure_workspace("console", "console-ws")
    await h.store.link_workspace("slack", SLACK_TEAM, account)
    await h.store.link_workspace("teams", TEAMS_TENANT, account)
    for inbound in (chat_user(Platform.SLACK, SLACK_TEAM, "U-admin", "Ada Admin", "C-seniors", email=ADMIN_EMAIL),
                    chat_user(Platform.TEAMS, TEAMS_TENANT, "29:ada", "Ada Admin", "19:seniors@thread.tacv2",
                              email=ADMIN_EMAIL)):
        reply = await h.copilot.command(inbound, "seniors here")
        assert reply.ok, reply.error
    return account


async def promote_seniors(h, account: uuid.UUID, count: int) -> None:
    async with h.store.unit(account) as uow:
        for i in range(count):
            person = await identify(uow, Platform.CONSOLE, "console-ws", f"U-s{i:02d}", f"Senior {i:02d}")
            await uow.people.set_role(person.id, Role.SENIOR)


def senior(i: int, event_id: str | None = None) -> Inbound:
    return console_inbound(user=f"U-s{i:02d}", name=f"Senior {i:02d}", event_id=event_id)


def escalation_cards(sender: ConsoleSender, state: str) -> list:
    return [v for v in sender.views("escalation") if v.state == state]


async def escalate_ready(h, slack: ConsoleSender, teams: ConsoleSender) -> tuple[str, str, str]:
    """An escalated session whose AI summary has landed on both channel cards."""
    h.fake_ai.reply_text(TURN)
    started = await h.copilot.command(console_inbound(), "new Printer queue stuck")
    await h.console.wait_for(lambda: h.console.views("lane"))
    thread = h.console.order[0]
    h.fake_ai.reply_json(SUMMARY)
    escalated = await h.copilot.command(console_inbound(thread=thread), "escalate stuck after restart")
    assert escalated.ok, escalated.error
    for sender in (slack, teams):
        await sender.wait_for(lambda s=sender: escalation_cards(s, "ready"))
    return started.session_id, thread, escalated.extra["handoff_id"]


async def sql(h, query: str, /, **params):
    async with h.store.db.admin_tx() as conn:
        return (await conn.execute(text(query), params)).all()


async def outbox_drained(h, timeout: float = 10.0) -> None:
    """Every message written so far has been delivered (polled: delivery is asynchronous)."""
    async def drained() -> None:
        while (await sql(h, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')"))[0][0]:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(drained(), timeout)


def harness(database_url: str, slack: ConsoleSender, teams: ConsoleSender):
    return running(database_url, settings=settings_with(FLOWPILOT_ADMINS="U-admin,29:ada", FLOWPILOT_DB_POOL_SIZE=10),
                   senders={"slack": slack, "teams": teams})


async def test_fifty_seniors_claim_at_once_and_exactly_one_wins(db, database_url):
    slack, teams = ConsoleSender(), ConsoleSender()
    async with harness(database_url, slack, teams) as h:
        account = await with_senior_channels(h)
        await promote_seniors(h, account, SENIORS)
        session_id, _, handoff_id = await escalate_ready(h, slack, teams)
        value = {"handoff_id": handoff_id, "session_id": session_id}

        replies = await asyncio.gather(*(h.copilot.action(senior(i), "claim", value) for i in range(SENIORS)))

        won = [i for i, r in enumerate(replies) if r.ok]
        assert len(won) == 1, [str(r.error) for r in replies if not r.ok][:3]
        winner_name = f"Senior {won[0]:02d}"
        (claimed_by, claimer_name, claimed_at), = await sql(
            h, "SELECT h.claimed_by, p.display_name, h.claimed_at FROM session_handoffs h "
               "JOIN people p ON p.id = h.claimed_by WHERE h.id = :hid", hid=handoff_id)
        assert claimer_name == winner_name and claimed_at is not None
        losers = [r for r in replies if not r.ok]
        assert len(losers) == SENIORS - 1
        assert all(isinstance(r.error, Conflict) for r in losers)
        assert all(str(r.error).startswith(f"Already claimed by {winner_name} ") for r in losers)
        assert {r.error.detail["winner_id"] for r in losers} == {str(claimed_by)}

        (status, escalated_to, owner_name), = await sql(
            h, "SELECT s.status, s.escalated_to_id, p.display_name FROM ai_sessions s "
               "JOIN people p ON p.id = s.user_id WHERE s.id = :s", s=session_id)
        assert (status, escalated_to, owner_name) == ("active", claimed_by, "Erin Engineer")

        await outbox_drained(h)
        for sender in (slack, teams):  # one card per senior channel: analyzing → ready → claimed
            (card_id,) = [m for m in sender.order if sender.messages[m].view.type == "escalation"]
            card = sender.messages[card_id]
            assert card.view.state == "claimed" and card.view.claimed_by == winner_name
            assert card.view.buttons == [] and card.edits == 2
        edits = await sql(h, "SELECT card_key, count(*) FROM outbox WHERE card_key LIKE :k GROUP BY card_key",
                          k=f"esc:{handoff_id}:%")
        assert sorted(n for _, n in edits) == [3, 3]  # no loser wrote a card edit
        context = h.console.views("handoff_context")
        assert len(context) == 1 and context[0].senior.name == winner_name
        pickups = await sql(h, "SELECT count(*) FROM ai_session_steps WHERE payload ? 'pickup'")
        assert pickups[0][0] == 1


async def test_claim_rules_self_role_and_double_click(db, database_url):
    slack, teams = ConsoleSender(), ConsoleSender()
    async with harness(database_url, slack, teams) as h:
        account = await with_senior_channels(h)
        await promote_seniors(h, account, 1)
        session_id, thread, handoff_id = await escalate_ready(h, slack, teams)
        value = {"handoff_id": handoff_id, "session_id": session_id}

        own = await h.copilot.action(console_inbound(thread=thread), "claim", value)
        assert isinstance(own.error, Forbidden) and str(own.error) == "You can't pick up your own escalation."
        other_engineer = console_inbound(user="U-eng2", name="Eve Engineer")
        engineer = await h.copilot.action(other_engineer, "claim", value)
        assert isinstance(engineer.error, Forbidden)
        assert str(engineer.error) == "Only seniors and admins can pick up escalations."
        assert (await sql(h, "SELECT claimed_by FROM session_handoffs"))[0][0] is None

        first = await h.copilot.action(senior(0, event_id="click-1"), "claim", value)
        assert first.ok and first.extra["won"] is True, first.error
        await outbox_drained(h)
        writes_after_claim = (await sql(h, "SELECT count(*) FROM outbox"))[0][0]
        session_row = await sql(h, "SELECT status, escalated_to_id, updated_at FROM ai_sessions")

        again = await h.copilot.action(senior(0, event_id="click-2"), "claim", value)
        assert again.ok and again.extra["won"] is False and again.text == "It's already yours."
        assert again.card.state == "claimed" and again.card.claimed_by == "Senior 00"
        redelivered = await h.copilot.action(senior(0, event_id="click-2"), "claim", value)
        assert redelivered.duplicate

        assert (await sql(h, "SELECT count(*) FROM outbox"))[0][0] == writes_after_claim
        assert await sql(h, "SELECT status, escalated_to_id, updated_at FROM ai_sessions") == session_row
        assert len(h.console.views("handoff_context")) == 1
        # neither the pickup nor a repeated click is the senior's first action; a card action is
        assert (await sql(h, "SELECT first_action_at FROM session_handoffs"))[0][0] is None
        note = await h.copilot.action(senior(0), "add_note", {"session_id": session_id},
                                      text="Spooler restarted twice already")
        assert note.ok, note.error
        (acted, claimed), = await sql(h, "SELECT first_action_at, claimed_at FROM session_handoffs")
        assert acted is not None and acted >= claimed


async def test_claim_after_the_session_was_resolved_is_a_conflict_and_the_cards_say_so(db, database_url):
    slack, teams = ConsoleSender(), ConsoleSender()
    async with harness(database_url, slack, teams) as h:
        account = await with_senior_channels(h)
        await promote_seniors(h, account, 1)
        session_id, thread, handoff_id = await escalate_ready(h, slack, teams)
        engineer = console_inbound(thread=thread)
        h.fake_ai.reply_text("## Problem\nx\n\n## What we confirmed\ny\n\n## Root cause\nz\n\n## Resolution\nw")
        assert (await h.copilot.action(engineer, "resolve", {"session_id": session_id})).ok
        preview = await h.console.wait_for(lambda: h.console.views("preview"))
        confirm = next(b for b in preview[0].buttons if b.action == "preview_confirm")
        assert (await h.copilot.action(engineer, "preview_confirm", dict(confirm.value))).ok
        await h.console.wait_for(lambda: any("Resolved locally" in t for t in h.console.texts()))

        late = await h.copilot.action(senior(0), "claim", {"handoff_id": handoff_id, "session_id": session_id})

        assert isinstance(late.error, Conflict)
        assert str(late.error) == "This escalation is no longer open: the session is resolved."
        assert late.card.state == "closed" and late.card.buttons == []
        assert late.card.status_note == "Session is resolved; no pick-up needed."
        for sender in (slack, teams):
            closed = await sender.wait_for(lambda s=sender: escalation_cards(s, "closed"))
            assert closed[0].status_note == "Session is resolved; no pick-up needed." and closed[0].buttons == []
        assert await sql(h, "SELECT claimed_by, status FROM session_handoffs h JOIN ai_sessions s "
                            "ON s.id = h.session_id") == [(None, "resolved")]
