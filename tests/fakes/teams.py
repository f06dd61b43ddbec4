"""Fakes for the Teams side of the world, as real HTTP servers on 127.0.0.1.

`FakeOpenIdIssuer` stands in for the Bot Framework channel's token signer: it serves an OpenID
metadata document and a JWKS (RSA keys carrying `"endorsements": ["msteams", …]`) and mints RS256
channel tokens (`iss`, `aud`, `serviceurl`, `nbf`, `exp`) like the ones Teams sends to /api/messages.
Point the bot's `openid_metadata_url`/`token_issuer` at it and the SDK's real JWT validation runs.

`FakeBotConnector` stands in for the Bot Connector service behind a Teams `serviceUrl` and for the
identity platform's token endpoint:
- `POST /{tenant}/oauth2/v2.0/token` (client-credentials grant, form-encoded) answers
  `{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": …}`; with
  `app_id`/`app_password` given it answers 401 `invalid_client` for other credentials.
- Under `service_url` (`{url}/amer/`, like Teams' regional URLs): `POST v3/conversations` (create;
  a channel thread gets the id `<channel>;messageid=<root id>`), `POST v3/conversations/{cid}/activities`
  (send), `POST …/activities/{aid}` (reply), `PUT …/activities/{aid}` (update; 404 for an unknown
  activity). Bodies answered are the Bot Connector shapes (`{"id": …}`, `{"id", "activityId"}`); errors
  are `{"error": {"code", "message"}}`.
- Every connector call needs `Authorization: Bearer <a token this fake issued and that has not
  expired>` (401 otherwise). Scripted faults consume connector calls only, after the auth check.
- Activities are recorded per conversation (`ConnectorActivity`: kind, replyToId, thread root id, the
  body and every later version from updates); `calls` records every request.
- Faults: `fail_next(status, retry_after=None, times=1)` for connector calls,
  `fail_token_next(status, times=1)` for the token endpoint, `clear_faults()`, `revoke_tokens()`, and
  `down()`/`up()`: an outage answers everything with 503 (deterministic, unlike connection-refused,
  and still recorded).
- `wait_for(predicate, timeout)` waits on an asyncio.Condition notified after every recorded change.

Builders at the end produce realistic Teams activities as wire dicts: a channel message that
@mentions the bot, the bot-installed `conversationUpdate`, and an `adaptiveCard/action` invoke.
"""
from __future__ import annotations

import abc
import asyncio
import base64
import itertools
import secrets
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
BOT_FRAMEWORK_SCOPE = "https://api.botframework.com/.default"
ERROR_CODES = {
    400: "BadArgument",
    401: "Unauthorized",
    403: "Forbidden",
    404: "ActivityNotFound",
    412: "PreconditionFailed",
    413: "MessageSizeTooBig",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _bind_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class _LocalServer(abc.ABC):
    """Shared lifecycle: an aiohttp app on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"

    @abc.abstractmethod
    def _routes(self, app: web.Application) -> None:
        """Register this fake's routes on `app`."""

    async def start(self):
        app = web.Application()
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = _bind_loopback()
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


# --------------------------------------------------------------------------- OpenID issuer
@dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self, endorsements: tuple[str, ...]) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "endorsements": list(endorsements),
        }


def new_signing_key(kid: str | None = None) -> SigningKey:
    """A fresh RSA key (not published anywhere unless given to `FakeOpenIdIssuer.publish`)."""
    return SigningKey(kid or uuid.uuid4().hex[:16], rsa.generate_private_key(public_exponent=65537, key_size=2048))


class FakeOpenIdIssuer(_LocalServer):
    def __init__(self, *, issuer: str = BOT_FRAMEWORK_ISSUER,
                 endorsements: tuple[str, ...] = ("msteams", "webchat", "emulator")) -> None:
        super().__init__()
        self.issuer = issuer
        self.endorsements = endorsements
        self.signing_key = new_signing_key()
        self._published: list[SigningKey] = [self.signing_key]
        self.metadata_requests = 0
        self.jwks_requests = 0

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/v1/.well-known/openidconfiguration"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/v1/.well-known/keys"

    def publish(self, key: SigningKey) -> None:
        self._published.append(key)

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        app.router.add_get("/v1/.well-known/keys", self._jwks)

    async def _metadata(self, request: web.Request) -> web.Response:
        self.metadata_requests += 1
        return web.json_response({
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.url}/v1/.well-known/authorize",
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        })

    async def _jwks(self, request: web.Request) -> web.Response:
        self.jwks_requests += 1
        return web.json_response({"keys": [key.public_jwk(self.endorsements) for key in self._published]})

    def issue_token(self, audience: str, service_url: str, *, issuer: str | None = None,
                    key: SigningKey | None = None, expires_in: float = 3600, not_before_offset: float = -60,
                    extra_claims: dict[str, Any] | None = None) -> str:
        """An RS256 channel token; `key` defaults to the published signing key."""
        signer = key or self.signing_key
        now = time.time()
        claims = {
            "serviceurl": service_url,
            "nbf": int(now + not_before_offset),
            "exp": int(now + expires_in),
            "iss": issuer or self.issuer,
            "aud": audience,
            **(extra_claims or {}),
        }
        return jwt.encode(claims, signer.private_key, algorithm="RS256",
                          headers={"kid": signer.kid, "x5t": signer.kid, "typ": "JWT"})

    def authorization(self, audience: str, service_url: str, **kwargs: Any) -> str:
        return "Bearer " + self.issue_token(audience, service_url, **kwargs)


