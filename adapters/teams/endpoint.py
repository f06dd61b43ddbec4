"""POST /api/messages around `CloudAdapter.process_activity` (PLATFORMS §2.3).

`CloudAdapter.process` is not used: in botbuilder 4.17.1 it serialises an invoke body that
`ActivityHandler` already turned into a dict a second time (`'dict' object has no attribute
'is_xml_model'` → HTTP 500 for every Action.Execute), raises KeyError (→ 404/500) on a missing
Content-Type and 500s on bad JSON. Here bad input gets 4xx, auth failures 401, and invoke bodies
are serialised exactly once."""
from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web
from botbuilder.core import TurnContext, serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from msrest.exceptions import DeserializationError
from msrest.serialization import Model

from core.commands import storable

from .auth import ChannelAuthUnavailable, TeamsAuthSettings

log = logging.getLogger(__name__)

BotTurn = Callable[[TurnContext], Awaitable[Any]]
# What reading fields of an unexpected type raises (authentication failures are PermissionErrors and
# our transient failures, database or Bot Connector, are none of these).
MALFORMED_FIELDS = (ValueError, TypeError, KeyError, IndexError, AttributeError)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def teams_enabled(settings: TeamsAuthSettings, insecure_dev: bool, host: str) -> tuple[bool, str]:
    """Whether to mount /api/messages, and why (for the startup log).

    With an app id the endpoint is always mounted (an incomplete configuration then fails loudly in
    `build_cloud_adapter`). Without one the SDK would accept unauthenticated posts, so that is allowed
    only as explicit insecure development on a loopback address."""
    if settings.app_id:
        return True, f"Teams enabled for app id {settings.app_id} ({settings.normalized_app_type})"
    if not insecure_dev:
        return False, "Teams disabled: APP_ID is empty (set it, or use insecure dev mode on a loopback host)"
    if not _is_loopback(host):
        return False, f"Teams disabled: insecure dev mode refused on non-loopback host {host!r}"
    return True, f"Teams enabled WITHOUT inbound authentication (insecure dev mode on {host})"


def _is_loopback(host: str) -> bool:
    name = (host or "").strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def make_messages_handler(adapter: CloudAdapter, bot_turn_callable: BotTurn) -> Handler:
    """The aiohttp handler for POST /api/messages."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return _error(415, "Content-Type must be application/json")
        try:
            payload = json.loads(await request.text(), parse_constant=_refuse_non_finite)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "body is not valid JSON")
        activity, problem = _parse_activity(_storable(payload))
        if activity is None:
            return _error(400, problem)
        auth_header = request.headers.get("Authorization", "")
        try:
            invoke_response = await adapter.process_activity(auth_header, activity, bot_turn_callable)
        except PermissionError as error:
            log.warning("teams: rejected activity %s (%s): %s", activity.id, activity.type, error)
            return web.Response(status=401)
        except ChannelAuthUnavailable as error:
            log.error("teams: cannot authenticate activity %s: %s", activity.id, error)
            return web.Response(status=503)
        except MALFORMED_FIELDS:  # e.g. channelData as a list: a redelivery cannot fix it, so 400, not 500
            log.warning("teams: activity %s (%s) has fields of unexpected shapes", activity.id, activity.type,
                        exc_info=True)
            return _error(400, "activity fields have unexpected shapes")
        except Exception:
            log.exception("teams: turn failed for activity %s (%s)", activity.id, activity.type)
            return web.Response(status=500)
        if invoke_response is None:
            return web.Response(status=201)
        return _invoke_http_response(invoke_response.status, invoke_response.body)

    return handle


def _refuse_non_finite(name: str) -> Any:
    """`NaN`/`Infinity` are not JSON (RFC 8259) and Postgres jsonb refuses them: a 400, not a 500 later."""
    raise ValueError(f"{name} is not a JSON number")


def _storable(value: Any) -> Any:
    """The payload without NUL characters and lone surrogates (in keys too): Postgres cannot store
    them (conversation references are jsonb), and the request would fail with a 500."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(str(key)): _storable(item) for key, item in value.items()}
    return value


def _parse_activity(payload: Any) -> tuple[Activity | None, str]:
    if not isinstance(payload, dict):
        return None, "activity must be a JSON object"
    try:
        activity = Activity.deserialize(payload)
    except (DeserializationError, ValueError, TypeError, AttributeError) as error:
        return None, f"activity does not deserialize: {error}"
    if not isinstance(activity.type, str) or not activity.type:
        return None, "activity has no type"
    # The parameterized SDK auth path checks the token's serviceurl claim only when the activity has
    # one, and a reply needs it anyway.
    if not isinstance(activity.service_url, str) or not activity.service_url:
        return None, "activity has no serviceUrl"
    return activity, ""


def _invoke_http_response(status: Any, body: Any) -> web.Response:
    code = int(status) if status else 200
    if body is None:
        return web.Response(status=code)
    try:
        serialisable = serializer_helper(body) if isinstance(body, Model) else body
        return web.json_response(serialisable, status=code)
    except (TypeError, ValueError):
        log.exception("teams: invoke response body is not serialisable; answering status %s only", code)
        return web.Response(status=code)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
