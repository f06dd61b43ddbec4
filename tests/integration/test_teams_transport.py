"""Teams transport against real HTTP fakes: the SDK's own JWT validation runs against FakeOpenIdIssuer,
the real CloudAdapter/ConnectorClient talk to FakeBotConnector, and outbound tokens come from the
fake's token endpoint. botbuilder is imported here only to play the bot (an ActivityHandler), which
is what produces the invoke bodies the endpoint must serialise."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.schema import Activity, ActivityTypes, AdaptiveCardInvokeResponse
from botframework.connector.auth import AppCredentials, ServiceClientCredentialsFactory

from adapters.teams.auth import CachedCredentialsFactory, TeamsAuthSettings, build_cloud_adapter, sdk_auth_config
from adapters.teams.endpoint import make_messages_handler, teams_enabled
from adapters.teams.sender import RetryPolicy, TeamsDeliveryError, TeamsSender
from tests.fakes.teams import (
    FakeBotConnector,
    FakeOpenIdIssuer,
    SigningKey,
    new_signing_key,
    teams_card_action_invoke,
    teams_channel_message,
    teams_install_update,
)

APP_ID = "5f3c2a1e-7b9d-4c8e-a6f0-2d4b6e8a0c13"
APP_PASSWORD = "fake-client-secret"
TENANT_ID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


class RecordingBot(ActivityHandler):
    """Records every activity and conversation reference; answers Action.Execute with a card."""

    def __init__(self) -> None:
        self.seen: list[Activity] = []
        self.references: list[dict] = []

    async def on_turn(self, turn_context: TurnContext) -> None:
        self.seen.append(turn_context.activity)
        self.references.append(TurnContext.get_conversation_reference(turn_context.activity).serialize())
        await super().on_turn(turn_context)

    async def on_adaptive_card_invoke(self, turn_context, invoke_value) -> AdaptiveCardInvokeResponse:
        card = {"type": "AdaptiveCard", "version": "1.5",
                "body": [{"type": "TextBlock", "text": f"Claimed via {invoke_value.action['verb']}"}]}
        return AdaptiveCardInvokeResponse(status_code=200, type=CARD_TYPE, value=card)


@pytest.fixture(scope="module")
async def issuer():
    async with FakeOpenIdIssuer() as fake:
        yield fake


@pytest.fixture(scope="module")
async def connector():
    async with FakeBotConnector(app_id=APP_ID, app_password=APP_PASSWORD) as fake:
        yield fake


@pytest.fixture(scope="module")
def settings(issuer, connector) -> TeamsAuthSettings:
    return TeamsAuthSettings(app_id=APP_ID, app_password=APP_PASSWORD, tenant_id=TENANT_ID,
                             openid_metadata_url=issuer.metadata_url, token_issuer=issuer.issuer,
                             token_endpoint=connector.token_url(TENANT_ID))


@pytest.fixture
def adapter(settings):
    return build_cloud_adapter(settings)  # fresh per test: its token cache starts empty


@pytest.fixture
def bot() -> RecordingBot:
    return RecordingBot()


@pytest.fixture
async def endpoint(adapter, bot):
    app = web.Application()
    app.router.add_post("/api/messages", make_messages_handler(adapter, bot.on_turn))
    app.router.add_post("/sdk/messages", lambda request: adapter.process(request, bot))
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
        yield _Endpoint(server, session)


class _Endpoint:
    def __init__(self, server: TestServer, session: ClientSession) -> None:
        self._server = server
        self._session = session

    async def post(self, activity: Any = None, *, authorization: str | None = None, raw: str | None = None,
                   content_type: str | None = "application/json", path: str = "/api/messages"):
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        if content_type is not None:
            headers["Content-Type"] = content_type
        data = raw if raw is not None else json.dumps(activity)
        async with self._session.post(self._server.make_url(path), data=data.encode(), headers=headers) as resp:
            text = await resp.text()
            body = json.loads(text) if text and resp.content_type == "application/json" else None
            return resp.status, body


def _message(connector: FakeBotConnector, **kwargs: Any) -> dict:
    return teams_channel_message(service_url=connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID, **kwargs)


def _auth(signer: FakeOpenIdIssuer, connector: FakeBotConnector, **claims: Any) -> str:
    return signer.authorization(claims.pop("audience", APP_ID), claims.pop("service_url", connector.service_url),
                                **claims)


# --------------------------------------------------------------------------- inbound authentication
async def test_missing_authorization_is_rejected_and_the_bot_never_runs(endpoint, connector, bot):
    status, _ = await endpoint.post(_message(connector))
    blank_status, _ = await endpoint.post(_message(connector), authorization="  ")
    assert (status, blank_status) == (401, 401)
    assert bot.seen == []


async def test_token_signed_with_a_key_that_is_not_published_is_rejected(endpoint, issuer, connector, bot):
    impostor = SigningKey(issuer.signing_key.kid, new_signing_key().private_key)  # same kid, other key
    forged, _ = await endpoint.post(_message(connector), authorization=_auth(issuer, connector, key=impostor))
    unknown_kid, _ = await endpoint.post(_message(connector),
                                         authorization=_auth(issuer, connector, key=new_signing_key()))
    assert (forged, unknown_kid) == (401, 401)
    assert bot.seen == []


@pytest.mark.parametrize("claims", [
    {"audience": "another-bots-app-id"},
    {"issuer": "https://issuer.invalid"},
    {"service_url": "https://smba.trafficmanager.net/emea/"},
    {"expires_in": -600},  # expired beyond the SDK's 5-minute clock tolerance
], ids=["wrong-audience", "wrong-issuer", "other-service-url", "expired"])
async def test_token_with_wrong_claims_is_rejected(endpoint, issuer, connector, bot, claims):
    status, _ = await endpoint.post(_message(connector), authorization=_auth(issuer, connector, **claims))
    assert status == 401
    assert bot.seen == []


async def test_key_not_endorsed_for_the_activity_channel_is_rejected(endpoint, issuer, connector, bot):
    activity = {**_message(connector), "channelId": "slack"}  # issuer keys endorse msteams/webchat/emulator
    status, _ = await endpoint.post(activity, authorization=_auth(issuer, connector))
    assert status == 401
    assert bot.seen == []


@pytest.mark.parametrize("token", ["Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer"])
async def test_garbage_authorization_is_401_not_500(endpoint, connector, token):
    status, _ = await endpoint.post(_message(connector), authorization=token)
    assert status == 401


async def test_valid_channel_token_runs_the_bot_turn(endpoint, issuer, connector, bot):
    activity = _message(connector, text="printer offline at site 4")
    status, _ = await endpoint.post(activity, authorization=_auth(issuer, connector))
    assert status == 201
    [seen] = bot.seen
    assert seen.text == "<at>FlowPilot</at> printer offline at site 4"
    assert seen.caller_id == "urn:botframework:azure"
    assert [entity.type for entity in seen.entities][0] == "mention"
    assert seen.channel_data["tenant"]["id"] == TENANT_ID
    assert bot.references[0]["serviceUrl"] == connector.service_url


async def test_install_update_is_accepted(endpoint, issuer, connector, bot):
    install = teams_install_update(service_url=connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID)
    status, _ = await endpoint.post(install, authorization=_auth(issuer, connector))
    assert status == 201
    assert bot.seen[0].members_added[0].id == f"28:{APP_ID}"


async def test_signing_keys_are_downloaded_once_and_reused(endpoint, issuer, connector):
    await endpoint.post(_message(connector), authorization=_auth(issuer, connector))
    before = issuer.jwks_requests
    for _ in range(3):
        status, _ = await endpoint.post(_message(connector), authorization=_auth(issuer, connector))
        assert status == 201
    assert issuer.jwks_requests == before == 1


async def test_unreachable_signing_keys_answer_503_not_401(settings, issuer, connector):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_metadata = f"http://127.0.0.1:{probe.getsockname()[1]}/v1/.well-known/openidconfiguration"
    bot = RecordingBot()
    adapter = build_cloud_adapter(replace(settings, openid_metadata_url=dead_metadata))
    app = web.Application()
    app.router.add_post("/api/messages", make_messages_handler(adapter, bot.on_turn))
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
        headers = {"Authorization": _auth(issuer, connector)}
        async with session.post(server.make_url("/api/messages"), json=_message(connector), headers=headers) as resp:
            assert resp.status == 503  # our outage, not a bad token: 401 would blame the caller
    assert bot.seen == []


# --------------------------------------------------------------------------- invokes and bad input
async def test_action_execute_returns_the_card_once_serialised_with_200(endpoint, issuer, connector):
    invoke = teams_card_action_invoke(service_url=connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID,
                                      verb="claimHandoff", data={"handoff_id": "h-1", "v": 3})
    status, body = await endpoint.post(invoke, authorization=_auth(issuer, connector))
    assert status == 200
    assert body["statusCode"] == 200
    assert body["type"] == CARD_TYPE
    assert body["value"]["body"][0]["text"] == "Claimed via claimHandoff"


async def test_the_sdk_process_method_fails_that_same_invoke(endpoint, issuer, connector):
    # Why make_messages_handler exists: CloudAdapter.process serialises the dict body again (4.17.1).
    invoke = teams_card_action_invoke(service_url=connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID,
                                      verb="claimHandoff")
    status, _ = await endpoint.post(invoke, authorization=_auth(issuer, connector), path="/sdk/messages")
    assert status == 500


async def test_invoke_body_given_as_an_sdk_model_is_serialised(adapter, issuer, connector):
    async def turn(turn_context: TurnContext) -> None:
        model = AdaptiveCardInvokeResponse(status_code=200, type=CARD_TYPE, value={"type": "AdaptiveCard"})
        await turn_context.send_activity(Activity(type=ActivityTypes.invoke_response,
                                                  value=InvokeResponse(status=200, body=model)))

    app = web.Application()
    app.router.add_post("/api/messages", make_messages_handler(adapter, turn))
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
        invoke = teams_card_action_invoke(service_url=connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID,
                                          verb="refresh")
        headers = {"Authorization": _auth(issuer, connector)}
        async with session.post(server.make_url("/api/messages"), json=invoke, headers=headers) as resp:
            assert resp.status == 200
            assert await resp.json() == {"statusCode": 200, "type": CARD_TYPE, "value": {"type": "AdaptiveCard"}}


async def test_unhandled_invoke_name_is_501(endpoint, issuer, connector):
    invoke = {**teams_card_action_invoke(service_url=connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID,
                                         verb="x"), "name": "composeExtension/query"}
    status, _ = await endpoint.post(invoke, authorization=_auth(issuer, connector))
    assert status == 501


@pytest.mark.parametrize("raw", [
    '{"type": "message", ',  # truncated JSON
    "[1, 2, 3]",  # not an object
    '{"type": "message", "from": "bob", "serviceUrl": "http://x/"}',  # does not deserialize
    '{"text": "no type", "serviceUrl": "http://x/"}',
    '{"type": "message", "text": "no service url"}',
    "",
], ids=["truncated", "array", "bad-from", "no-type", "no-service-url", "empty"])
async def test_malformed_activity_is_400(endpoint, issuer, connector, bot, raw):
    status, body = await endpoint.post(raw=raw, authorization=_auth(issuer, connector))
    assert status == 400
    assert body["error"]
    assert bot.seen == []


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
async def test_wrong_content_type_is_415(endpoint, issuer, connector, bot, content_type):
    status, _ = await endpoint.post(_message(connector), authorization=_auth(issuer, connector),
                                    content_type=content_type)
    assert status == 415
    assert bot.seen == []


async def test_inbound_turn_still_succeeds_while_the_token_endpoint_is_down(endpoint, issuer, connector, bot):
    connector.fail_token_next(503, times=5)
    try:
        status, _ = await endpoint.post(_message(connector), authorization=_auth(issuer, connector))
    finally:
        connector.clear_faults()
    assert status == 201
    assert len(bot.seen) == 1


# --------------------------------------------------------------------------- enabling and dev mode
@pytest.mark.parametrize("host, insecure, expected", [
    ("127.0.0.1", True, True), ("localhost", True, True), ("::1", True, True), ("[::1]", True, True),
    ("0.0.0.0", True, False), ("10.1.2.3", True, False), ("bot.example.com", True, False),
    ("127.0.0.1", False, False),
])
def test_teams_without_app_id_is_only_enabled_for_loopback_insecure_dev(host, insecure, expected):
    enabled, reason = teams_enabled(TeamsAuthSettings(), insecure, host)
    assert enabled is expected
    assert reason


def test_teams_with_an_app_id_is_enabled_anywhere(settings):
    assert teams_enabled(settings, False, "0.0.0.0")[0] is True


def test_adapter_refuses_to_skip_authentication_unless_told_to():
    with pytest.raises(ValueError, match="APP_ID is empty"):
        build_cloud_adapter(TeamsAuthSettings())


@pytest.mark.parametrize("settings_kwargs, problem", [
    ({"app_password": "", "tenant_id": TENANT_ID}, "APP_PASSWORD"),
    ({"app_password": "x", "tenant_id": ""}, "APP_TENANTID"),
    ({"app_password": "x", "tenant_id": TENANT_ID, "app_type": "Sideways"}, "APP_TYPE"),
])
def test_incomplete_configuration_fails_loudly(settings_kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        build_cloud_adapter(TeamsAuthSettings(app_id=APP_ID, **settings_kwargs))


async def test_insecure_dev_adapter_accepts_unauthenticated_posts(connector):
    bot = RecordingBot()
    adapter = build_cloud_adapter(TeamsAuthSettings(), allow_unauthenticated=True)
    app = web.Application()
    app.router.add_post("/api/messages", make_messages_handler(adapter, bot.on_turn))
    async with TestServer(app, host="127.0.0.1") as server, ClientSession() as session:
        async with session.post(server.make_url("/api/messages"), json=_message(connector)) as resp:
            assert resp.status == 201
    assert len(bot.seen) == 1


# --------------------------------------------------------------------------- proactive sends
class _Sleeps:
    """Records the backoff the sender asks for instead of waiting it out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleeps() -> _Sleeps:
    return _Sleeps()


