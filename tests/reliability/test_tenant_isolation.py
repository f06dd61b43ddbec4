"""Promise 7: two Slack workspaces on one FlowPilot are two tenants that never touch each other.

Both workspaces install the app through the real OAuth flow (their own bot tokens, stored by the
installation store) and so become two accounts. Each one runs sessions, notes, fixes, escalations
and re-pings through signed Slack requests. Then each one's people click buttons and submit modals
that carry the OTHER account's session, item, fact, fix and handoff ids (a forged or replayed
payload, signed for their own workspace). What must hold:

- every such action answers "not found" to the person who sent it, in their own workspace, and
  changes nothing (the other account's rows are byte-for-byte the same) and posts nothing in the
  other workspace;
- `queue` lists only the asker's own account's escalations;
- escalation cards and re-pings reach only the account's own senior channel;
- AI turns and summaries (jobs) only ever see their own account's text;
- every Slack call for one workspace's channels uses that workspace's bot token, never the other's.

The long variant (`pytest -m long`) does this with more sessions per workspace and replays every
button of every card of each workspace into the other one."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from adapters.slack.payloads import INPUT_CALLBACK
from storage.secrets import generate_key
from tests.fakes.slack_signing import (
    FORM_CONTENT_TYPE, block_action_body, new_trigger_id, plain_text_values, view_submission_body,
)
from tests.integration.slack_fixtures import SlackBot, slack_bot
from tests.reliability.serve_env import SlackCaller, wait_until

FIRST_REPLY = """Let's narrow it down for {name}.
[QUESTIONS]
[{{"text": "{name}: does it happen for every user?", "context": "scope"}}]
[/QUESTIONS]
[ACTIONS]
[{{"label": "{name}: check the service", "command": "Get-Service {name}", "description": "Shows if it runs"}}]
[/ACTIONS]
[SUGGEST_FIX]
{{"title": "{name}: restart the service", "description": "Restart-Service {name}.", "confidence": 70}}
[/SUGGEST_FIX]"""
NOT_FOUND_ICON = ":mag:"
ACCOUNT_TABLES = ("ai_sessions", "session_messages", "lane_items", "session_facts", "session_suggested_fixes",
                  "session_handoffs", "escalation_routes", "people", "outbox", "jobs", "message_refs")


@dataclass
class Workspace:
    name: str  # "Alpha" / "Bravo": every text this tenant writes contains it
    team_id: str
    admin: str
    engineer: str
    channel: str
    seniors: str
    token: str = ""
    bot_user_id: str = ""
    account_id: str = ""
    caller: SlackCaller | None = None
    sessions: dict[str, str] = field(default_factory=dict)  # title -> header ts

    @property
    def channels(self) -> set[str]:
        return {self.channel, self.seniors}


ALPHA = Workspace("Alpha", "T0ALPHA01", "U0ALPHAADM", "U0ALPHAENG", "C0ALPHA01", "C0ALPHASR")
BRAVO = Workspace("Bravo", "T0BRAVO01", "U0BRAVOADM", "U0BRAVOENG", "C0BRAVO01", "C0BRAVOSR")


def model_reply(body: dict[str, Any]) -> Any:
    """Answers as the tenant whose text it was given; a mixed request would show both names."""
    blob = json.dumps(body)
    names = [w.name for w in (ALPHA, BRAVO) if w.name in blob]
    if "output_config" in body:  # the escalation summary (structured output)
        return {"summary_prose": f"{' '.join(names)} summary", "what_we_know": [], "likely_cause": None,
                "suggested_steps": [], "confidence": "low"}
    if "SUGGEST_FIX" in blob and "restart the service" in blob:  # a later turn: plain answer
        return f"{' '.join(names)}: keep going."
    return FIRST_REPLY.format(name=" ".join(names))


# ----------------------------------------------------------------------------- installing
async def install(bot: SlackBot, ws: Workspace) -> None:
    """The browser's round trip through /slack/install and Slack's redirect back with a code."""
    page = await bot.http.get("/slack/install", allow_redirects=False)
    state = re.search(r"state=([0-9a-f-]+)", await page.text()).group(1)
    cookie = page.headers["Set-Cookie"].split(";")[0]
    code = bot.fake.issue_oauth_code(team_id=ws.team_id, team_name=f"{ws.name} MSP", installer_user_id=ws.admin)
    done = await bot.http.get("/slack/oauth_redirect", params={"code": code, "state": state},
                              headers={"Cookie": cookie}, allow_redirects=False)
    assert done.status == 200, await done.text()
    ws.token = bot.fake.calls_to("oauth.v2.access")[-1].response["access_token"]
    ws.bot_user_id = bot.fake.identity(ws.token).bot_user_id
    async with bot.comps.db.admin.connect() as conn:
        ws.account_id = str((await conn.execute(text(
            "SELECT account_id FROM workspaces WHERE platform = 'slack' AND external_id = :t"),
            dict(t=ws.team_id))).scalar_one())
    for user, real in ((ws.admin, f"{ws.name} Admin"), (ws.engineer, f"{ws.name} Engineer")):
        bot.fake.add_user(user, name=real.lower().replace(" ", "."), real_name=real, team_id=ws.team_id)
    bot.fake.add_channel(ws.channel, f"{ws.name.lower()}-support", team_id=ws.team_id)
    bot.fake.add_channel(ws.seniors, f"{ws.name.lower()}-escalations", team_id=ws.team_id)


# ----------------------------------------------------------------------------- acting in a workspace
def base(bot: SlackBot) -> str:
    return str(bot.http.make_url("")).rstrip("/")


async def command(bot: SlackBot, ws: Workspace, text_: str, *, user: str | None = None, channel: str | None = None):
    sent = await ws.caller.command(base(bot), text_, user_id=user or ws.engineer, channel_id=channel or ws.channel)
    assert sent.accepted, sent
    return sent


async def start_session(bot: SlackBot, ws: Workspace, title: str) -> str:
    await command(bot, ws, f"new {title}")
    header = await bot.fake.wait_for(lambda: [m for m in bot.fake.messages(ws.channel)
                                              if m["ts"] == m.get("thread_ts", m["ts"]) and title in m["text"]])
    ws.sessions[title] = header[0]["ts"]
    await bot.fake.wait_for(lambda: fix_card(bot, ws, title), 15)
    return header[0]["ts"]


async def mention(bot: SlackBot, ws: Workspace, thread_ts: str, text_: str, user: str | None = None) -> None:
    sent = await ws.caller.mention(base(bot), ws.channel, text_, thread_ts=thread_ts, user=user or ws.engineer)
    assert sent.accepted, sent


def in_thread(bot: SlackBot, ws: Workspace, title: str) -> list[dict[str, Any]]:
    ts = ws.sessions[title]
    return [m for m in bot.fake.thread(ws.channel, ts)]


def card_with(bot: SlackBot, ws: Workspace, title: str, action: str) -> dict[str, Any] | None:
    return next((m for m in reversed(in_thread(bot, ws, title)) if any(b["a"] == action for b in buttons(m))), None)


def fix_card(bot: SlackBot, ws: Workspace, title: str) -> dict[str, Any] | None:
    return card_with(bot, ws, title, "fix_applied")


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Each FlowPilot button of a message: {"a": action, "v": ids, "i": input?, "_element": raw}."""
    out = []
    for block in message.get("blocks") or []:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                if element.get("value", "").startswith("{"):
                    out.append({**json.loads(element["value"]), "_element": element})
    return out


