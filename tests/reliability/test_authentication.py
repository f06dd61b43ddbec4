"""Promise 8 — nothing unauthenticated gets in.

Every route that accepts input is tried with forged credentials through the real server: Slack's
/slack/events (events, slash commands, button clicks, modal submissions, URL verification) with
wrong, stale, future, missing, garbled or replayed-over-another-body signatures; Teams'
/api/messages (messages, card clicks, installs) with missing, malformed, unsigned, foreign-key,
wrong-audience, wrong-issuer, expired, not-yet-valid and other-service tokens. Each gets 401 and
writes nothing (row counts of every table an accepted request touches) and reaches nobody (no
call to the fake platforms, no core call). The Teams endpoint is not served at all without
MICROSOFT_APP_ID, unless the loopback-only dev flag is set on a loopback host; and the Slack OAuth
routes refuse forged, foreign-browser and replayed `state`."""
from __future__ import annotations

import json
import re
import time
import uuid

import jwt
import pytest

from adapters.slack.payloads import ModalContext
from storage.secrets import generate_key
from tests.fakes.slack_signing import (
    FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, block_action_body, compute_signature, event_body, message_event,
    plain_text_values, slash_command_body, url_verification_body, view_submission_body,
)
from tests.fakes.teams import SigningKey, new_signing_key, teams_install_update
from tests.reliability.world import APP_ID, TENANT_ID, WRITE_TABLES, World, new_teams_id, world

SLACK_TABLES = ("slack_installations", "slack_bots", "slack_oauth_states")


def slack_bodies() -> dict[str, tuple[str, str]]:
    """One request of each kind Slack sends, each of which would write rows if it got in."""
    ids = {"session_id": str(uuid.uuid4()), "fix_id": str(uuid.uuid4()), "v": "1"}
    modal = ModalContext(action="add_note", value={"session_id": ids["session_id"], "v": "1"}, team_id="T0FPTEAM1",
                         channel_id="C0FPCHAN1", thread_ts="1690000000.000100", user_id="U0ENGINEER",
                         input_name="text")
    return {
        "event": (event_body(message_event(text="it happens again", thread_ts="1690000000.000100")),
                  JSON_CONTENT_TYPE),
        "slash command": (slash_command_body(text="new Printer queue stuck"), FORM_CONTENT_TYPE),
        "button click": (block_action_body(action_id="fp:fix_worked:1", value=json.dumps({"a": "fix_worked", "v": ids}),
                                           button_text="It worked"), FORM_CONTENT_TYPE),
        "modal submission": (view_submission_body(callback_id="fp:input", private_metadata=modal.encode(),
                                                  values=plain_text_values({"fp_input": {"value": "a note"}})),
                             FORM_CONTENT_TYPE),
        "url verification": (url_verification_body("challenge-1"), JSON_CONTENT_TYPE),
    }


def forged_slack_headers(body: str, content_type: str, secret: str) -> dict[str, dict[str, str]]:
    now = int(time.time())

    def headers(signature: str | None, timestamp: str | None) -> dict[str, str]:
        out = {"Content-Type": content_type}
        if signature is not None:
            out["X-Slack-Signature"] = signature
        if timestamp is not None:
            out["X-Slack-Request-Timestamp"] = timestamp
        return out

    return {
        "another secret": headers(compute_signature(body, "not-the-signing-secret", now), str(now)),
        "stale (6 minutes old)": headers(compute_signature(body, secret, now - 360), str(now - 360)),
        "from the future": headers(compute_signature(body, secret, now + 360), str(now + 360)),
        "no signature": headers(None, str(now)),
        "no timestamp": headers(compute_signature(body, secret, now), None),
        "nothing": headers(None, None),
        "signature of another body": headers(compute_signature(body + "&x=1", secret, now), str(now)),
        "signed timestamp swapped": headers(compute_signature(body, secret, now - 10), str(now)),
        "garbage timestamp": headers(compute_signature(body, secret, now), "soon"),
        "empty signature": headers("", str(now)),
        "v1 scheme": headers(compute_signature(body, secret, now).replace("v0=", "v1="), str(now)),
    }


async def nothing_happened(w: World, before: dict[str, int], calls: int = 0) -> None:
    assert await w.counts(before) == before
    assert len(w.copilot.calls) == calls, "a forged request reached the core"
    if w.fake_slack is not None:
        assert w.fake_slack.calls == [], [c.method for c in w.fake_slack.calls]
    if w.connector is not None:
        assert w.connector.calls == [], [c.path for c in w.connector.calls]