@pytest.fixture
def sender(adapter, sleeps) -> TeamsSender:
    return TeamsSender(adapter, APP_ID, retry=RetryPolicy(max_attempts=4, base_delay_s=0.2, max_delay_s=10),
                       sleep=sleeps)


async def _inbound_reference(endpoint, issuer, connector, bot, **kwargs: Any) -> dict:
    status, _ = await endpoint.post(_message(connector, **kwargs), authorization=_auth(issuer, connector))
    assert status == 201
    return bot.references[-1]


async def test_replies_and_update_reach_the_connector_with_one_fetched_token(
        endpoint, issuer, connector, bot, sender):
    token_requests_before = len(connector.token_requests)
    reference = await _inbound_reference(endpoint, issuer, connector, bot, message_id="1700000000100")

    first = await sender.reply_in_conversation(reference, {"type": "message", "text": "Working on it…"})
    second = await sender.reply_in_conversation(reference, {"type": "message", "text": "Still checking"})
    await asyncio.gather(*(sender.reply_in_conversation(reference, {"type": "message", "text": f"burst {n}"})
                           for n in range(3)))
    await sender.update_activity(reference, first, {"type": "message", "text": "Done: printer spooler restarted"})

    thread = reference["conversation"]["id"]
    assert [a.versions[0]["text"] for a in connector.activities(thread)][:2] == ["Working on it…", "Still checking"]
    assert len(connector.activities(thread)) == 5
    assert connector.activity(first).versions[-1]["text"] == "Done: printer spooler restarted"
    assert connector.activity(first).thread_root_id == "1700000000100"
    assert connector.activity(first).kind == "reply"
    assert connector.activity(first).reply_to_id == "1700000000100"  # the message the reference points at
    assert connector.activity(second).body["from"]["id"] == f"28:{APP_ID}"
    new_token_requests = connector.token_requests[token_requests_before:]
    assert len(new_token_requests) == 1
    assert new_token_requests[0] == {"grant_type": "client_credentials", "client_id": APP_ID,
                                     "scope": "https://api.botframework.com/.default", "tenant": TENANT_ID}
    connector_calls = connector.connector_calls()[-6:]
    assert all(call.status in (200, 201) for call in connector_calls)
    assert len({call.authorization for call in connector_calls}) == 1