async def forged_click(bot: SlackBot, actor_ws: Workspace, user: str, channel: str, button: dict[str, Any],
                       on_message: dict[str, Any]) -> None:
    """A click in `actor_ws` (signed for it, in its channel, on one of its messages) whose button
    carries another account's ids."""
    element = button["_element"]
    clicked = dict(on_message)
    body = block_action_body(action_id=element["action_id"], value=element["value"], button_text="Button",
                             team_id=actor_ws.team_id, user_id=user, channel_id=channel, message=clicked,
                             trigger_id=new_trigger_id())
    sent = await actor_ws.caller.post(base(bot), body, FORM_CONTENT_TYPE, "click")
    assert sent.status == 200, sent


async def forged_submit(bot: SlackBot, actor_ws: Workspace, user: str, opened: dict[str, Any], value: str) -> str:
    body = view_submission_body(callback_id=INPUT_CALLBACK, view_id=opened["id"], team_id=actor_ws.team_id,
                                user_id=user, private_metadata=opened["private_metadata"],
                                values=plain_text_values({opened["blocks"][0]["block_id"]: {"value": value}}))
    sent = await actor_ws.caller.post(base(bot), body, FORM_CONTENT_TYPE, "submit")
    assert sent.status == 200, sent
    return sent.text


# ----------------------------------------------------------------------------- what the database holds
async def account_rows(bot: SlackBot, ws: Workspace) -> dict[str, list]:
    """Everything stored for one account, as plain values (RLS bypassed: the table owner reads)."""
    out = {}
    async with bot.comps.db.admin.connect() as conn:
        for table in ACCOUNT_TABLES:
            rows = (await conn.execute(text(f"SELECT * FROM {table} WHERE account_id = :a ORDER BY 1"),
                                       dict(a=ws.account_id))).mappings().all()
            out[table] = [json.dumps(dict(r), default=str, sort_keys=True) for r in rows]
    return out


