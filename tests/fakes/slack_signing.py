"""Sign request bodies the way Slack does, and build the bodies Slack POSTs to ``/slack/events``.

Signing (Slack's "v0" scheme): ``X-Slack-Signature = "v0=" + hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))``
with ``X-Slack-Request-Timestamp = ts``. It is written here from the documented algorithm, not imported
from slack_sdk, so a test that checks our verifier against this helper is not checking slack_sdk against
itself.

Body builders return exactly what goes on the wire:

* slash commands: ``application/x-www-form-urlencoded`` fields;
* Events API: a JSON ``event_callback`` envelope;
* interactivity (``block_actions``, ``view_submission``): a form body with one field, ``payload=<json>``.

Sign the returned string as-is; re-serialising it would change the bytes and break the signature.

``response_url`` defaults to a local address that refuses connections (port 9), so a test that forgets to
pass ``fake.new_response_url(...)`` fails fast on this machine instead of reaching the internet.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import string
import time
from typing import Any
from urllib.parse import urlencode

JsonDict = dict[str, Any]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"

DEFAULT_TEAM_ID = "T0FPTEAM1"
DEFAULT_TEAM_DOMAIN = "flowpilot-test"
DEFAULT_APP_ID = "A0FPAPP01"
DEFAULT_BOT_USER_ID = "U0FPBOT01"
DEFAULT_BOT_ID = "B0FPBOT01"
DEFAULT_CHANNEL_ID = "C0FPCHAN1"
DEFAULT_CHANNEL_NAME = "msp-support"
DEFAULT_USER_ID = "U0ENGINEER"
DEFAULT_USER_NAME = "engineer"
# The legacy verification token Slack still includes in payloads; bolt ignores it when signing is used.
VERIFICATION_TOKEN = "fakeVerificationToken0001"

_ts_counter = itertools.count(1)


# ---------------------------------------------------------------------- signing


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def compute_signature(body: bytes | str, secret: str, timestamp: int | str) -> str:
    basestring = b"v0:" + str(timestamp).encode("ascii") + b":" + _as_bytes(body)
    digest = hmac.new(secret.encode("utf-8"), basestring, hashlib.sha256).hexdigest()
    return f"v0={digest}"


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds to every request it signs; ``timestamp`` defaults to now."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": compute_signature(body, secret, ts),
    }


def signed_headers(
    body: bytes | str,
    secret: str,
    *,
    content_type: str,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
) -> dict[str, str]:
    """Everything Slack sends besides the body, including the Events API retry headers when asked."""
    headers = {"Content-Type": content_type, **sign(body, secret, timestamp)}
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    return headers


# ---------------------------------------------------------------------- ids


def new_trigger_id() -> str:
    # Slack's shape: "<digits>.<digits>.<32 hex>"
    return f"{secrets.randbelow(9 * 10**12) + 10**12}.{secrets.randbelow(9 * 10**11) + 10**11}.{secrets.token_hex(16)}"


def new_event_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "Ev" + "".join(secrets.choice(alphabet) for _ in range(9))


def new_message_ts() -> str:
    """A message ts for an incoming user message (distinct from the fake's bot-message ts range)."""
    micros = 1_690_000_000_000_000 + next(_ts_counter) * 100
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _unroutable_response_url(kind: str, team_id: str) -> str:
    return f"http://127.0.0.1:9/{kind}/{team_id}/{secrets.randbelow(10**10):010d}/{secrets.token_hex(12)}"


def _payload_form(payload: JsonDict) -> str:
    return urlencode({"payload": json.dumps(payload)})


def _user(user_id: str, user_name: str, team_id: str) -> JsonDict:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


# ---------------------------------------------------------------------- slash commands


def slash_command_body(
    *,
    command: str = "/flowpilot",
    text: str = "",
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    response_url: str | None = None,
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_APP_ID,
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
) -> str:
    """A slash command as Slack POSTs it (form-encoded, field order as Slack sends them)."""
    fields: list[tuple[str, str]] = [
        ("token", VERIFICATION_TOKEN),
        ("team_id", team_id),
        ("team_domain", team_domain),
    ]
    if enterprise_id:
        fields += [("enterprise_id", enterprise_id), ("enterprise_name", enterprise_name or "")]
    fields += [
        ("channel_id", channel_id),
        ("channel_name", channel_name),
        ("user_id", user_id),
        ("user_name", user_name),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "false"),
        ("response_url", response_url or _unroutable_response_url("commands", team_id)),
        ("trigger_id", trigger_id or new_trigger_id()),
    ]
    return urlencode(fields)


# ---------------------------------------------------------------------- Events API


def event_body(
    event: JsonDict,
    *,
    team_id: str = DEFAULT_TEAM_ID,
    event_id: str | None = None,
    event_time: int | None = None,
    api_app_id: str = DEFAULT_APP_ID,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
    enterprise_id: str | None = None,
) -> str:
    """An ``event_callback`` envelope around ``event``; reuse ``event_id`` to simulate a retry."""
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }
    return json.dumps(envelope)


