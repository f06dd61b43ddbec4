"""Re-pings of unclaimed escalations (DOMAIN §6.8): each slot re-announces the escalation once in
every senior channel (a channel mention), with growing intervals, up to ESCALATION_REPING_MAX;
a claim stops them. Two FlowPilot processes (two runtimes with workers on one database) must
still ping exactly once per slot: the slot is a delayed job row claimed with SKIP LOCKED, and its
posts commit in the same transaction as the job's completion.

Recording senders registered as "slack" and "teams" stand in for the adapters; they (and the
console sender) are shared by both processes, so every delivery is counted whichever process
made it."""
from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text

from adapters.console.sender import ConsoleSender
from core.commands import Actor, Inbound, Where
from core.identity import identify
from core.model import Platform, Role
from tests.fakes.anthropic import FakeAnthropic
from tests.harness import FAKE_KEY, console_inbound, running
from tests.harness import test_settings as settings_with

SLACK_TEAM, TEAMS_TENANT = "T-acme", "tenant-acme"
CHANNELS = {"slack": "C-seniors", "teams": "19:seniors@thread.tacv2"}
REPING_MINUTES = 0.02  # 1.2 s, then 2.4 s, ...


def settings(max_pings: int):
    return settings_with(FLOWPILOT_ADMINS="U-admin,29:ada", ESCALATION_REPING_MINUTES=REPING_MINUTES,
                         ESCALATION_REPING_MAX=max_pings, FLOWPILOT_POLL_SECONDS=0.1)


def chat_admin(platform: Platform, workspace: str, user: str, channel: str) -> Inbound:
    return Inbound(actor=Actor(platform, workspace, user, "Ada Admin", "ada@acme.test"),
                   where=Where(platform, workspace, channel, None, "seniors"))


async def escalate_with_senior_channels(h, console: ConsoleSender) -> tuple[str, str]:
    account = await h.store.ensure_workspace("console", "console-ws")
    await h.store.link_workspace("slack", SLACK_TEAM, account)
    await h.store.link_workspace("teams", TEAMS_TENANT, account)
    for inbound in (chat_admin(Platform.SLACK, SLACK_TEAM, "U-admin", CHANNELS["slack"]),
                    chat_admin(Platform.TEAMS, TEAMS_TENANT, "29:ada", CHANNELS["teams"])):
        assert (await h.copilot.command(inbound, "seniors here")).ok
    async with h.store.unit(account) as uow:  # a senior, who also gets the card as a DM
        person = await identify(uow, Platform.CONSOLE, "console-ws", "U-sen", "Sam Senior")
        await uow.people.set_role(person.id, Role.SENIOR)
    started = await h.copilot.command(console_inbound(), "new Printer queue stuck")
    await console.wait_for(lambda: console.views("lane"))  # the turn ran: the thread is bound
    escalated = await h.copilot.command(console_inbound(thread=console.order[0]), "escalate <@U-sen> still stuck")
    assert escalated.ok, escalated.error
    return started.session_id, escalated.extra["handoff_id"]


def repings(sender: ConsoleSender) -> list:
    return [m for m in sender.order
            if sender.messages[m].view.type == "text" and sender.messages[m].view.mention_channel]


async def sql(h, query: str, /, **params):
    async with h.store.db.admin_tx() as conn:
        return (await conn.execute(text(query), params)).all()


async def slot_jobs(h) -> dict[int, tuple[str, float]]:
    """slot → (status, scheduled delay in seconds) of the re-ping jobs."""
    rows = await sql(h, "SELECT (payload->>'slot')::int, status, extract(epoch FROM run_after - created_at) "
                        "FROM jobs WHERE kind = 'escalation_reping'")
    return {slot: (status, float(delay)) for slot, status, delay in rows}


async def until(condition, timeout: float = 15.0) -> None:
    """Poll an asynchronous condition (delayed jobs fire on the workers' poll, not on a notify)."""
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


@contextlib.asynccontextmanager
async def two_processes(database_url: str, max_pings: int):
    senders = {"console": ConsoleSender(), "slack": ConsoleSender(), "teams": ConsoleSender()}
    async with FakeAnthropic(api_key=FAKE_KEY) as fake:
        async with running(database_url, settings=settings(max_pings), senders=senders, fake_ai=fake) as one, \
                running(database_url, settings=settings(max_pings), senders=senders, fake_ai=fake) as two:
            yield one, two, senders


async def test_two_processes_ping_exactly_once_per_slot_up_to_the_max(db, database_url):
    async with two_processes(database_url, max_pings=2) as (one, two, senders):
        _, handoff_id = await escalate_with_senior_channels(one, senders["console"])

        for sender in (senders["slack"], senders["teams"]):
            await sender.wait_for(lambda s=sender: len(repings(s)) >= 2, timeout=15)
        await until(lambda: _done(one, {1, 2}))

        jobs = await slot_jobs(one)
        assert set(jobs) == {1, 2}  # the max: no third slot is even scheduled
        assert jobs[1][1] == REPING_MINUTES * 60 and jobs[2][1] == 2 * REPING_MINUTES * 60  # growing
        for platform in CHANNELS:
            sender = senders[platform]
            pings = [sender.messages[m] for m in repings(sender)]
            assert len(pings) == 2, [p.view.text for p in pings]
            assert all(p.destination["channel_id"] == CHANNELS[platform] for p in pings)
            assert all(p.view.text.startswith("Still unclaimed after") for p in pings)
            assert all(p.view.buttons[0].value["handoff_id"] == handoff_id for p in pings)
        assert repings(senders["console"]) == []  # the senior's DM copy is not re-pinged
        assert (await sql(one, "SELECT reping_count FROM session_handoffs"))[0][0] == 2


async def _done(h, slots: set[int]) -> bool:
    jobs = await slot_jobs(h)
    return slots <= set(jobs) and all(jobs[s][0] == "done" for s in slots)


async def test_a_claimed_escalation_is_not_pinged_again(db, database_url):
    async with two_processes(database_url, max_pings=3) as (one, two, senders):
        session_id, handoff_id = await escalate_with_senior_channels(one, senders["console"])
        for platform in CHANNELS:
            await senders[platform].wait_for(lambda s=senders[platform]: repings(s), timeout=15)

        claimed = await two.copilot.action(console_inbound(user="U-sen", name="Sam Senior"), "claim",
                                           {"handoff_id": handoff_id, "session_id": session_id})
        assert claimed.ok, claimed.error
        await until(lambda: _done(one, {2}))  # the next slot came due and found it claimed

        assert set(await slot_jobs(one)) == {1, 2}  # and scheduled nothing after it
        for platform in CHANNELS:
            assert len(repings(senders[platform])) == 1
        assert (await sql(one, "SELECT reping_count FROM session_handoffs"))[0][0] == 1