async def settled(bot: SlackBot) -> None:
    async def quiet() -> bool:
        async with bot.comps.db.admin.connect() as conn:
            busy = (await conn.execute(text(
                "SELECT (SELECT count(*) FROM jobs WHERE status IN ('pending', 'running') AND run_after < now()) + "
                "(SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending'))"))).scalar_one()
        return busy == 0

    await wait_until(quiet, 30, "jobs and deliveries to settle", every=0.1)


def tokens_used_in(bot: SlackBot, channels: set[str]) -> set[str]:
    used = set()
    for call in bot.fake.calls:
        if str(call.params.get("channel") or "") in channels:
            used.add(call.headers.get("Authorization", "").removeprefix("Bearer "))
    return used


# ----------------------------------------------------------------------------- the scenario
@pytest.fixture
async def two_tenants(db, database_url):
    async with slack_bot(database_url, oauth=True, FLOWPILOT_SECRET_KEY=generate_key(), ESCALATION_REPING_MINUTES=0.02,
                         ESCALATION_REPING_MAX=1) as bot:
        bot.ai.responder = model_reply
        async with aiohttp.ClientSession() as http:
            for ws in (ALPHA, BRAVO):
                ws.caller = SlackCaller(http, team_id=ws.team_id, secret=bot.secret)
                ws.sessions = {}
                await install(bot, ws)
                ws.caller.bot_user_id = ws.bot_user_id
                await command(bot, ws, "seniors here", user=ws.admin, channel=ws.seniors)
            assert ALPHA.account_id != BRAVO.account_id
            yield bot


async def run_tenant(bot: SlackBot, ws: Workspace, titles: list[str], escalate: list[str]) -> None:
    for title in titles:
        ts = await start_session(bot, ws, title)
        await mention(bot, ws, ts, f"note {ws.name} fact: the driver is version 3")
        await bot.fake.wait_for(lambda: card_with(bot, ws, title, "delete_fact"), 15)
    for title in escalate:
        await mention(bot, ws, ws.sessions[title], f"escalate {ws.name} customer is waiting")
        await bot.fake.wait_for(lambda: [m for m in bot.fake.messages(ws.seniors) if title in m["text"]], 15)


def replayable(bot: SlackBot, ws: Workspace) -> list[dict[str, Any]]:
    """Every button on every card this workspace was shown (its ids are this account's)."""
    out = []
    for channel in ws.channels:
        for message in bot.fake.messages(channel):
            out += buttons(message)
    return out