def url_verification_body(challenge: str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P") -> str:
    return json.dumps({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"})


def _rich_text(text: str) -> list[JsonDict]:
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_hex(3),
            "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}],
        }
    ]


def message_event(
    *,
    text: str,
    channel: str = DEFAULT_CHANNEL_ID,
    user: str = DEFAULT_USER_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str = "channel",
    team: str = DEFAULT_TEAM_ID,
    files: list[JsonDict] | None = None,
    parent_user_id: str | None = None,
) -> JsonDict:
    """A user's ``message`` event; with ``files`` it carries the ``file_share`` subtype, as Slack sends it."""
    message_ts = ts or new_message_ts()
    event: JsonDict = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": message_ts,
        "team": team,
        "channel": channel,
        "event_ts": message_ts,
        "channel_type": channel_type,
        "client_msg_id": secrets.token_hex(16),
        "blocks": _rich_text(text),
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
        if parent_user_id:
            event["parent_user_id"] = parent_user_id
    if files:
        event["subtype"] = "file_share"
        event["files"] = files
        event["upload"] = False
        event["display_as_bot"] = False
    return event


def app_mention_event(
    *,
    text: str,
    channel: str = DEFAULT_CHANNEL_ID,
    user: str = DEFAULT_USER_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = DEFAULT_TEAM_ID,
    bot_user_id: str = DEFAULT_BOT_USER_ID,
) -> JsonDict:
    """An ``app_mention``; the text starts with ``<@BOT>`` the way Slack renders the mention."""
    message_ts = ts or new_message_ts()
    full_text = f"<@{bot_user_id}> {text}"
    event: JsonDict = {
        "type": "app_mention",
        "user": user,
        "text": full_text,
        "ts": message_ts,
        "team": team,
        "channel": channel,
        "event_ts": message_ts,
        "client_msg_id": secrets.token_hex(16),
        "blocks": _rich_text(full_text),
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


# ---------------------------------------------------------------------- interactivity


def block_action_body(
    *,
    action_id: str,
    value: str,
    block_id: str = "actions",
    button_text: str = "Button",
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    channel_id: str = DEFAULT_CHANNEL_ID,
    channel_name: str = DEFAULT_CHANNEL_NAME,
    message_ts: str | None = None,
    message: JsonDict | None = None,
    thread_ts: str | None = None,
    is_ephemeral: bool = False,
    view: JsonDict | None = None,
    trigger_id: str | None = None,
    response_url: str | None = None,
    api_app_id: str = DEFAULT_APP_ID,
) -> str:
    """A button click. In a message by default; pass ``view=`` for a click inside a modal.

    ``message`` should be the clicked message as the fake stored it (``fake.message(channel, ts)``);
    without it a minimal bot message with ``message_ts`` is used.
    """
    action_ts = f"{time.time():.6f}"
    payload: JsonDict = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "state": {"values": {}},
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": button_text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": action_ts,
            }
        ],
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view.get("id")}
        payload["view"] = view
        payload["state"] = view.get("state", {"values": {}})
        return _payload_form(payload)

    clicked = dict(message) if message is not None else None
    ts = message_ts or (clicked or {}).get("ts") or new_message_ts()
    if clicked is None:
        clicked = {
            "type": "message",
            "user": DEFAULT_BOT_USER_ID,
            "bot_id": DEFAULT_BOT_ID,
            "app_id": api_app_id,
            "text": "",
            "ts": ts,
            "team": team_id,
            "blocks": [],
        }
    clicked.pop("channel", None)  # the fake's records carry it; Slack's message object does not
    container: JsonDict = {
        "type": "message",
        "message_ts": ts,
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }
    thread = thread_ts or clicked.get("thread_ts")
    if thread:
        container["thread_ts"] = thread
    payload.update(
        container=container,
        channel={"id": channel_id, "name": channel_name},
        message=clicked,
        response_url=response_url or _unroutable_response_url("actions", team_id),
    )
    return _payload_form(payload)


def plain_text_values(fields: dict[str, dict[str, str]]) -> JsonDict:
    """``{block_id: {action_id: text}}`` → Slack's ``view.state.values`` for plain_text_input elements."""
    return {
        block_id: {action_id: {"type": "plain_text_input", "value": text} for action_id, text in actions.items()}
        for block_id, actions in fields.items()
    }


def view_submission_body(
    *,
    callback_id: str,
    values: JsonDict,
    private_metadata: str = "",
    view_id: str | None = None,
    external_id: str = "",
    title: str = "FlowPilot",
    blocks: list[JsonDict] | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    team_domain: str = DEFAULT_TEAM_DOMAIN,
    user_id: str = DEFAULT_USER_ID,
    user_name: str = DEFAULT_USER_NAME,
    trigger_id: str | None = None,
    api_app_id: str = DEFAULT_APP_ID,
    bot_id: str = DEFAULT_BOT_ID,
) -> str:
    """A modal submit. ``values`` is ``view.state.values`` (see :func:`plain_text_values`)."""
    vid = view_id or "V0" + secrets.token_hex(4).upper()
    payload: JsonDict = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": _user(user_id, user_name, team_id),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": {
            "id": vid,
            "team_id": team_id,
            "type": "modal",
            "blocks": blocks or [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": vid,
            "app_id": api_app_id,
            "external_id": external_id,
            "app_installed_team_id": team_id,
            "bot_id": bot_id,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _payload_form(payload)