# --------------------------------------------------------------------------- Bot Connector
@dataclass
class ConnectorActivity:
    id: str
    conversation_id: str
    kind: str  # "create" | "send" | "reply"
    reply_to_id: str | None
    thread_root_id: str | None
    versions: list[dict[str, Any]]  # the body as posted, then each update

    @property
    def body(self) -> dict[str, Any]:
        return self.versions[-1]

    @property
    def text(self) -> str | None:
        return self.body.get("text")

    @property
    def attachments(self) -> list[dict[str, Any]]:
        return self.body.get("attachments") or []


@dataclass
class ConnectorConversation:
    id: str
    tenant_id: str | None = None
    created_by_bot: bool = False
    parameters: dict[str, Any] | None = None
    activities: list[ConnectorActivity] = field(default_factory=list)


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str
    status: int
    authorization: str | None
    body: Any


@dataclass
class _Fault:
    status: int
    retry_after: float | None


def _base_channel(conversation_id: str) -> str:
    return conversation_id.split(";", 1)[0]


def _thread_root(conversation_id: str) -> str | None:
    marker = ";messageid="
    return conversation_id.split(marker, 1)[1] if marker in conversation_id else None


class FakeBotConnector(_LocalServer):
    def __init__(self, *, app_id: str | None = None, app_password: str | None = None,
                 token_lifetime_s: int = 3599, region: str = "amer") -> None:
        super().__init__()
        self.app_id = app_id
        self.app_password = app_password
        self.token_lifetime_s = token_lifetime_s
        self.region = region
        self.conversations: dict[str, ConnectorConversation] = {}
        self.calls: list[RecordedCall] = []
        self.token_requests: list[dict[str, str]] = []
        self._tokens: dict[str, float] = {}  # access token -> expiry (epoch seconds)
        self._activities: dict[str, ConnectorActivity] = {}
        self._faults: deque[_Fault] = deque()
        self._token_faults: deque[_Fault] = deque()
        self._down = False
        self._ids = itertools.count(1_700_000_000_001)
        self._changed = asyncio.Condition()

    # ---- addresses
    @property
    def service_url(self) -> str:
        return f"{self.url}/{self.region}/"

    def token_url(self, tenant: str = "botframework.com") -> str:
        return f"{self.url}/{tenant}/oauth2/v2.0/token"

    # ---- scripting
    def fail_next(self, status: int = 429, retry_after: float | None = None, times: int = 1) -> None:
        self._faults.extend(_Fault(status, retry_after) for _ in range(times))

    def fail_token_next(self, status: int = 503, times: int = 1) -> None:
        self._token_faults.extend(_Fault(status, None) for _ in range(times))

    def clear_faults(self) -> None:
        self._faults.clear()
        self._token_faults.clear()

    def revoke_tokens(self) -> None:
        self._tokens.clear()

    def down(self) -> None:
        self._down = True

    def up(self) -> None:
        self._down = False

    # ---- inspection
    def activities(self, conversation_id: str | None = None) -> list[ConnectorActivity]:
        if conversation_id is None:
            return list(self._activities.values())
        conversation = self.conversations.get(conversation_id)
        return list(conversation.activities) if conversation else []

    def activity(self, activity_id: str) -> ConnectorActivity | None:
        return self._activities.get(activity_id)

    def connector_calls(self) -> list[RecordedCall]:
        return [call for call in self.calls if "/v3/" in call.path]

    async def wait_for(self, predicate: Callable[["FakeBotConnector"], bool], timeout: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self)), timeout)

    # ---- server
    def _routes(self, app: web.Application) -> None:
        base = f"/{self.region}/v3/conversations"
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post(base, self._connector(self._create_conversation))
        app.router.add_post(base + "/{cid}/activities", self._connector(self._send))
        app.router.add_post(base + "/{cid}/activities/{aid}", self._connector(self._reply))
        app.router.add_put(base + "/{cid}/activities/{aid}", self._connector(self._update))

    async def _record(self, request: web.Request, response: web.Response, body: Any) -> web.Response:
        self.calls.append(RecordedCall(request.method, request.path, response.status,
                                       request.headers.get("Authorization"), body))
        async with self._changed:
            self._changed.notify_all()
        return response

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        recorded = {key: value for key, value in form.items() if key != "client_secret"}
        recorded["tenant"] = request.match_info["tenant"]
        self.token_requests.append(recorded)
        if self._down:
            return await self._record(request, _error(503), recorded)
        if self._token_faults:
            return await self._record(request, _error(self._token_faults.popleft().status), recorded)
        if form.get("grant_type") != "client_credentials":
            return await self._record(request, _oauth_error(400, "unsupported_grant_type"), recorded)
        if self.app_id is not None and (form.get("client_id") != self.app_id
                                        or form.get("client_secret") != self.app_password):
            return await self._record(request, _oauth_error(401, "invalid_client"), recorded)
        if form.get("scope") != BOT_FRAMEWORK_SCOPE:
            return await self._record(request, _oauth_error(400, "invalid_scope"), recorded)
        token = "fake-bf-" + secrets.token_urlsafe(24)
        self._tokens[token] = time.time() + self.token_lifetime_s
        answer = {"token_type": "Bearer", "expires_in": self.token_lifetime_s,
                  "ext_expires_in": self.token_lifetime_s, "access_token": token}
        return await self._record(request, web.json_response(answer), recorded)

    def _connector(self, handler: Callable[[web.Request, Any], Any]):
        async def guarded(request: web.Request) -> web.Response:
            try:
                body = await request.json()
            except ValueError:
                body = None
            if self._down:
                return await self._record(request, _error(503), body)
            if not self._authorized(request.headers.get("Authorization")):
                return await self._record(request, _error(401, "Authorization has been denied for this request."), body)
            if self._faults:
                fault = self._faults.popleft()
                return await self._record(request, _error(fault.status, retry_after=fault.retry_after), body)
            if not isinstance(body, dict):
                return await self._record(request, _error(400, "body must be a JSON object"), body)
            return await self._record(request, handler(request, body), body)

        return guarded

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        expires_at = self._tokens.get(header[len("Bearer "):])
        return expires_at is not None and time.time() < expires_at

    def _new_id(self) -> str:
        return str(next(self._ids))

    def _store(self, conversation_id: str, kind: str, reply_to_id: str | None, body: dict) -> ConnectorActivity:
        activity_id = self._new_id()
        conversation = self.conversations.setdefault(conversation_id, ConnectorConversation(conversation_id))
        stored = ConnectorActivity(activity_id, conversation_id, kind, reply_to_id, _thread_root(conversation_id),
                                   [{**body, "id": activity_id}])
        conversation.activities.append(stored)
        self._activities[activity_id] = stored
        return stored

    def _create_conversation(self, request: web.Request, body: dict) -> web.Response:
        tenant_id = body.get("tenantId") or ((body.get("channelData") or {}).get("tenant") or {}).get("id")
        if not tenant_id:
            return _error(400, "Could not parse tenant id")
        channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
        activity = body.get("activity")
        if not channel or not isinstance(activity, dict):
            return _error(400, "a channel thread needs channelData.channel.id and an activity")
        root_id = self._new_id()
        conversation_id = f"{channel};messageid={root_id}"
        conversation = ConnectorConversation(conversation_id, tenant_id, True, body)
        self.conversations[conversation_id] = conversation
        stored = ConnectorActivity(root_id, conversation_id, "create", None, root_id, [{**activity, "id": root_id}])
        conversation.activities.append(stored)
        self._activities[root_id] = stored
        return web.json_response({"id": conversation_id, "activityId": root_id}, status=201)

    def _send(self, request: web.Request, body: dict) -> web.Response:
        stored = self._store(request.match_info["cid"], "send", body.get("replyToId"), body)
        return web.json_response({"id": stored.id}, status=201)

    def _reply(self, request: web.Request, body: dict) -> web.Response:
        stored = self._store(request.match_info["cid"], "reply", request.match_info["aid"], body)
        return web.json_response({"id": stored.id}, status=201)

    def _update(self, request: web.Request, body: dict) -> web.Response:
        conversation_id, activity_id = request.match_info["cid"], request.match_info["aid"]
        stored = self._activities.get(activity_id)
        if stored is None or _base_channel(stored.conversation_id) != _base_channel(conversation_id):
            return _error(404, f"activity {activity_id} not found in {conversation_id}")
        stored.versions.append({**body, "id": activity_id})
        return web.json_response({"id": activity_id}, status=200)