async def replay_into(bot: SlackBot, actor: Workspace, user: str, victim_buttons: list[dict[str, Any]]) -> int:
    """The actor's user clicks each of another account's buttons inside the actor's own workspace (and
    submits the modal when the button asks for text first). Each one must be refused as "not
    found", ephemerally in the actor's channel or on the modal's field. Returns the refusals."""
    anchor = bot.fake.messages(actor.channel)[-1]  # the message they "clicked": one of their own
    before = len(bot.fake.ephemerals(user))
    seen_views = len(bot.fake.views_opened)
    on_field = 0
    for button in victim_buttons:
        await forged_click(bot, actor, user, actor.channel, button, anchor)
        if button.get("i") is not None:  # a modal opened in the actor's workspace: submit it
            opened = (await bot.fake.wait_for(lambda: len(bot.fake.views_opened) > seen_views and
                                              bot.fake.views_opened))[seen_views]
            seen_views += 1
            answer = json.loads(await forged_submit(bot, actor, user, opened, f"{actor.name} typed this"))
            assert answer["response_action"] == "errors", answer
            assert "not found" in json.dumps(answer["errors"]).lower(), answer
            on_field += 1
    expected = len(victim_buttons) - on_field
    notes = await bot.fake.wait_for(lambda: len(bot.fake.ephemerals(user)) >= before + expected
                                    and bot.fake.ephemerals(user)[before:], 20) if expected else []
    assert len(notes) == expected
    for note in notes:
        assert note["text"].startswith(NOT_FOUND_ICON) and "not found" in note["text"].lower(), note["text"]
        assert note["channel"] == actor.channel
    return len(notes) + on_field


async def check_isolation(bot: SlackBot, escalated: dict[str, list[str]]) -> dict[str, int]:
    fake = bot.fake
    # escalation cards and their re-pings only in the account's own seniors' channel
    for ws, other in ((ALPHA, BRAVO), (BRAVO, ALPHA)):
        for title in escalated[ws.name]:
            await fake.wait_for(lambda: [m for m in fake.messages(ws.seniors) if "Still unclaimed" in m["text"]
                                         and title in m["text"]], 20)
        seniors_text = json.dumps(fake.messages(ws.seniors))
        assert other.name not in seniors_text
        for title in escalated[other.name]:
            assert title not in seniors_text
        # all of this workspace's messages were posted by its own bot, with its own token
        assert {m["bot_id"] for c in ws.channels for m in fake.messages(c)} == {fake.identity(ws.token).bot_id}
        assert tokens_used_in(bot, ws.channels) == {ws.token}
        assert not [m for c in ws.channels for m in fake.messages(c) if other.name in m["text"]]
    # jobs: each model request carried one tenant's text only
    for request in bot.ai.requests:
        blob = json.dumps(request.body)
        assert not ("Alpha" in blob and "Bravo" in blob), "a job mixed two accounts' data"
    return {"model_requests": len(bot.ai.requests), "slack_calls": len(fake.calls)}


async def check_queue(bot: SlackBot, escalated: dict[str, list[str]]) -> None:
    for ws, other in ((ALPHA, BRAVO), (BRAVO, ALPHA)):
        before = len(bot.fake.ephemerals(ws.admin))
        await command(bot, ws, "queue", user=ws.admin, channel=ws.seniors)
        shown = (await bot.fake.wait_for(lambda: bot.fake.ephemerals(ws.admin)[before:]))[0]
        listed = json.dumps(shown)
        for title in escalated[ws.name]:
            assert title in listed
        assert other.name not in listed and not any(t in listed for t in escalated[other.name])


