"""Teams end to end: the real app (bot.app.create_app) with the real CloudAdapter and JWT validation
against FakeOpenIdIssuer, the real Bot Connector client against FakeBotConnector, real Postgres,
real workers and the real anthropic SDK against FakeAnthropic."""
from __future__ import annotations

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from adapters.teams.inbound import inbound_of
from adapters.teams.payloads import INVOKE_CARD, INVOKE_MESSAGE
from bot.app import create_app
from bot.wiring import build
from core.commands import COMMANDS, parse_command
from core.errors import DeliveryFailed
from core.turns import TURN_JOB
from core.views import TextView
from manifest.build import TEAMS_COMMAND_MENUS, TEAMS_COMMANDS
from tests.fakes.teams import (
    ConnectorConversation,
    FakeBotConnector,
    FakeOpenIdIssuer,
    SigningKey,
    new_signing_key,
    teams_card_action_invoke,
    teams_channel_message,
    teams_install_update,
)
from tests.fakes.anthropic import FakeAnthropic
from tests.harness import FAKE_KEY
from tests.harness import test_settings as harness_settings

APP_ID = "5f3c2a1e-7b9d-4c8e-a6f0-2d4b6e8a0c13"
APP_PASSWORD = "fake-client-secret"
TENANT_ID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d"
ADA_AAD = "6f1a8a9e-0000-4000-8000-00000000ada1"
GRACE_AAD = "6f1a8a9e-0000-4000-8000-0000000grace"

REPLY_WITH_FIX = """The drops line up with the gateway's idle timeout.
[QUESTIONS]
[{"text": "Does it happen on wired connections too?", "context": "scope"}]
[/QUESTIONS]
[ACTIONS]
[{"label": "Gateway idle timeout", "command": "show session-timeout", "description": "Shows the idle reaping value"}]
[/ACTIONS]
[SUGGEST_FIX]
{"title": "Raise the VPN idle timeout", "description": "Set the portal idle timeout to 8 hours.", "confidence": 70}
[/SUGGEST_FIX]"""


class PersonalChatConnector(FakeBotConnector):
    """FakeBotConnector that can also open a 1:1 chat (create conversation with `members`)."""

    def _create_conversation(self, request: web.Request, body: dict) -> web.Response:
        if ((body.get("channelData") or {}).get("channel") or {}).get("id"):
            return super()._create_conversation(request, body)
        tenant_id = body.get("tenantId") or ((body.get("channelData") or {}).get("tenant") or {}).get("id")
        members = body.get("members") or []
        if not tenant_id or len(members) != 1:
            return web.json_response({"error": {"code": "BadArgument", "message": "1:1 needs a member"}}, status=400)
        conversation_id = f"a:1{members[0]['id']}"  # the same chat every time, as in Teams
        self.conversations.setdefault(conversation_id, ConnectorConversation(conversation_id, tenant_id, True, body))
        return web.json_response({"id": conversation_id}, status=201)


@pytest.fixture(scope="module")
async def issuer():
    async with FakeOpenIdIssuer() as fake:
        yield fake


@pytest.fixture(scope="module")
async def connector():
    async with PersonalChatConnector(app_id=APP_ID, app_password=APP_PASSWORD) as fake:
        yield fake


def teams_settings(issuer: FakeOpenIdIssuer, connector: FakeBotConnector, **extra: Any):
    return harness_settings(MICROSOFT_APP_ID=APP_ID, MICROSOFT_APP_PASSWORD=APP_PASSWORD, MICROSOFT_APP_TENANT_ID=TENANT_ID,
                         TEAMS_OPENID_METADATA_URL=issuer.metadata_url, TEAMS_TOKEN_ISSUER=issuer.issuer,
                         TEAMS_TOKEN_ENDPOINT=connector.token_url(TENANT_ID), **extra)


