"""The fake Slack Web API and signing helpers, exercised by the real slack_sdk / slack_bolt clients."""

from __future__ import annotations

import asyncio
import json
import time
from typing import AsyncIterator
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack import FakeSlack
from tests.fakes.slack_signing import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    app_mention_event,
    block_action_body,
    event_body,
    plain_text_values,
    sign,
    signed_headers,
    slash_command_body,
    view_submission_body,
)

SIGNING_SECRET = "fake-signing-secret-for-tests"
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "Working on it…"}}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
async def client(fake: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    async with aiohttp.ClientSession() as session:
        yield AsyncWebClient(token=fake.token, base_url=fake.api_url, session=session)


# ---------------------------------------------------------------------- messages


async def test_update_edits_the_posted_message_in_place(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0FPCHAN1", text="Working on it…", blocks=[SECTION])

    updated = await client.chat_update(channel=posted["channel"], ts=posted["ts"], text="Done: DNS cache flushed")

    assert updated["ts"] == posted["ts"]
    [message] = fake.messages("C0FPCHAN1")
    assert message["text"] == "Done: DNS cache flushed"
    assert message["blocks"] == [SECTION], "Slack keeps blocks an update leaves out"
    assert message["edited"]["ts"] > posted["ts"]
    assert [u["text"] for u in fake.updates(posted["ts"])] == ["Done: DNS cache flushed"]


async def test_timestamps_are_unique_and_increasing_and_threads_group_replies(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    root = await client.chat_postMessage(channel="C0FPCHAN1", text="root")
    first = await client.chat_postMessage(channel="C0FPCHAN1", text="one", thread_ts=root["ts"])
    second = await client.chat_postMessage(channel="C0FPCHAN1", text="two", thread_ts=root["ts"])

    assert root["ts"] < first["ts"] < second["ts"]
    assert root["ts"].split(".")[0].isdigit() and len(root["ts"].split(".")[1]) == 6
    assert [m["text"] for m in fake.thread("C0FPCHAN1", root["ts"])] == ["root", "one", "two"]
    assert fake.message("C0FPCHAN1", root["ts"])["reply_count"] == 2


async def test_update_of_unknown_ts_is_message_not_found(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel="C0FPCHAN1", ts="1700000000.999999", text="nope")

    assert caught.value.response.status_code == 200
    assert caught.value.response["error"] == "message_not_found"


async def test_invalid_token_is_invalid_auth(fake: FakeSlack) -> None:
    bad = AsyncWebClient(token="xoxb-not-a-real-token", base_url=fake.api_url)

    with pytest.raises(SlackApiError) as caught:
        await bad.chat_postMessage(channel="C0FPCHAN1", text="hi")

    assert caught.value.response["error"] == "invalid_auth"
    assert fake.messages() == []


async def test_form_query_and_json_encodings_all_reach_the_method(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.add_user("U0ENGINEER", real_name="Ada Engineer", email="ada@msp.example")
    posted = await client.chat_postMessage(channel="U0ENGINEER", text="DM via user id")  # JSON body

    user = await client.users_info(user="U0ENGINEER")  # GET with query string
    opened = await client.conversations_open(users="U0ENGINEER")  # POST, args in the query string
    deleted = await client.chat_delete(channel=posted["channel"], ts=posted["ts"])

    assert user["user"]["profile"]["email"] == "ada@msp.example"
    assert opened["channel"]["id"] == posted["channel"] and posted["channel"].startswith("D")
    assert deleted["ts"] == posted["ts"] and fake.messages() == []
    assert [c.body_kind for c in fake.calls] == ["json", "none", "none", "none"]
    assert [c.http_verb for c in fake.calls] == ["POST", "GET", "POST", "POST"]
    assert fake.calls[0].headers["Authorization"] == f"Bearer {fake.token}"


async def test_ephemeral_is_recorded_for_its_user_and_not_as_a_message(fake: FakeSlack, client: AsyncWebClient) -> None:
    result = await client.chat_postEphemeral(channel="C0FPCHAN1", user="U0ENGINEER", text="Only you can see this")

    [ephemeral] = fake.ephemerals("U0ENGINEER")
    assert ephemeral["message_ts"] == result["message_ts"]
    assert ephemeral["text"] == "Only you can see this"
    assert fake.messages() == [] and fake.ephemerals("U0SOMEONE") == []


# ---------------------------------------------------------------------- rate limits and outages


async def test_429_is_retried_exactly_once_after_retry_after(fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=1)
    client = AsyncWebClient(
        token=fake.token,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )

    started = time.monotonic()
    result = await client.chat_postMessage(channel="C0FPCHAN1", text="hello")

    assert time.monotonic() - started >= 1.0, "the client waited for Retry-After"
    assert [(c.status, c.error) for c in fake.calls_to("chat.postMessage")] == [(429, "ratelimited"), (200, None)]
    assert [m["ts"] for m in fake.messages("C0FPCHAN1")] == [result["ts"]]


async def test_without_a_rate_limit_handler_429_surfaces_with_retry_after(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.fail_next("chat.postMessage", status=429, retry_after=7)

    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C0FPCHAN1", text="hello")

    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert fake.messages() == []


async def test_server_errors_and_injected_app_errors(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=fake.token, base_url=fake.api_url, retry_handlers=[AsyncServerErrorRetryHandler()])
    fake.fail_next("chat.postMessage", status=503)

    delivered = await client.chat_postMessage(channel="C0FPCHAN1", text="after one 503")
    fake.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        await client.chat_postMessage(channel="C0FPCHAN1", text="injected app error")
    await fake.down("503")
    with pytest.raises(SlackApiError) as outage:
        await AsyncWebClient(token=fake.token, base_url=fake.api_url).auth_test()

    assert [c.status for c in fake.calls_to("chat.postMessage")] == [503, 200, 200]
    assert [m["ts"] for m in fake.messages()] == [delivered["ts"]]
    assert outage.value.response.status_code == 503


async def test_per_channel_rate_limit_answers_429(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.limit_channel_rate(per_second=0.001, burst=2)

    await client.chat_postMessage(channel="C0FPCHAN1", text="1")
    await client.chat_postMessage(channel="C0FPCHAN1", text="2")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C0FPCHAN1", text="3")
    await client.chat_postMessage(channel="C0OTHER01", text="other channel is unaffected")

    assert caught.value.response.status_code == 429 and caught.value.response.headers["Retry-After"] == "1"
    assert [m["text"] for m in fake.messages("C0FPCHAN1")] == ["1", "2"]


async def test_refused_connections_until_up(fake: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:  # keep-alive: open connections must drop too
        client = AsyncWebClient(token=fake.token, base_url=fake.api_url, session=session, retry_handlers=[])
        await client.auth_test()
        await fake.down()

        with pytest.raises(aiohttp.ClientConnectionError):
            await client.auth_test()
        with pytest.raises(aiohttp.ClientConnectorError):
            await AsyncWebClient(token=fake.token, base_url=fake.api_url, retry_handlers=[]).auth_test()

        await fake.up()
        assert (await client.auth_test())["team_id"] == fake.team_id


async def test_reset_outage_is_retried_by_the_connection_error_handler(fake: FakeSlack) -> None:
    await fake.down("reset")
    client = AsyncWebClient(
        token=fake.token, base_url=fake.api_url, retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1)]
    )

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.auth_test()
    await fake.up()

    assert (await client.auth_test())["ok"] is True


async def test_fail_rate_is_reproducible_for_a_seed(fake: FakeSlack, client: AsyncWebClient) -> None:
    async def outcomes() -> list[int]:
        statuses = []
        for _ in range(30):
            try:
                await client.auth_test()
                statuses.append(200)
            except SlackApiError as e:
                statuses.append(e.response.status_code)
        return statuses

    fake.fail_rate(0.3, seed=42)
    first = await outcomes()
    fake.fail_rate(0.3, seed=42)
    second = await outcomes()

    assert first == second
    assert 200 in first and set(first) - {200} <= {429, 500, 503} and set(first) != {200}


async def test_wait_for_wakes_on_the_call_not_on_a_timer(fake: FakeSlack, client: AsyncWebClient) -> None:
    # The post only runs once the test awaits, so wait_for is already parked when it lands.
    task = asyncio.ensure_future(client.chat_postMessage(channel="C0FPCHAN1", text="background reply"))
    messages = await fake.wait_for(lambda: fake.messages("C0FPCHAN1"), timeout=5)
    await task

    assert messages[0]["text"] == "background reply"
    with pytest.raises(TimeoutError, match="chat.postMessage"):
        await fake.wait_for(lambda: len(fake.messages()) > 1, timeout=0.2)


# ---------------------------------------------------------------------- OAuth, views, files, response_url


async def test_oauth_token_is_accepted_by_auth_test(fake: FakeSlack, client: AsyncWebClient) -> None:
    code = fake.issue_oauth_code(team_id="T0NEWTEAM", team_name="New MSP", installer_user_id="U0ADMIN01")

    granted = await client.oauth_v2_access(client_id=fake.client_id, client_secret=fake.client_secret, code=code)
    identity = await client.auth_test(token=granted["access_token"])

    assert granted["token_type"] == "bot" and granted["access_token"].startswith("xoxb-")
    assert granted["team"] == {"id": "T0NEWTEAM", "name": "New MSP"}
    assert granted["authed_user"]["id"] == "U0ADMIN01"
    assert identity["team_id"] == "T0NEWTEAM" and identity["user_id"] == granted["bot_user_id"]
    with pytest.raises(SlackApiError, match="invalid_code"):
        await client.oauth_v2_access(client_id=fake.client_id, client_secret=fake.client_secret, code=code)


class _NoInstallations(AsyncInstallationStore):
    async def async_save(self, installation) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("run_installation must not save")


class _NoStates(AsyncOAuthStateStore):
    async def async_issue(self, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
        return "state"

    async def async_consume(self, state: str) -> bool:
        return True


async def test_bolt_oauth_flow_builds_an_installation_from_the_fake(fake: FakeSlack, client: AsyncWebClient) -> None:
    code = fake.issue_oauth_code(team_id="T0NEWTEAM", team_name="New MSP", installer_user_id="U0ADMIN01")
    flow = AsyncOAuthFlow(
        client=client,
        settings=AsyncOAuthSettings(
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            scopes=["chat:write", "commands"],
            installation_store=_NoInstallations(),
            state_store=_NoStates(),
        ),
    )

    installation = await flow.run_installation(code)

    assert installation is not None
    assert installation.team_id == "T0NEWTEAM" and installation.user_id == "U0ADMIN01"
    assert installation.bot_id == fake.identity(installation.bot_token).bot_id
    assert "chat:write" in installation.bot_scopes


async def test_views_open_needs_a_trigger_and_update_replaces_the_view(client: AsyncWebClient) -> None:
    view = {"type": "modal", "callback_id": "escalate", "title": {"type": "plain_text", "text": "Escalate"},
            "blocks": [SECTION], "private_metadata": "session=42"}

    with pytest.raises(SlackApiError, match="invalid_arguments"):
        await client.views_open(trigger_id="", view=view)
    opened = await client.views_open(trigger_id="123.456.abcdef", view=view)
    updated = await client.views_update(
        view_id=opened["view"]["id"], hash=opened["view"]["hash"], view={**view, "private_metadata": "session=43"}
    )

    assert opened["view"]["id"].startswith("V") and opened["view"]["callback_id"] == "escalate"
    with pytest.raises(SlackApiError, match="trigger_exchanged"):
        await client.views_open(trigger_id="123.456.abcdef", view=view)
    assert updated["view"]["private_metadata"] == "session=43"
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await client.views_update(view_id=opened["view"]["id"], hash=opened["view"]["hash"] + "x", view=view)


async def test_private_file_download_needs_the_bot_token(fake: FakeSlack, client: AsyncWebClient) -> None:
    png = b"\x89PNG\r\n\x1a\nfake-image-bytes"
    registered = fake.add_file(png, name="error.png")

    info = await client.files_info(file=registered["id"])
    url = info["file"]["url_private_download"]
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {fake.token}"}) as resp:
            with_token = (resp.status, resp.content_type, await resp.read())
        async with session.get(url) as resp:
            without_token = (resp.status, resp.content_type)

    assert with_token == (200, "image/png", png)
    assert without_token == (200, "text/html"), "like Slack: a sign-in page, not an error status"


async def test_response_url_replace_original_edits_the_bound_message(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0FPCHAN1", text="Claim this escalation?")
    url = fake.new_response_url(kind="actions", channel="C0FPCHAN1", user="U0ENGINEER", message_ts=posted["ts"])

    response = await AsyncWebhookClient(url).send(text="Claimed by Ada", replace_original=True)

    assert (response.status_code, response.body) == (200, "ok")
    assert fake.message("C0FPCHAN1", posted["ts"])["text"] == "Claimed by Ada"
    assert [u["source"] for u in fake.updates(posted["ts"])] == ["response_url"]


# ---------------------------------------------------------------------- signing and payload builders


def test_signature_is_accepted_by_slack_sdk_and_tampering_is_rejected() -> None:
    body = slash_command_body(text="ticket 4512 dns fails")
    verifier = SignatureVerifier(SIGNING_SECRET)
    headers = sign(body, SIGNING_SECRET)

    assert verifier.is_valid_request(body, headers)
    assert verifier.is_valid_request(body.encode(), sign(body.encode(), SIGNING_SECRET))
    assert not verifier.is_valid_request(body.replace("4512", "4513"), headers)
    assert not verifier.is_valid_request(body, sign(body, "another-secret"))
    assert not verifier.is_valid_request(body, sign(body, SIGNING_SECRET, timestamp=int(time.time()) - 301))


def test_slash_command_body_has_the_fields_slack_sends() -> None:
    fields = parse_qs(slash_command_body(command="/flowpilot", text="help", channel_id="C0X"))

    assert set(fields) >= {"token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
                           "command", "text", "response_url", "trigger_id", "api_app_id"}
    assert fields["command"] == ["/flowpilot"] and fields["channel_id"] == ["C0X"]


async def test_bolt_accepts_signed_payloads_from_every_builder(fake: FakeSlack, client: AsyncWebClient) -> None:
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=client)  # the client carries the bot token
    seen: dict[str, object] = {}

    @app.command("/flowpilot")
    async def on_command(ack, command, say):  # type: ignore[no-untyped-def]
        await ack()
        await say(f"command: {command['text']}")

    @app.event("app_mention")
    async def on_mention(event, say):  # type: ignore[no-untyped-def]
        await say(text=f"mention: {event['text']}", thread_ts=event["ts"])

    @app.action("claim")
    async def on_claim(ack, body, client):  # type: ignore[no-untyped-def]
        await ack()
        claimed = body["actions"][0]["value"]
        await client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"], text=f"claimed {claimed}")

    @app.view("escalate")
    async def on_submit(ack, view):  # type: ignore[no-untyped-def]
        await ack()
        seen["reason"] = view["state"]["values"]["reason"]["input"]["value"]
        seen["metadata"] = view["private_metadata"]

    async def deliver(body: str, content_type: str) -> int:
        response = await app.async_dispatch(
            AsyncBoltRequest(body=body, headers=signed_headers(body, SIGNING_SECRET, content_type=content_type))
        )
        return response.status

    posted = await client.chat_postMessage(channel="C0FPCHAN1", text="Escalation ready", blocks=[SECTION])
    statuses = [
        await deliver(slash_command_body(text="status", channel_id="C0FPCHAN1"), FORM_CONTENT_TYPE),
        await deliver(event_body(app_mention_event(text="help", channel="C0FPCHAN1")), JSON_CONTENT_TYPE),
        await deliver(
            block_action_body(action_id="claim", value="handoff-7", channel_id="C0FPCHAN1",
                              message=fake.message("C0FPCHAN1", posted["ts"])),
            FORM_CONTENT_TYPE,
        ),
        await deliver(
            view_submission_body(callback_id="escalate", private_metadata="session=42",
                                 values=plain_text_values({"reason": {"input": "needs a senior"}})),
            FORM_CONTENT_TYPE,
        ),
    ]
    await fake.wait_for(lambda: len(fake.messages("C0FPCHAN1")) == 3 and fake.updates(posted["ts"]))

    assert statuses == [200, 200, 200, 200]
    texts = sorted(m["text"] for m in fake.messages("C0FPCHAN1"))
    assert texts == ["claimed handoff-7", "command: status", "mention: <@U0FPBOT01> help"]
    assert seen == {"reason": "needs a senior", "metadata": "session=42"}


async def test_bolt_rejects_a_tampered_body(fake: FakeSlack, client: AsyncWebClient) -> None:
    app = AsyncApp(signing_secret=SIGNING_SECRET, client=client)  # the client carries the bot token
    body = event_body(app_mention_event(text="help"))
    headers = signed_headers(body, SIGNING_SECRET, content_type=JSON_CONTENT_TYPE)

    response = await app.async_dispatch(AsyncBoltRequest(body=body.replace("help", "hack"), headers=headers))

    assert response.status == 401
    assert json.loads(response.body) == {"error": "invalid request"}