async def test_two_workspaces_cannot_read_or_change_each_other(two_tenants) -> None:
    bot = two_tenants
    await run_tenant(bot, ALPHA, ["Alpha printer down", "Alpha scanner jams"], ["Alpha printer down"])
    await run_tenant(bot, BRAVO, ["Bravo VPN flaps", "Bravo mail bounces"], ["Bravo VPN flaps"])
    escalated = {"Alpha": ["Alpha printer down"], "Bravo": ["Bravo VPN flaps"]}
    figures = await check_isolation(bot, escalated)
    await check_queue(bot, escalated)
    await settled(bot)

    # Bravo's people replay Alpha's buttons (and the reverse): not found, nothing changes anywhere
    for victim, actor in ((ALPHA, BRAVO), (BRAVO, ALPHA)):
        victim_before, actor_before = await account_rows(bot, victim), await account_rows(bot, actor)
        victim_calls = len([c for c in bot.fake.calls if c.headers.get("Authorization") == f"Bearer {victim.token}"])
        wanted = {"claim", "skip", "check_done", "delete_fact", "fix_applied", "pause", "resolve", "answer",
                  "add_note", "edit_fact"}
        chosen = {}
        for b in replayable(bot, victim):
            chosen.setdefault(b["a"], b)
        missing = wanted - set(chosen)
        assert not missing, f"{victim.name} cards lack {missing}"
        refused = await replay_into(bot, actor, actor.admin, [chosen[a] for a in sorted(wanted)])
        await settled(bot)
        assert refused == len(wanted)
        assert await account_rows(bot, victim) == victim_before, f"{actor.name} changed {victim.name}'s data"
        assert await account_rows(bot, actor) == actor_before, "a refused action left something behind"
        assert len([c for c in bot.fake.calls if c.headers.get("Authorization") == f"Bearer {victim.token}"]) \
            == victim_calls, f"something was sent into {victim.name}'s workspace"

    # the real owners can still do what the forged clicks could not: the state was untouched
    card = next(m for m in bot.fake.messages(ALPHA.seniors) if any(b["a"] == "claim" for b in buttons(m)))
    claim = next(b for b in buttons(card) if b["a"] == "claim")
    await forged_click(bot, ALPHA, ALPHA.admin, ALPHA.seniors, claim, card)
    await bot.fake.wait_for(lambda: "claimed by" in (bot.fake.message(ALPHA.seniors, card["ts"]) or {}).get("text",
                                                                                                             ""))
    print(f"\nisolation figures: {figures}")


@pytest.mark.long
async def test_every_button_of_every_card_replayed_across_workspaces(two_tenants) -> None:
    bot = two_tenants
    alpha_titles = [f"Alpha issue {n}" for n in range(1, 5)]
    bravo_titles = [f"Bravo issue {n}" for n in range(1, 5)]
    await run_tenant(bot, ALPHA, alpha_titles, alpha_titles[:2])
    await run_tenant(bot, BRAVO, bravo_titles, bravo_titles[1:3])
    escalated = {"Alpha": alpha_titles[:2], "Bravo": bravo_titles[1:3]}
    figures = await check_isolation(bot, escalated)
    await check_queue(bot, escalated)
    await settled(bot)
    replayed = 0
    for victim, actor in ((ALPHA, BRAVO), (BRAVO, ALPHA)):
        victim_before = await account_rows(bot, victim)
        victim_calls = len([c for c in bot.fake.calls if c.headers.get("Authorization") == f"Bearer {victim.token}"])
        every = replayable(bot, victim)
        for user in (actor.admin, actor.engineer):
            replayed += await replay_into(bot, actor, user, every)
        await settled(bot)
        assert await account_rows(bot, victim) == victim_before
        assert len([c for c in bot.fake.calls if c.headers.get("Authorization") == f"Bearer {victim.token}"]) \
            == victim_calls
    print(f"\nLONG isolation run: {figures}, forged actions refused: {replayed}")


# ----------------------------------------------------------------------------- Teams as the other tenant
TEAMS_APP_ID = "5f3c2a1e-7b9d-4c8e-a6f0-2d4b6e8a0c13"
TEAMS_PASSWORD = "fake-client-secret"
TEAMS_TENANT = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d"
TEAMS_CHANNEL = "19:c0ffee00charlie0000000000000000@thread.tacv2"