@dataclass
class World:
    h: Any
    server: TestServer
    http: ClientSession
    issuer: FakeOpenIdIssuer
    connector: FakeBotConnector
    channel: str

    @property
    def sender(self):
        return self.h.comps.runtime.senders["teams"]

    def auth(self, **claims: Any) -> str:
        return self.issuer.authorization(claims.pop("audience", APP_ID),
                                         claims.pop("service_url", self.connector.service_url), **claims)

    async def post(self, activity: dict, authorization: str | None | type = ...) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        authorization = self.auth() if authorization is ... else authorization
        if authorization is not None:
            headers["Authorization"] = authorization
        async with self.http.post(self.server.make_url("/api/messages"), data=json.dumps(activity),
                                  headers=headers) as resp:
            raw = await resp.text()
            return resp.status, (json.loads(raw) if raw and resp.content_type == "application/json" else None)

    def message(self, text: str, **kwargs: Any) -> dict:
        kwargs.setdefault("message_id", str(uuid.uuid4().int)[:13])
        return teams_channel_message(service_url=self.connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID,
                                     text=text, channel_id=self.channel, **kwargs)

    def invoke(self, action: dict, card: "Posted", **inputs: str) -> dict:
        return teams_card_action_invoke(
            service_url=self.connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID, verb=action["verb"],
            data={**action["data"], **inputs}, card_activity_id=card.id, channel_id=self.channel,
            thread_root_id=card.thread_root)

    # ---- what the bot posted
    def posted(self, predicate: Callable[["Posted"], bool] = lambda p: True) -> list["Posted"]:
        found = []
        for activity in self.connector.activities():
            if activity.conversation_id.startswith(self.channel) or activity.conversation_id.startswith("a:"):
                post = Posted(activity.id, activity.conversation_id, activity.thread_root_id, activity.kind,
                              activity.body, len(activity.versions))
                if predicate(post):
                    found.append(post)
        return found

    async def wait_posted(self, predicate: Callable[["Posted"], bool], timeout: float = 15.0) -> list["Posted"]:
        await self.connector.wait_for(lambda _: bool(self.posted(predicate)), timeout)
        return self.posted(predicate)

    async def sql(self, query: str, **params: Any) -> Any:
        async with self.h.comps.db.admin.connect() as conn:
            return (await conn.execute(text(query), params)).scalar()


@dataclass
class Posted:
    id: str
    conversation_id: str
    thread_root: str | None
    kind: str
    body: dict
    versions: int

    @property
    def summary(self) -> str:
        return self.body.get("summary") or ""

    @property
    def card(self) -> dict:
        attachments = self.body.get("attachments") or [{}]
        return attachments[0].get("content") or {}

    @property
    def text(self) -> str:
        return card_text(self.card)


def walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def card_text(card: dict) -> str:
    parts = [n.get("text", "") for n in walk(card) if n.get("type") in ("TextBlock", "TextRun")]
    parts += [f"{f['title']}: {f['value']}" for n in walk(card) if n.get("type") == "FactSet" for f in n["facts"]]
    return "\n".join(parts)


def execute(card: dict, verb: str) -> dict:
    return next(n for n in walk(card) if n.get("type") == "Action.Execute" and n["verb"] == verb)


@dataclass
class Running:
    comps: Any
    fake_ai: FakeAnthropic


@contextlib.asynccontextmanager
async def app_server(database_url: str, settings: Any) -> AsyncIterator[tuple[Running, TestServer, ClientSession]]:
    """The production app with these settings; its cleanup closes the components (workers, pools)."""
    fake_ai = await FakeAnthropic(api_key=FAKE_KEY).start()
    try:
        settings = settings.model_copy(update={"anthropic_base_url": fake_ai.url})
        comps = await build(settings, database_url)
        async with TestServer(create_app(settings, components=comps, run_migrations=False), host="127.0.0.1") as server:
            async with ClientSession() as http:
                yield Running(comps, fake_ai), server, http
    finally:
        await fake_ai.stop()


@contextlib.asynccontextmanager
async def serve(database_url: str, issuer, connector, **extra: Any) -> AsyncIterator[World]:
    async with app_server(database_url, teams_settings(issuer, connector, **extra)) as (h, server, http):
        yield World(h, server, http, issuer, connector, f"19:{uuid.uuid4().hex}@thread.tacv2")


@pytest.fixture
async def world(db, database_url, issuer, connector):
    async with serve(database_url, issuer, connector) as w:
        yield w


async def start_session(world: World, problem: str = "VPN drops every 20 minutes #48291") -> dict[str, Posted]:
    world.h.fake_ai.reply_text(REPLY_WITH_FIX)
    status, _ = await world.post(world.message(f"new {problem}"))
    assert status == 201
    return await session_posts(world)


async def session_posts(world: World) -> dict[str, Posted]:
    """Once the first turn is delivered: the header, the AI reply, the lane card and the fix card."""
    await world.wait_posted(lambda p: p.summary.startswith("What we know"))
    await world.wait_posted(lambda p: p.summary.startswith("Suggested fix"))
    await world.wait_posted(lambda p: p.body.get("type") == "message" and "Started a FlowPilot" in p.text)
    [header] = world.posted(lambda p: p.kind == "create")
    [reply] = world.posted(lambda p: p.summary.startswith("The drops line up"))
    [lane] = world.posted(lambda p: p.summary.startswith("What we know"))
    [fix] = world.posted(lambda p: p.summary.startswith("Suggested fix"))
    return {"header": header, "reply": reply, "lane": lane, "fix": fix}