async def test_429_then_success_records_exactly_one_activity(endpoint, issuer, connector, bot, sender, sleeps):
    reference = await _inbound_reference(endpoint, issuer, connector, bot)
    thread = reference["conversation"]["id"]
    connector.fail_next(status=429, retry_after=2)

    activity_id = await sender.reply_in_conversation(reference, {"type": "message", "text": "after throttling"})

    assert [a.id for a in connector.activities(thread)] == [activity_id]
    assert len(sleeps.delays) == 1 and 2 <= sleeps.delays[0] < 2.5  # Retry-After honoured, plus jitter


async def test_update_retries_a_502_itself_and_msrest_does_not_retry_underneath(
        endpoint, issuer, connector, bot, sender, sleeps):
    reference = await _inbound_reference(endpoint, issuer, connector, bot)
    activity_id = await sender.reply_in_conversation(reference, {"type": "message", "text": "v1"})
    puts_before = sum(call.method == "PUT" for call in connector.calls)
    connector.fail_next(status=502)

    await sender.update_activity(reference, activity_id, {"type": "message", "text": "v2"})

    assert sum(call.method == "PUT" for call in connector.calls) - puts_before == 2
    assert len(sleeps.delays) == 1
    assert connector.activity(activity_id).text == "v2"


async def test_retry_budget_exhaustion_raises_a_transient_delivery_error(
        endpoint, issuer, connector, bot, sender, sleeps):
    reference = await _inbound_reference(endpoint, issuer, connector, bot)
    thread = reference["conversation"]["id"]
    connector.fail_next(status=503, times=4)

    with pytest.raises(TeamsDeliveryError) as caught:
        await sender.reply_in_conversation(reference, {"type": "message", "text": "lost?"})

    assert (caught.value.status, caught.value.permanent, caught.value.code) == (503, False, "ServiceUnavailable")
    assert len(sleeps.delays) == 3  # four attempts
    assert sleeps.delays == sorted(sleeps.delays)  # backoff grows
    assert connector.activities(thread) == []