@dataclass
class TeamsSide:
    issuer: Any
    connector: Any

    def auth(self) -> str:
        return self.issuer.authorization(TEAMS_APP_ID, self.connector.service_url)

    async def post(self, bot: SlackBot, activity: dict[str, Any]) -> tuple[int, Any]:
        async with bot.http.post("/api/messages", data=json.dumps(activity),
                                 headers={"Content-Type": "application/json", "Authorization": self.auth()}) as resp:
            raw = await resp.text()
            return resp.status, (json.loads(raw) if raw and resp.content_type == "application/json" else None)

    def message(self, text_: str) -> dict[str, Any]:
        from tests.fakes.teams import teams_channel_message

        return teams_channel_message(service_url=self.connector.service_url, app_id=TEAMS_APP_ID,
                                     tenant_id=TEAMS_TENANT, text=text_, channel_id=TEAMS_CHANNEL,
                                     message_id=str(next(_teams_ids)))

    def invoke(self, data: dict[str, Any], card_id: str) -> dict[str, Any]:
        from tests.fakes.teams import teams_card_action_invoke

        return teams_card_action_invoke(service_url=self.connector.service_url, app_id=TEAMS_APP_ID,
                                        tenant_id=TEAMS_TENANT, verb=str(data["a"]), data=data,
                                        card_activity_id=card_id, channel_id=TEAMS_CHANNEL)

    def executes(self) -> list[tuple[str, dict[str, Any]]]:
        """(activity id, Action.Execute data) of every button on every card FlowPilot posted in Teams."""
        out = []
        for activity in self.connector.activities():
            for attachment in activity.attachments:
                for node in _walk(attachment.get("content")):
                    if node.get("type") == "Action.Execute" and isinstance(node.get("data"), dict):
                        out.append((activity.id, node["data"]))
        return out

    def texts(self) -> str:
        return json.dumps([a.body for a in self.connector.activities()])


_teams_ids = iter(range(1_790_000_000_001, 1_799_999_999_999))


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def as_teams_data(button: dict[str, Any]) -> dict[str, Any]:
    """A Slack button's payload as a Teams Action.Execute carries it (same `a`/`v`, inputs merged)."""
    data = {"a": button["a"], "v": button["v"]}
    if button.get("i") is not None:
        data.update({"i": "in1", "in1": "Charlie typed this"})
    return data


@pytest.fixture
async def slack_and_teams(db, database_url):
    from tests.fakes.teams import FakeBotConnector, FakeOpenIdIssuer

    async with FakeOpenIdIssuer() as issuer, FakeBotConnector(app_id=TEAMS_APP_ID, app_password=TEAMS_PASSWORD) \
            as connector:
        teams_env = dict(MICROSOFT_APP_ID=TEAMS_APP_ID, MICROSOFT_APP_PASSWORD=TEAMS_PASSWORD,
                         MICROSOFT_APP_TENANT_ID=TEAMS_TENANT, TEAMS_OPENID_METADATA_URL=issuer.metadata_url,
                         TEAMS_TOKEN_ISSUER=issuer.issuer, TEAMS_TOKEN_ENDPOINT=connector.token_url(TEAMS_TENANT))
        async with slack_bot(database_url, oauth=True, FLOWPILOT_SECRET_KEY=generate_key(),
                             ESCALATION_REPING_MINUTES=600, **teams_env) as bot:
            bot.ai.responder = model_reply
            async with aiohttp.ClientSession() as http:
                ALPHA.caller = SlackCaller(http, team_id=ALPHA.team_id, secret=bot.secret)
                ALPHA.sessions = {}
                await install(bot, ALPHA)
                ALPHA.caller.bot_user_id = ALPHA.bot_user_id
                await command(bot, ALPHA, "seniors here", user=ALPHA.admin, channel=ALPHA.seniors)
                yield bot, TeamsSide(issuer, connector)