# --------------------------------------------------------------------------- Slack
@pytest.mark.parametrize("kind", list(slack_bodies()))
async def test_forged_slack_requests_get_401_and_write_nothing(db, database_url, kind) -> None:
    body, content_type = slack_bodies()[kind]
    async with world(database_url, teams=False) as w:
        before = await w.counts(WRITE_TABLES + SLACK_TABLES)
        for forgery, headers in forged_slack_headers(body, content_type, w.slack.secret).items():
            resp = await w.http.post("/slack/events", data=body.encode(), headers=headers)
            assert resp.status == 401, f"{kind} / {forgery}: {resp.status} {await resp.text()}"
        await nothing_happened(w, before)

        accepted = await w.slack.post_signed(body, content_type)  # the same request, signed: it gets in
        assert accepted.status == 200, await accepted.text()


async def test_a_forged_request_that_is_also_malformed_still_gets_401(db, database_url) -> None:
    async with world(database_url, teams=False) as w:
        before = await w.counts(WRITE_TABLES + SLACK_TABLES)
        for body, content_type in (("{not json", JSON_CONTENT_TYPE), ("[1, 2]", JSON_CONTENT_TYPE),
                                   ("payload=%7Bnope", FORM_CONTENT_TYPE),
                                   ('{"type": "event_callback", "event": "x"}', JSON_CONTENT_TYPE)):
            for forgery, headers in forged_slack_headers(body, content_type, w.slack.secret).items():
                resp = await w.http.post("/slack/events", data=body.encode(), headers=headers)
                assert resp.status == 401, f"{body!r} / {forgery}: {resp.status}"
        await nothing_happened(w, before)


# --------------------------------------------------------------------------- Teams
def unsigned_token(audience: str, service_url: str) -> str:
    now = int(time.time())
    claims = {"iss": "https://api.botframework.com", "aud": audience, "serviceurl": service_url,
              "nbf": now - 60, "exp": now + 3600}
    return "Bearer " + jwt.encode(claims, key=None, algorithm="none")


def forged_teams_tokens(w: World) -> dict[str, str | None]:
    issuer, service_url = w.issuer, w.connector.service_url
    impostor = SigningKey(issuer.signing_key.kid, new_signing_key().private_key)
    return {
        "no Authorization header": None,
        "empty bearer": "Bearer ",
        "not a JWT": "Bearer not-a-token",
        "Basic scheme": "Basic " + "dXNlcjpwYXNz",
        "unsigned (alg none)": unsigned_token(APP_ID, service_url),
        "signed by a key the channel never published": issuer.authorization(APP_ID, service_url, key=impostor),
        "unknown key id": issuer.authorization(APP_ID, service_url, key=new_signing_key()),
        "another bot's audience": issuer.authorization("6a1c0000-0000-4000-8000-0000000000ff", service_url),
        "another issuer": issuer.authorization(APP_ID, service_url, issuer="https://sts.example.invalid/"),
        "expired": issuer.authorization(APP_ID, service_url, expires_in=-600, not_before_offset=-3600),
        "not valid yet": issuer.authorization(APP_ID, service_url, not_before_offset=3600, expires_in=7200),
        "for another service URL": issuer.authorization(APP_ID, "https://smba.example.invalid/amer/"),
    }


def teams_activities(w: World) -> dict[str, dict]:
    channel = f"19:{uuid.uuid4().hex}@thread.tacv2"
    message = w.teams.message("new Printer queue stuck", channel=channel)
    click = w.teams.invoke({"verb": "fix_worked", "data": {"a": "fix_worked", "v": {
        "session_id": str(uuid.uuid4()), "fix_id": str(uuid.uuid4()), "v": "1"}, "k": "fix"}}, new_teams_id(),
        new_teams_id(), channel=channel)
    install = teams_install_update(service_url=w.connector.service_url, app_id=APP_ID, tenant_id=TENANT_ID)
    return {"message": message, "card click": click, "install": install}


async def test_bad_teams_tokens_get_401_and_write_nothing(db, database_url) -> None:
    async with world(database_url, slack=False) as w:
        before = await w.counts(WRITE_TABLES)
        for kind, activity in teams_activities(w).items():
            for forgery, authorization in forged_teams_tokens(w).items():
                status, _ = await w.teams.post(activity, authorization=authorization)
                assert status == 401, f"{kind} / {forgery}: {status}"
        await nothing_happened(w, before)

        status, _ = await w.teams.post(teams_activities(w)["message"])  # with a real channel token
        assert status == 201
        assert (await w.counts(("ai_sessions",)))["ai_sessions"] == 1