async def test_a_long_retry_after_is_handed_back_to_the_outbox(endpoint, issuer, connector, bot, sender, sleeps):
    reference = await _inbound_reference(endpoint, issuer, connector, bot)
    connector.fail_next(status=429, retry_after=120)

    with pytest.raises(TeamsDeliveryError) as caught:
        await sender.reply_in_conversation(reference, {"type": "message", "text": "later"})

    assert (caught.value.status, caught.value.retry_after, caught.value.permanent) == (429, 120, False)
    assert sleeps.delays == []


async def test_updating_an_unknown_activity_is_permanent_even_with_an_on_turn_error_handler(
        endpoint, issuer, connector, bot, adapter, sender, sleeps):
    reference = await _inbound_reference(endpoint, issuer, connector, bot)
    turn_errors: list[Exception] = []

    async def on_turn_error(turn_context, error):  # the SDK would otherwise swallow the failure here
        turn_errors.append(error)

    adapter.on_turn_error = on_turn_error
    with pytest.raises(TeamsDeliveryError) as caught:
        await sender.update_activity(reference, "1699999999999", {"type": "message", "text": "nope"})

    assert (caught.value.status, caught.value.permanent) == (404, True)
    assert sleeps.delays == [] and turn_errors == []


async def test_a_revoked_token_is_replaced_once(endpoint, issuer, connector, bot, sender, sleeps):
    reference = await _inbound_reference(endpoint, issuer, connector, bot)
    await sender.reply_in_conversation(reference, {"type": "message", "text": "before"})
    token_requests_before = len(connector.token_requests)
    connector.revoke_tokens()

    activity_id = await sender.reply_in_conversation(reference, {"type": "message", "text": "after"})

    assert connector.activity(activity_id).text == "after"
    assert len(connector.token_requests) - token_requests_before == 1
    assert sleeps.delays == []