async def test_a_teams_tenant_and_a_slack_workspace_cannot_reach_each_other(slack_and_teams) -> None:
    bot, teams = slack_and_teams
    await run_tenant(bot, ALPHA, ["Alpha printer down", "Alpha scanner jams"], ["Alpha printer down"])
    status, _ = await teams.post(bot, teams.message("new Charlie mail bounces"))
    assert status == 201
    await teams.connector.wait_for(lambda c: any(d.get("a") == "fix_applied" for _, d in teams.executes()), 15)
    await settled(bot)
    charlie_account = str((await account_rows_by_workspace(bot, "teams", TEAMS_TENANT)))
    assert charlie_account != ALPHA.account_id
    assert "Alpha" not in teams.texts()  # the Teams side never saw Alpha's data

    # Teams people click Alpha's buttons (ids from Alpha's Slack cards): not found, nothing changes
    alpha_before = await account_rows(bot, ALPHA)
    alpha_calls = len([c for c in bot.fake.calls if c.headers.get("Authorization") == f"Bearer {ALPHA.token}"])
    chosen: dict[str, dict[str, Any]] = {}
    for b in replayable(bot, ALPHA):
        chosen.setdefault(b["a"], b)
    card_id = teams.executes()[0][0]  # the click arrives on one of Charlie's own cards
    for action, button in sorted(chosen.items()):
        status, body = await teams.post(bot, teams.invoke(as_teams_data(button), card_id))
        assert status == 200, (action, status)
        assert body["value"] and "not found" in str(body["value"]).lower(), (action, body)
    await settled(bot)
    assert await account_rows(bot, ALPHA) == alpha_before
    assert len([c for c in bot.fake.calls if c.headers.get("Authorization") == f"Bearer {ALPHA.token}"]) \
        == alpha_calls, "a Teams click made something happen in Alpha's Slack"

    # and Alpha's people click Charlie's Teams buttons inside Slack: not found, nothing posted to Teams
    connector_calls = len(teams.connector.calls)
    charlie = [{"a": d["a"], "v": d["v"], "i": ({"n": "text", "l": "Text"} if d.get("i") else None),
                "_element": {"action_id": f"fp:{d['a']}:0",
                             "value": json.dumps({"a": d["a"], "v": d["v"],
                                                  **({"i": {"n": "text", "l": "Text"}} if d.get("i") else {})})}}
               for _, d in teams.executes() if d.get("a") and isinstance(d.get("v"), dict) and d["v"]]
    refused = await replay_into(bot, ALPHA, ALPHA.admin, charlie)
    await settled(bot)
    assert refused == len(charlie) > 0
    assert await account_rows(bot, ALPHA) == alpha_before
    assert len(teams.connector.calls) == connector_calls, "a Slack click made something happen in Teams"

    # queue on each side lists only its own account's escalations
    await check_queue_one(bot, ALPHA, ["Alpha printer down"], forbidden=["Charlie"])
    status, _ = await teams.post(bot, teams.message("queue"))
    assert status == 201
    await teams.connector.wait_for(lambda c: "escalations" in teams.texts().lower(), 15)
    assert "Alpha" not in teams.texts()
    print(f"\nteams/slack isolation: {len(chosen)} Alpha actions refused in Teams, {refused} Teams actions "
          f"refused in Slack")


async def account_rows_by_workspace(bot: SlackBot, platform: str, external_id: str) -> str:
    async with bot.comps.db.admin.connect() as conn:
        return str((await conn.execute(text("SELECT account_id FROM workspaces WHERE platform = :p AND "
                                            "external_id = :e"), dict(p=platform, e=external_id))).scalar_one())


async def check_queue_one(bot: SlackBot, ws: Workspace, titles: list[str], forbidden: list[str]) -> None:
    before = len(bot.fake.ephemerals(ws.admin))
    await command(bot, ws, "queue", user=ws.admin, channel=ws.seniors)
    shown = json.dumps((await bot.fake.wait_for(lambda: bot.fake.ephemerals(ws.admin)[before:]))[0])
    assert all(t in shown for t in titles) and not any(f in shown for f in forbidden)