@pytest.mark.parametrize("app_id, insecure, host, served", [
    (None, False, "127.0.0.1", False),
    (None, True, "0.0.0.0", False),
    (None, True, "10.20.30.40", False),
    (None, True, "flowpilot.example.com", False),
    (None, True, "127.0.0.1", True),
    (None, True, "localhost", True),
    (None, True, "::1", True),
])
async def test_the_teams_endpoint_needs_an_app_id_or_loopback_dev_mode(db, database_url, app_id, insecure, host,
                                                                       served) -> None:
    env = dict(HOST=host, FLOWPILOT_TEAMS_INSECURE_DEV="1" if insecure else "0")
    async with world(database_url, slack=False, teams=False, **env) as w:
        activity = {"type": "message", "id": new_teams_id(), "serviceUrl": "http://127.0.0.1:9/amer/",
                    "channelId": "msteams", "from": {"id": "29:1dev", "aadObjectId": "dev-user"},
                    "recipient": {"id": "28:bot"}, "text": "help",
                    "conversation": {"id": "a:1dev", "conversationType": "personal", "tenantId": TENANT_ID},
                    "channelData": {"tenant": {"id": TENANT_ID}}}
        resp = await w.http.post("/api/messages", json=activity)
        if served:
            assert resp.status == 201
            assert await w.scalar("SELECT count(*) FROM inbound_events") == 1
        else:
            assert resp.status == 404, f"{host}: /api/messages must not be served"
            assert (await w.counts()) == {t: 0 for t in WRITE_TABLES}


# --------------------------------------------------------------------------- Slack OAuth
async def install_page(w: World, query: str = "") -> tuple[str, str]:
    page = await w.http.get("/slack/install" + query, allow_redirects=False)
    assert page.status == 200
    state = re.search(r"state=([0-9a-f-]+)", await page.text()).group(1)
    return state, page.headers["Set-Cookie"].split(";")[0]


async def redirect(w: World, state: str | None, cookie: str | None, code: str):
    params = {"code": code} | ({"state": state} if state is not None else {})
    return await w.http.get("/slack/oauth_redirect", params=params, headers={"Cookie": cookie} if cookie else {},
                            allow_redirects=False)


async def test_slack_oauth_refuses_forged_foreign_and_replayed_state(db, database_url) -> None:
    async with world(database_url, teams=False, oauth=True, FLOWPILOT_SECRET_KEY=generate_key()) as w:
        fake = w.fake_slack
        tables = WRITE_TABLES + ("slack_installations", "slack_bots")
        before = await w.counts(tables)
        code = fake.issue_oauth_code(team_id="T0ATTACK1", team_name="Attacker", installer_user_id="U0ATTACK1")
        real_state, real_cookie = await install_page(w)
        forged = str(uuid.uuid4())
        attempts = {
            "made-up state, no cookie": (forged, None),
            "made-up state with a matching cookie": (forged, f"slack-app-oauth-state={forged}"),
            "real state, someone else's browser": (real_state, None),
            "real state, a cookie for another state": (real_state, f"slack-app-oauth-state={forged}"),
            "no state at all": (None, real_cookie),
        }
        for what, (state, cookie) in attempts.items():
            resp = await redirect(w, state, cookie, code)
            assert 400 <= resp.status < 500, f"{what}: {resp.status}"
        assert fake.calls_to("oauth.v2.access") == [], "a refused callback still exchanged the code"
        assert await w.counts(tables) == before

        page_state, page_cookie = await install_page(w, f"?state={forged}")
        assert page_state != forged and page_cookie != f"slack-app-oauth-state={forged}"  # never adopts a state

        done = await redirect(w, real_state, real_cookie, code)  # the genuine browser round trip works
        assert done.status == 200, await done.text()
        assert (await w.counts(("slack_bots",)))["slack_bots"] == 1
        replay_code = fake.issue_oauth_code(team_id="T0ATTACK2", team_name="Replay", installer_user_id="U0ATTACK2")
        replay = await redirect(w, real_state, real_cookie, replay_code)
        assert 400 <= replay.status < 500, "a consumed state was accepted again"
        assert (await w.counts(("slack_bots",)))["slack_bots"] == 1
        assert len(fake.calls_to("oauth.v2.access")) == 1