def _error(status: int, message: str | None = None, *, retry_after: float | None = None) -> web.Response:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    body = {"error": {"code": ERROR_CODES.get(status, "Error"), "message": message or f"HTTP {status}"}}
    return web.json_response(body, status=status, headers=headers)


def _oauth_error(status: int, code: str) -> web.Response:
    return web.json_response({"error": code, "error_description": f"fake identity platform: {code}"}, status=status)


# --------------------------------------------------------------------------- activity builders
TEAM_ID = "19:Zx8fTeamGeneral0000000000000000@thread.tacv2"
CHANNEL_ID = "19:b7c5SupportChannel000000000000@thread.tacv2"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _common(service_url: str, app_id: str, tenant_id: str, bot_name: str) -> dict[str, Any]:
    return {
        "timestamp": _now_iso(),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "recipient": {"id": f"28:{app_id}", "name": bot_name},
        "locale": "en-US",
    }


def _user(user_id: str, user_name: str, aad_object_id: str) -> dict[str, Any]:
    return {"id": user_id, "name": user_name, "aadObjectId": aad_object_id}


def _channel_data(tenant_id: str, team_id: str, channel_id: str) -> dict[str, Any]:
    return {
        "teamsChannelId": channel_id,
        "teamsTeamId": team_id,
        "channel": {"id": channel_id},
        "team": {"id": team_id},
        "tenant": {"id": tenant_id},
    }