async def test_refused_credentials_are_a_permanent_failure(issuer, connector, settings, sleeps):
    adapter = build_cloud_adapter(replace(settings, app_password="wrong-secret"))
    sender = TeamsSender(adapter, APP_ID, sleep=sleeps)
    reference = {"serviceUrl": connector.service_url, "channelId": "msteams",
                 "conversation": {"id": "19:abc@thread.tacv2;messageid=1", "tenantId": TENANT_ID}}

    with pytest.raises(TeamsDeliveryError) as caught:
        await sender.reply_in_conversation(reference, {"type": "message", "text": "x"})

    assert (caught.value.status, caught.value.permanent) == (401, True)
    assert connector.activities("19:abc@thread.tacv2;messageid=1") == []


async def test_unreachable_connector_is_transient(connector, sender, sleeps):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    reference = {"serviceUrl": f"http://127.0.0.1:{dead_port}/amer/", "channelId": "msteams",
                 "conversation": {"id": "19:abc@thread.tacv2", "tenantId": TENANT_ID}}

    with pytest.raises(TeamsDeliveryError) as caught:
        await sender.reply_in_conversation(reference, {"type": "message", "text": "x"})

    assert (caught.value.status, caught.value.permanent) == (None, False)
    assert len(sleeps.delays) == 3