# --------------------------------------------------------------------------- mounting and auth
async def test_inbound_auth_rejects_missing_forged_and_misaddressed_tokens(world):
    impostor = SigningKey(world.issuer.signing_key.kid, new_signing_key().private_key)
    attempts = {
        "no header": None,
        "another key": world.auth(key=impostor),
        "another audience": world.auth(audience="another-bots-app-id"),
    }
    for what, authorization in attempts.items():
        status, _ = await world.post(world.message("new Printer offline"), authorization=authorization)
        assert status == 401, what

    status, _ = await world.post(world.message("help"))

    assert status == 201
    help_reply = await world.wait_posted(lambda p: "FlowPilot commands" in p.text)
    assert len(help_reply) == 1
    assert await world.sql("SELECT count(*) FROM ai_sessions") == 0  # the rejected `new`s did nothing


async def test_without_an_app_id_the_endpoint_is_not_served(db, database_url, caplog):
    caplog.set_level(logging.INFO, logger="adapters.teams.mount")
    async with app_server(database_url, harness_settings()) as (h, server, http):
        async with http.post(server.make_url("/api/messages"), json={"type": "message"}) as resp:
            assert resp.status == 404
        assert "teams" not in h.comps.runtime.senders
    assert any("APP_ID is empty" in r.getMessage() and "/api/messages is not served" in r.getMessage()
               for r in caplog.records)


async def test_insecure_dev_mode_on_loopback_serves_without_authentication(db, database_url, connector):
    settings = harness_settings(FLOWPILOT_TEAMS_INSECURE_DEV="1", HOST="127.0.0.1")
    async with app_server(database_url, settings) as (h, server, http):
        activity = teams_channel_message(service_url=connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID,
                                         text="help", message_id="1700000000777")
        async with http.post(server.make_url("/api/messages"), json=activity) as resp:
            assert resp.status == 201
        async with h.comps.db.admin.connect() as conn:
            seen = (await conn.execute(text("SELECT count(*) FROM inbound_events WHERE event_id = :e"),
                                       {"e": "1700000000777"})).scalar()
    assert seen == 1


# --------------------------------------------------------------------------- a session in a channel
async def test_new_in_a_channel_posts_header_reply_and_lane_in_a_new_thread(world):
    mention = world.message("new VPN drops every 20 minutes #48291")
    world.h.fake_ai.reply_text(REPLY_WITH_FIX)

    status, _ = await world.post(mention)

    assert status == 201
    posts = await session_posts(world)
    header, reply, lane = posts["header"], posts["reply"], posts["lane"]
    thread = header.conversation_id
    assert thread == f"{world.channel};messageid={header.id}"  # a new reply chain in that channel
    assert "VPN drops every 20 minutes" in header.text and "CW #48291" in header.text
    assert header.card["version"] == "1.5"
    assert {reply.conversation_id, lane.conversation_id} == {thread}
    assert reply.thread_root == lane.thread_root == header.id
    assert "Does it happen on wired connections too?" in lane.text
    assert "show session-timeout" in lane.text
    # the person who asked sees where it went, and a typing indicator while the AI works
    asked_in = f"{world.channel};messageid={mention['id']}"
    in_their_thread = [p for p in world.posted() if p.conversation_id == asked_in]
    assert [p.body["type"] for p in in_their_thread] == ["typing", "message"]
    assert "Started a FlowPilot session" in in_their_thread[1].text
    assert len(world.h.fake_ai.requests) == 1


async def test_action_execute_on_the_fix_card_returns_the_updated_card(world):
    posts = await start_session(world)
    fix = posts["fix"]
    applied = execute(fix.card, "fix_applied")
    assert applied["data"]["v"]["v"].isdigit() and applied["data"]["v"]["fix_id"]

    status, body = await world.post(world.invoke(applied, fix))

    assert status == 200
    assert body["statusCode"] == 200 and body["type"] == INVOKE_CARD
    card = body["value"]
    assert card["version"] == "1.5" and "Applied — verifying" in card_text(card)
    assert "Marked as applied" in card_text(card)  # the clicker's confirmation
    assert {"fix_worked", "fix_failed", "fix_partial", "fix_pending"} <= {
        n["verb"] for n in walk(card) if n.get("type") == "Action.Execute"}
    # everyone else's copy is edited in place by the outbox
    await world.wait_posted(lambda p: p.id == fix.id and "Applied — verifying" in p.text)
    status_row = await world.sql("SELECT status FROM session_suggested_fixes WHERE id = :i",
                                 i=uuid.UUID(applied["data"]["v"]["fix_id"]))
    assert status_row == "proposed"  # applied, outcome not recorded yet (DOMAIN §3.3)
    assert await world.sql("SELECT applied_at IS NOT NULL FROM session_suggested_fixes") is True


