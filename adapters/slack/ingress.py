"""What POST /slack/events answers when a request is not what Slack sends.

Slack signs every request, so one that does not verify gets 401 and touches nothing. A verified
request that still cannot be read (a body that is not a JSON object or a form, a `payload` that is
not JSON, fields of the wrong type, a button value that is not ours) gets 400: retrying it cannot
help, and a 5xx would make Slack retry it. Any other failure (the database, the Slack API while
bolt authorizes the request) keeps its 500, so Slack retries what may well succeed later."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

# What reading a malformed body or payload raises. None of our transient failures is one of these
# (database errors, SlackApiError, aiohttp errors and timeouts are not).
MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError)
BAD_REQUEST = "not a Slack request FlowPilot can read"


def _first(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def signed(secret: str | None, body: str | bytes, headers: Mapping[str, Any]) -> bool:
    """Slack's v0 signature over this exact body, within five minutes; False on any garbage."""
    if not secret:
        return False
    lowered = {str(k).lower(): v for k, v in headers.items()}
    try:
        return SignatureVerifier(secret).is_valid(body, _first(lowered.get("x-slack-request-timestamp")),
                                                  _first(lowered.get("x-slack-signature")))
    except (ValueError, TypeError):  # e.g. a timestamp header that is not a number
        return False


async def unreadable(request: web.Request, secret: str | None) -> web.Response:
    """The body could not even be parsed into a request: 401 unless Slack signed it, then 400."""
    if not signed(secret, await request.read(), request.headers):
        return web.Response(status=401)
    log.warning("slack: unreadable request body", extra={"content_type": request.content_type})
    return web.json_response({"error": BAD_REQUEST}, status=400)


def error_handler(secret: str | None):
    """bolt's global error handler (middleware and listeners): logs the error as bolt does, and
    turns the answer into 401 (unsigned) or 400 (malformed) where that is what happened."""

    async def on_error(error: Exception, request: Any, response: BoltResponse | None) -> BoltResponse | None:
        headers: Mapping[str, Sequence[str]] = getattr(request, "headers", None) or {}
        raw = getattr(request, "raw_body", "") or ""
        if not signed(secret, raw, headers):
            log.warning("slack: unsigned request failed in bolt", extra={"error": type(error).__name__})
            return BoltResponse(status=401, body="") if response is not None else None
        if isinstance(error, MALFORMED):
            log.warning("slack: malformed request", exc_info=error)
            return BoltResponse(status=400, body=f'{{"error": "{BAD_REQUEST}"}}',
                                headers={"content-type": "application/json"}) if response is not None else None
        log.error("slack: request failed; Slack will retry", exc_info=error)
        return None  # bolt's 500 stands

    return on_error


def kind_of(body: Any) -> str:
    """Metrics label for a request body of any shape."""
    if not isinstance(body, dict):
        return "malformed"
    if "command" in body:
        return "command"
    kind = str(body.get("type") or "unknown")
    if kind == "event_callback":
        event = body.get("event")
        return "event:" + str((event.get("type") if isinstance(event, dict) else None) or "unknown")
    return kind