async def test_new_channel_thread_then_reply_and_update_in_it(connector, sender):
    reference, root_id = await sender.create_channel_thread(
        connector.service_url, TENANT_ID, "19:b7c5Escalations@thread.tacv2",
        {"type": "message", "text": "Escalation: ticket #4411 needs a senior"})

    thread = reference["conversation"]["id"]
    assert thread == f"19:b7c5Escalations@thread.tacv2;messageid={root_id}"
    created = connector.conversations[thread]
    assert created.created_by_bot and created.tenant_id == TENANT_ID
    assert created.parameters["bot"]["id"] == f"28:{APP_ID}"
    assert reference["serviceUrl"] == connector.service_url and reference["activityId"] == root_id

    reply_id = await sender.reply_in_conversation(reference, {"type": "message", "text": "Claimed by Grace"})
    await sender.update_activity(reference, root_id, {"type": "message", "text": "Escalation: claimed"})

    assert connector.activity(reply_id).thread_root_id == root_id
    assert connector.activity(reply_id).reply_to_id == root_id
    assert connector.activity(root_id).versions[-1]["text"] == "Escalation: claimed"


async def test_create_channel_thread_requires_a_tenant(connector, sender):
    with pytest.raises(ValueError, match="tenant_id"):
        await sender.create_channel_thread(connector.service_url, "", "19:x@thread.tacv2", {"text": "x"})