async def test_an_error_comes_back_as_a_message_and_leaves_the_card(world):
    posts = await start_session(world)
    applied = execute(posts["fix"].card, "fix_applied")
    stale = {**applied, "data": {**applied["data"], "v": {**applied["data"]["v"], "fix_id": str(uuid.uuid4())}}}

    status, body = await world.post(world.invoke(stale, posts["fix"]))

    assert status == 200
    assert body["type"] == INVOKE_MESSAGE and body["value"].startswith("⚠️")


async def test_the_same_activity_delivered_twice_has_one_effect(world):
    world.h.fake_ai.reply_text(REPLY_WITH_FIX)
    mention = world.message("new Outlook keeps asking for the password")

    first, _ = await world.post(mention)
    again, _ = await world.post(mention)  # Teams redelivers a slow activity with the same id

    assert (first, again) == (201, 201)
    await world.wait_posted(lambda p: p.summary.startswith("What we know"))
    await world.wait_posted(lambda p: p.summary.startswith("Suggested fix"))
    assert await world.sql("SELECT count(*) FROM ai_sessions") == 1
    assert await world.sql("SELECT count(*) FROM jobs WHERE kind = :k", k=TURN_JOB) == 1
    assert len(world.posted(lambda p: p.kind == "create")) == 1
    assert len(world.h.fake_ai.requests) == 1


async def test_a_redelivered_click_answers_the_same_and_adds_one_note(world):
    posts = await start_session(world)
    lane = posts["lane"]
    add_note = execute(lane.card, "add_note")
    click = world.invoke(add_note, lane, **{add_note["data"]["i"]: "Only laptops on the 5 GHz band drop"})

    first = await world.post(click)
    again = await world.post(click)

    assert first[0] == again[0] == 200
    assert first[1] == again[1] and first[1]["type"] == INVOKE_CARD
    assert "Only laptops on the 5 GHz band drop" in card_text(first[1]["value"])
    assert await world.sql("SELECT count(*) FROM session_facts WHERE text = :t",
                           t="Only laptops on the 5 GHz band drop") == 1


async def test_action_submit_fallback_acts_and_updates_the_clicked_card(world):
    posts = await start_session(world)
    lane = posts["lane"]
    add_note = execute(lane.card, "add_note")
    submit = world.message("")  # a message activity with the card's data as `value`, no mention
    submit.update(text="", entities=[], replyToId=lane.id,
                  value={**add_note["fallback"]["data"], add_note["data"]["i"]: "Wired clients never drop"},
                  conversation={**submit["conversation"], "id": lane.conversation_id})

    status, _ = await world.post(submit)

    assert status == 201
    await world.wait_posted(lambda p: p.id == lane.id and "Wired clients never drop" in p.text)
    assert await world.sql("SELECT count(*) FROM session_facts WHERE text = 'Wired clients never drop'") == 1


async def test_a_turn_in_the_session_thread_goes_to_the_model(world):
    posts = await start_session(world)
    header = posts["header"]
    world.h.fake_ai.reply_text("Then it is the band steering.\n[QUESTIONS]\n[{\"text\": \"Is band steering on?\"}]\n"
                               "[/QUESTIONS]")

    status, _ = await world.post(world.message("It only happens on 5 GHz", thread_root_id=header.id))

    assert status == 201
    reply = await world.wait_posted(lambda p: "band steering" in p.summary)
    assert reply[0].conversation_id == header.conversation_id
    assert "It only happens on 5 GHz" in json.dumps(world.h.fake_ai.requests[-1].body)