def teams_channel_message(*, service_url: str, app_id: str, tenant_id: str, text: str = "help",
                          bot_name: str = "FlowPilot", team_id: str = TEAM_ID, channel_id: str = CHANNEL_ID,
                          message_id: str | None = None, thread_root_id: str | None = None,
                          user_id: str = "29:1aBcDeFgUser", user_name: str = "Ada Engineer",
                          aad_object_id: str = "6f1a8a9e-0000-4000-8000-00000000ada1") -> dict[str, Any]:
    """A channel post (or thread reply when `thread_root_id` is given) that @mentions the bot."""
    message_id = message_id or str(int(time.time() * 1000))
    root = thread_root_id or message_id
    mention = f"<at>{bot_name}</at>"
    return {
        **_common(service_url, app_id, tenant_id, bot_name),
        "type": "message",
        "id": message_id,
        "from": _user(user_id, user_name, aad_object_id),
        "conversation": {"isGroup": True, "conversationType": "channel", "tenantId": tenant_id,
                         "id": f"{channel_id};messageid={root}"},
        "textFormat": "plain",
        "text": f"{mention} {text}",
        "entities": [
            {"type": "mention", "text": mention, "mentioned": {"id": f"28:{app_id}", "name": bot_name}},
            {"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web", "timezone": "Europe/London"},
        ],
        "channelData": _channel_data(tenant_id, team_id, channel_id),
        **({"replyToId": thread_root_id} if thread_root_id else {}),
    }


def teams_install_update(*, service_url: str, app_id: str, tenant_id: str, bot_name: str = "FlowPilot",
                         team_id: str = TEAM_ID, team_name: str = "Service Desk",
                         installer_id: str = "29:1aBcDeFgUser") -> dict[str, Any]:
    """The conversationUpdate Teams sends when the app is added to a team."""
    return {
        **_common(service_url, app_id, tenant_id, bot_name),
        "type": "conversationUpdate",
        "id": f"f:{uuid.uuid4()}",
        "from": {"id": installer_id, "aadObjectId": "6f1a8a9e-0000-4000-8000-00000000ada1"},
        "conversation": {"isGroup": True, "conversationType": "channel", "tenantId": tenant_id, "id": team_id},
        "membersAdded": [{"id": f"28:{app_id}"}],
        "channelData": {"team": {"id": team_id, "name": team_name, "aadGroupId": str(uuid.uuid4())},
                        "eventType": "teamMemberAdded", "tenant": {"id": tenant_id}, "settings": {}},
    }


def teams_card_action_invoke(*, service_url: str, app_id: str, tenant_id: str, verb: str,
                             data: dict[str, Any] | None = None, card_activity_id: str = "1700000000999",
                             bot_name: str = "FlowPilot", team_id: str = TEAM_ID, channel_id: str = CHANNEL_ID,
                             thread_root_id: str | None = None, user_id: str = "29:1aBcDeFgUser",
                             user_name: str = "Ada Engineer") -> dict[str, Any]:
    """An Action.Execute click on a card the bot posted (`adaptiveCard/action` invoke)."""
    root = thread_root_id or card_activity_id
    return {
        **_common(service_url, app_id, tenant_id, bot_name),
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": f"f:{uuid.uuid4()}",
        "from": _user(user_id, user_name, "6f1a8a9e-0000-4000-8000-00000000ada1"),
        "conversation": {"isGroup": True, "conversationType": "channel", "tenantId": tenant_id,
                         "id": f"{channel_id};messageid={root}"},
        "replyToId": card_activity_id,
        "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data or {}, "id": verb},
                  "trigger": "manual"},
        "channelData": {**_channel_data(tenant_id, team_id, channel_id), "source": {"name": "message"},
                        "legacy": {"replyToId": card_activity_id}},
    }