async def test_typing_indicator_is_sent_and_failures_are_not_raised(endpoint, issuer, connector, bot, sender):
    reference = await _inbound_reference(endpoint, issuer, connector, bot)
    thread = reference["conversation"]["id"]

    assert await sender.send_typing(reference) is True
    connector.fail_next(status=429, retry_after=1)
    assert await sender.send_typing(reference) is False

    assert [a.body["type"] for a in connector.activities(thread)] == ["typing"]


async def test_reference_without_activity_id_posts_to_the_conversation(connector, sender):
    reference = {"serviceUrl": connector.service_url, "channelId": "msteams",
                 "conversation": {"id": "a:1PersonalChatWithAda", "tenantId": TENANT_ID}}

    activity_id = await sender.reply_in_conversation(reference, {"type": "message", "text": "Your digest"})

    sent = connector.activity(activity_id)
    assert (sent.kind, sent.reply_to_id, sent.conversation_id) == ("send", None, "a:1PersonalChatWithAda")


async def test_a_worker_send_can_be_awaited_through_the_fake(connector, sender):
    reference = {"serviceUrl": connector.service_url, "channelId": "msteams",
                 "conversation": {"id": "19:waitfor@thread.tacv2;messageid=42", "tenantId": TENANT_ID}}
    delivery = asyncio.ensure_future(sender.reply_in_conversation(reference, {"type": "message", "text": "queued"}))

    await connector.wait_for(lambda fake: [a.text for a in fake.activities("19:waitfor@thread.tacv2;messageid=42")]
                             == ["queued"], timeout=5)

    assert connector.activity(await delivery).text == "queued"


# --------------------------------------------------------------------------- production credentials path
class _CountingSdkCredentials(AppCredentials):
    """Stands in for MSAL-backed MicrosoftAppCredentials without touching the network."""

    def __init__(self) -> None:
        super().__init__(app_id=APP_ID, channel_auth_tenant=TENANT_ID, oauth_scope="https://api.botframework.com")
        self.fetch_threads: list[int] = []

    def get_access_token(self, force_refresh: bool = False) -> str:
        self.fetch_threads.append(threading.get_ident())
        return "msal-cached-token"


class _StubSdkFactory(ServiceClientCredentialsFactory):
    def __init__(self) -> None:
        self.credentials = _CountingSdkCredentials()
        self.created = 0

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == APP_ID

    async def is_authentication_disabled(self) -> bool:
        return False

    async def create_credentials(self, app_id, oauth_scope, login_endpoint, validate_authority):
        self.created += 1
        return self.credentials


async def test_sdk_credentials_are_built_once_and_warmed_off_the_event_loop():
    stub = _StubSdkFactory()
    factory = CachedCredentialsFactory(APP_ID, sdk_factory=stub)
    args = (APP_ID, "https://api.botframework.com", f"https://login.microsoftonline.com/{TENANT_ID}", True)

    first = await factory.create_credentials(*args)
    second = await factory.create_credentials(*args)
    session = first.signed_session()

    assert first is second and stub.created == 1
    assert session.headers["Authorization"] == "Bearer msal-cached-token"
    loop_thread = threading.get_ident()
    assert [thread != loop_thread for thread in stub.credentials.fetch_threads] == [True, True, False]


def test_sdk_configuration_is_an_attribute_object_with_public_cloud_defaults():
    config = sdk_auth_config(TeamsAuthSettings(app_id=APP_ID, app_password=APP_PASSWORD, tenant_id=TENANT_ID))

    assert not isinstance(config, dict)
    assert (config.APP_ID, config.APP_TYPE, config.APP_TENANTID) == (APP_ID, "SingleTenant", TENANT_ID)
    assert config.TO_CHANNEL_FROM_BOT_LOGIN_URL == f"https://login.microsoftonline.com/{TENANT_ID}"
    assert config.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER == "https://api.botframework.com"
    assert config.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL == (
        "https://login.botframework.com/v1/.well-known/openidconfiguration")
    assert config.CALLER_ID == "urn:botframework:azure"
    assert APP_PASSWORD not in repr(config)