# --------------------------------------------------------------------------- chats and commands
async def test_a_personal_chat_is_a_session_without_mentions(world):
    world.h.fake_ai.reply_text("Let's check the spooler.\n[ACTIONS]\n[{\"label\": \"Spooler\", \"command\": "
                               "\"Get-Service Spooler\", \"description\": \"running?\"}]\n[/ACTIONS]")
    chat_id = f"a:1{uuid.uuid4().hex}"
    message = world.message("Printer queue stuck on PRN-4")
    message.update(text="Printer queue stuck on PRN-4", entities=[],
                   conversation={"conversationType": "personal", "tenantId": TENANT_ID, "id": chat_id},
                   channelData={"tenant": {"id": TENANT_ID}})

    status, _ = await world.post(message)

    assert status == 201
    await world.connector.wait_for(lambda c: any("What we know" in (a.body.get("summary") or "")
                                                 for a in c.activities(chat_id)), 15)
    summaries = [a.body.get("summary") for a in world.connector.activities(chat_id)]
    assert any(s and s.startswith("Printer queue stuck on PRN-4") for s in summaries)  # the header
    assert any(s and s.startswith("Let's check the spooler") for s in summaries)


async def test_role_command_resolves_the_mentioned_person(db, database_url, issuer, connector):
    async with serve(database_url, issuer, connector, FLOWPILOT_ADMINS=ADA_AAD) as world:
        grace = dict(user_id="29:1GraceUser", user_name="Grace Hopper", aad_object_id=GRACE_AAD)
        await world.post(world.message("help", **grace))
        role = world.message("role <at>Grace Hopper</at> senior")
        role["text"] = "<at>FlowPilot</at> role <at>Grace Hopper</at> senior"
        role["entities"].append({"type": "mention", "text": "<at>Grace Hopper</at>",
                                 "mentioned": {"id": "29:1GraceUser", "name": "Grace Hopper"}})

        status, _ = await world.post(role)

        assert status == 201
        await world.wait_posted(lambda p: "Grace Hopper is now senior" in p.text)
        assert await world.sql("SELECT role FROM people WHERE display_name = 'Grace Hopper'") == "senior"


async def test_the_bot_name_inside_the_text_is_kept(world):
    world.h.fake_ai.reply_text("Noted.\n[QUESTIONS]\n[{\"text\": \"Which version?\"}]\n[/QUESTIONS]")

    await world.post(world.message("new FlowPilot sync fails for FlowPilot users"))

    await world.wait_posted(lambda p: p.kind == "create")
    assert await world.sql("SELECT title FROM ai_sessions") == "FlowPilot sync fails for FlowPilot users"


def test_the_teams_command_menus_offer_exactly_the_core_commands():
    assert sorted(TEAMS_COMMANDS) == sorted(COMMANDS)
    for scope, menu in TEAMS_COMMAND_MENUS.items():
        assert set(menu) <= set(COMMANDS), scope
    for title in TEAMS_COMMANDS:  # what the menu inserts is what the parser understands
        assert parse_command(f"{title} something").name == title


# --------------------------------------------------------------------------- proactive delivery
async def test_install_lets_the_outbox_start_a_thread_in_that_team(world):
    team_id = f"19:{uuid.uuid4().hex}@thread.tacv2"
    install = teams_install_update(service_url=world.connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID,
                                   team_id=team_id)
    status, _ = await world.post(install)
    assert status == 201

    ref = await world.sender.post({"platform": "teams", "workspace_id": TENANT_ID, "channel_id": team_id},
                                  TextView(kind="notice", text="Escalations will be posted here."))

    assert ref["channel_id"] == team_id and ref["thread_id"] == f"{team_id};messageid={ref['activity_id']}"
    created = world.connector.conversations[ref["thread_id"]]
    assert created.created_by_bot and created.tenant_id == TENANT_ID
    reply = await world.sender.post({"platform": "teams", "workspace_id": TENANT_ID, "channel_id": team_id,
                                     "thread_id": ref["thread_id"]}, TextView(text="A reply in that thread"))
    assert world.connector.activity(reply["activity_id"]).thread_root_id == ref["activity_id"]
    await world.sender.update(ref, TextView(text="Edited"))
    assert "Edited" in card_text(world.connector.activity(ref["activity_id"]).body["attachments"][0]["content"])


async def test_a_dm_opens_a_personal_chat_once_and_reuses_it(world):
    await world.post(world.message("help"))  # Ada is now known, with her service URL
    creates_before = sum(c.method == "POST" and c.path.endswith("/v3/conversations") for c in world.connector.calls)

    first = await world.sender.post({"platform": "teams", "workspace_id": TENANT_ID, "user_id": ADA_AAD},
                                    TextView(text="You have an escalation to look at."))
    second = await world.sender.post({"platform": "teams", "workspace_id": TENANT_ID, "user_id": ADA_AAD},
                                     TextView(text="Still waiting."))

    assert first["conversation_id"] == second["conversation_id"] == "a:129:1aBcDeFgUser"
    creates = sum(c.method == "POST" and c.path.endswith("/v3/conversations") for c in world.connector.calls)
    assert creates - creates_before == 1
    texts = [card_text(a.body["attachments"][0]["content"]) for a in world.connector.activities("a:129:1aBcDeFgUser")]
    assert any("escalation to look at" in t for t in texts) and any("Still waiting" in t for t in texts)


async def test_delivery_failures_tell_the_outbox_whether_to_retry(world):
    await world.post(world.message("help"))
    await world.wait_posted(lambda p: "FlowPilot commands" in p.text)  # nothing else in flight
    thread = {"platform": "teams", "workspace_id": TENANT_ID, "channel_id": world.channel,
              "thread_id": f"{world.channel};messageid=1700000000001"}

    world.connector.fail_next(status=403)
    with pytest.raises(DeliveryFailed) as blocked:
        await world.sender.post(thread, TextView(text="x"))
    world.connector.fail_next(status=429, retry_after=120)
    with pytest.raises(DeliveryFailed) as throttled:
        await world.sender.post(thread, TextView(text="x"))
    with pytest.raises(DeliveryFailed) as unknown:
        await world.sender.post({"platform": "teams", "workspace_id": TENANT_ID, "channel_id": "19:nobody@thread.tacv2"},
                                TextView(text="x"))

    assert (blocked.value.permanent, blocked.value.status) == (True, 403)
    assert (throttled.value.permanent, throttled.value.retry_after, throttled.value.status) == (False, 120, 429)
    assert unknown.value.permanent and "no conversation reference" in str(unknown.value)


async def test_editing_a_message_that_is_gone_is_a_permanent_failure(world):
    await world.post(world.message("help"))
    [help_reply] = await world.wait_posted(lambda p: "FlowPilot commands" in p.text)
    ref = {"channel_id": world.channel, "thread_id": help_reply.conversation_id, "activity_id": "1699999999999",
           "conversation_id": help_reply.conversation_id, "service_url": world.connector.service_url}

    with pytest.raises(DeliveryFailed) as gone:
        await world.sender.update(ref, TextView(text="x"))

    assert (gone.value.permanent, gone.value.status) == (True, 404)


# --------------------------------------------------------------------------- where a message comes from
def _activity(**changes: Any) -> dict:
    base = teams_channel_message(service_url="https://smba.example/amer/", app_id=APP_ID, tenant_id=TENANT_ID,
                                 text="x", channel_id="19:chan@thread.tacv2", message_id="1700000000500")
    base.update(changes)
    return base


def test_a_channel_post_is_its_own_thread_and_a_reply_joins_its_root():
    root_post = _activity(conversation={"conversationType": "channel", "tenantId": TENANT_ID,
                                        "id": "19:chan@thread.tacv2"})
    reply = _activity(conversation={"conversationType": "channel", "tenantId": TENANT_ID,
                                    "id": "19:chan@thread.tacv2;messageid=1700000000001"})

    posted, replied = inbound_of(root_post), inbound_of(reply)

    assert (posted.where.channel_id, posted.where.thread_id) == (
        "19:chan@thread.tacv2", "19:chan@thread.tacv2;messageid=1700000000500")
    assert (replied.where.channel_id, replied.where.thread_id) == (
        "19:chan@thread.tacv2", "19:chan@thread.tacv2;messageid=1700000000001")
    assert (posted.actor.user_id, posted.actor.display_name, posted.event_id) == (
        ADA_AAD, "Ada Engineer", "1700000000500")
    assert posted.actor.workspace_id == posted.where.workspace_id == TENANT_ID


def test_a_chat_is_one_thread():
    for kind, chat_id in (("personal", "a:1chat"), ("groupChat", "19:group@thread.v2")):
        chat = _activity(conversation={"conversationType": kind, "tenantId": TENANT_ID, "id": chat_id},
                         channelData={"tenant": {"id": TENANT_ID}})
        where = inbound_of(chat).where
        assert (where.channel_id, where.thread_id) == (chat_id, chat_id)


def test_a_person_without_an_entra_id_is_their_channel_account():
    activity = _activity(**{"from": {"id": "29:guest", "name": "Guest"}})
    assert inbound_of(activity).actor.user_id == "29:guest"
    assert inbound_of(_activity(channelData={}, conversation={"id": "19:x@thread.tacv2"})) is None  # no tenant
