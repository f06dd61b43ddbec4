"""A local fake of the Slack Web API, served over real HTTP for the real slack_sdk clients.

Point ``AsyncWebClient(base_url=fake.api_url, token=fake.token)`` (or bolt's ``AsyncApp(client=...)``) at
it. It speaks the wire format slack_sdk uses: ``/api/<method>`` with the bot token in
``Authorization: Bearer``, arguments in the query string (``params=``), a form body (``data=``) or a JSON
body (``json=``), and answers ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` with HTTP 200 for
application-level errors, 429 + ``Retry-After`` for rate limits, and 5xx for server faults.

Besides ``/api/*`` it serves the two other Slack endpoints an app talks to:

* ``url_private`` / ``url_private_download`` of files registered with :meth:`FakeSlack.add_file`. Like
  Slack, a download without a valid bot token answers **200 with an HTML sign-in page**, not an error,
  so code that forgets the header (or follows a redirect that drops it) gets HTML instead of image bytes.
* ``response_url`` webhooks made by :meth:`FakeSlack.new_response_url` (what bolt's ``respond()`` posts
  to). A use answers ``ok``; replace/delete/in_channel/ephemeral are applied to the recorded state. The
  five-uses limit follows Slack's docs; the exact error body for a spent URL is our approximation.

Outages (:meth:`FakeSlack.down`):

* ``"refuse"`` (default) stops listening *and* drops requests on already-open keep-alive connections,
  so clients see ``ClientConnectorError``/``ServerDisconnectedError`` (both retried by slack_sdk's
  ``AsyncConnectionErrorRetryHandler``). :meth:`FakeSlack.up` listens again on the same port.
* ``"reset"`` keeps listening but closes every connection without answering.
* ``"503"`` answers every request with an HTML 503 page, as an edge proxy would.

All state lives in memory and every recorded call wakes :meth:`FakeSlack.wait_for`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Awaitable, Callable, Iterable

from aiohttp import web
from multidict import CIMultiDict

JsonDict = dict[str, Any]

DEFAULT_SCOPES = (
    "commands,chat:write,chat:write.public,app_mentions:read,users:read,users:read.email,"
    "channels:read,groups:read,im:read,im:write,mpim:write,files:read,channels:history,im:history"
)

# The scope Slack checks for each method; absent means "any valid token".
_REQUIRED_SCOPE = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.delete": "chat:write",
    "users.info": "users:read",
    "users.lookupByEmail": "users:read.email",
    "conversations.info": "channels:read",
    "conversations.open": "im:write",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
    "files.info": "files:read",
}

_DEFAULT_ERROR_FOR_STATUS = {429: "ratelimited", 500: "internal_error", 502: "fatal_error", 503: "service_unavailable"}
_MAX_TEXT_CHARS = 40_000
_MAX_MESSAGE_BLOCKS = 50
_MAX_VIEW_BLOCKS = 100
_MAX_VIEW_STACK = 3
_RESPONSE_URL_MAX_USES = 5

_SIGN_IN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head>"
    "<body><h1>Sign in to your workspace</h1></body></html>"
)
_OUTAGE_PAGE = "<html><head><title>503 Service Unavailable</title></head><body>Service Unavailable</body></html>"


class _ApiError(Exception):
    """An answer Slack gives instead of a result; raised inside handlers to short-circuit them."""

    def __init__(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra


@dataclass
class BotIdentity:
    """Everything Slack knows about one bot token."""

    token: str
    team_id: str
    team_name: str
    team_domain: str
    bot_user_id: str
    bot_id: str
    app_id: str
    scopes: str = DEFAULT_SCOPES
    bot_name: str = "flowpilot"
    enterprise_id: str | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in {s.strip() for s in self.scopes.split(",")}


@dataclass
class RecordedCall:
    """One Web API request as the fake saw it, and what it answered."""

    method: str
    http_verb: str
    params: JsonDict
    headers: CIMultiDict[str]
    body_kind: str  # "json" | "form" | "none"
    status: int
    ok: bool
    error: str | None
    response: JsonDict | None


@dataclass
class _Fault:
    status: int
    error: str
    retry_after: int | None
    remaining: int


@dataclass
class _Message:
    channel: str
    ts: str
    team: str
    user: str
    bot_id: str
    app_id: str
    text: str
    blocks: list[JsonDict] | None
    attachments: list[JsonDict] | None
    thread_ts: str | None = None
    metadata: JsonDict | None = None
    deleted: bool = False
    edited_ts: str | None = None
    reply_count: int = 0

    def as_slack(self) -> JsonDict:
        """The message object Slack returns (no channel inside, as in chat.postMessage's `message`)."""
        out: JsonDict = {
            "type": "message",
            "text": self.text,
            "user": self.user,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "ts": self.ts,
            "team": self.team,
        }
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.attachments is not None:
            out["attachments"] = self.attachments
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
            if self.thread_ts != self.ts:
                out["parent_user_id"] = self.user
        if self.reply_count:
            out["thread_ts"] = self.ts
            out["reply_count"] = self.reply_count
        if self.metadata is not None:
            out["metadata"] = self.metadata
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        return out

    def as_record(self) -> JsonDict:
        return {"channel": self.channel, **self.as_slack()}


@dataclass
class _ResponseTarget:
    team_id: str
    channel: str | None
    user: str | None
    message_ts: str | None
    uses: int = 0


@dataclass
class _RegisteredFile:
    file_id: str
    team_id: str
    content: bytes
    info: JsonDict


@dataclass
class _RateBucket:
    tokens: float
    updated: float


@dataclass
class _ChannelRateLimit:
    per_second: float
    burst: int
    retry_after: int
    buckets: dict[str, _RateBucket] = field(default_factory=dict)


Handler = Callable[[JsonDict, BotIdentity], Awaitable[JsonDict]]


class FakeSlack:
    """In-memory Slack workspace(s) behind a local aiohttp server. See the module docstring."""

    def __init__(
        self,
        *,
        token: str = "xoxb-1000000001-2000000001-fakebottoken000000001",
        team_id: str = "T0FPTEAM1",
        team_name: str = "FlowPilot Test",
        team_domain: str = "flowpilot-test",
        bot_user_id: str = "U0FPBOT01",
        bot_id: str = "B0FPBOT01",
        app_id: str = "A0FPAPP01",
        scopes: str = DEFAULT_SCOPES,
        client_id: str = "1000000001.3000000001",
        client_secret: str = "fake-client-secret",
        strict_channels: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.team_id = team_id
        self.app_id = app_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.strict_channels = strict_channels
        self._host = host
        self._port = port

        self._identities: dict[str, BotIdentity] = {}
        self._revoked: set[str] = set()
        self.add_bot(
            BotIdentity(token, team_id, team_name, team_domain, bot_user_id, bot_id, app_id, scopes=scopes)
        )

        self.calls: list[RecordedCall] = []
        self.downloads: list[JsonDict] = []
        self.responses: list[JsonDict] = []
        self.views_opened: list[JsonDict] = []
        self.views_pushed: list[JsonDict] = []

        self._messages: list[_Message] = []
        self._by_key: dict[tuple[str, str], _Message] = {}
        self._updates: list[JsonDict] = []
        self._ephemerals: list[JsonDict] = []
        self._views: dict[str, JsonDict] = {}
        self._view_stacks: list[list[str]] = []
        self._expired_triggers: set[str] = set()
        self._exchanged_triggers: set[str] = set()
        self._users: dict[str, JsonDict] = {}
        self._channels: dict[str, JsonDict] = {}
        self._dm_by_user: dict[str, str] = {}
        self._oauth_codes: dict[str, JsonDict] = {}
        self._files: dict[str, _RegisteredFile] = {}
        self._response_targets: dict[str, _ResponseTarget] = {}

        self._faults: dict[str, list[_Fault]] = {}
        self._fail_rate: float = 0.0
        self._fail_rng = random.Random(0)
        self._fail_statuses: tuple[int, ...] = (429, 500, 503)
        self._fail_retry_after = 1
        self._fail_methods: frozenset[str] | None = None
        self._channel_rate: _ChannelRateLimit | None = None
        self._down_mode: str | None = None

        # Deterministic, strictly increasing message timestamps: "1700000000.000100", "...000200", ...
        self._ts_counter = itertools.count(1)
        self._id_counter = itertools.count(1)

        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._url: str | None = None
        self._changed: asyncio.Condition | None = None

        self._handlers: dict[str, Handler] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_push,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "files.info": self._files_info,
        }
        # Methods that authenticate with the app's client credentials or nothing, not a bot token.
        self._unauthenticated = {"api.test", "oauth.v2.access"}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> "FakeSlack":
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/files-pri/{team_file}/{rest:.*}", self._handle_download)
        app.router.add_post("/{kind:commands|actions}/{team}/{hook}/{secret}", self._handle_response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port)
        await self._site.start()
        host, port = self._runner.addresses[0][:2]
        self._port = port
        self._url = f"http://{host}:{port}"
        self._changed = asyncio.Condition()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._site = None

    async def __aenter__(self) -> "FakeSlack":
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("FakeSlack is not started; call await fake.start() first")
        return self._url

    @property
    def api_url(self) -> str:
        """The value for ``AsyncWebClient(base_url=...)``; the trailing slash matters (urljoin)."""
        return self.url + "/api/"

    # ------------------------------------------------------------------ configuration

    def add_bot(self, identity: BotIdentity) -> BotIdentity:
        self._identities[identity.token] = identity
        return identity

    def add_workspace(
        self, team_id: str, team_name: str, *, token: str | None = None, team_domain: str | None = None
    ) -> BotIdentity:
        """A second installed workspace with its own bot token (multi-tenant tests)."""
        n = next(self._id_counter)
        return self.add_bot(
            BotIdentity(
                token=token or f"xoxb-{1000000000 + n}-{2000000000 + n}-{secrets.token_hex(12)}",
                team_id=team_id,
                team_name=team_name,
                team_domain=team_domain or team_name.lower().replace(" ", "-"),
                bot_user_id=f"U0BOT{n:04d}",
                bot_id=f"B0BOT{n:04d}",
                app_id=self.app_id,
            )
        )

    def identity(self, token: str | None = None) -> BotIdentity:
        return self._identities[token or self.token]

    def revoke(self, token: str) -> None:
        """Later calls with this token get ``token_revoked`` (an uninstall)."""
        self._revoked.add(token)

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str = "Test User",
        email: str | None = None,
        team_id: str | None = None,
        tz: str = "Europe/London",
        tz_offset: int = 0,
        is_admin: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
    ) -> JsonDict:
        handle = name or real_name.lower().replace(" ", ".")
        user = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": handle,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": tz_offset,
            "profile": {
                "real_name": real_name,
                "real_name_normalized": real_name,
                "display_name": handle,
                "display_name_normalized": handle,
                "email": email,
                "image_72": f"https://avatars.example.invalid/{user_id}_72.png",
                "team": team_id or self.team_id,
            },
            "is_admin": is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1700000000,
        }
        if email is None:
            del user["profile"]["email"]
        self._users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        is_member: bool = True,
        team_id: str | None = None,
    ) -> JsonDict:
        channel = {
            "id": channel_id,
            "name": name,
            "name_normalized": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": is_private,
            "is_archived": False,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": is_member,
            "created": 1700000000,
            "creator": "U0CREATOR",
            "context_team_id": team_id or self.team_id,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }
        self._channels[channel_id] = channel
        return channel

    def expire_trigger_id(self, trigger_id: str) -> None:
        """views.open/push with this trigger answers ``expired_trigger_id`` (it was older than 3 s)."""
        self._expired_triggers.add(trigger_id)

    def issue_oauth_code(
        self,
        *,
        team_id: str = "T0FPTEAM2",
        team_name: str = "Installed Workspace",
        installer_user_id: str = "U0INSTALL1",
        scopes: str = DEFAULT_SCOPES,
        redirect_uri: str | None = None,
    ) -> str:
        """A single-use code as Slack appends to the redirect URL after the user approves the install."""
        code = f"{next(self._id_counter)}.{secrets.token_hex(16)}"
        self._oauth_codes[code] = {
            "team_id": team_id,
            "team_name": team_name,
            "installer_user_id": installer_user_id,
            "scopes": scopes,
            "redirect_uri": redirect_uri,
        }
        return code

    def add_file(
        self,
        content: bytes,
        *,
        name: str = "screenshot.png",
        mimetype: str = "image/png",
        filetype: str = "png",
        user: str = "U0ENGINEER",
        team_id: str | None = None,
        file_id: str | None = None,
    ) -> JsonDict:
        """Register a file; returns Slack's file object (embed it in a message event's ``files``)."""
        team = team_id or self.team_id
        fid = file_id or f"F0FILE{next(self._id_counter):04d}"
        base = f"{self.url}/files-pri/{team}-{fid}"
        info = {
            "id": fid,
            "created": 1700000000,
            "timestamp": 1700000000,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": user,
            "user_team": team,
            "mode": "hosted",
            "editable": False,
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "size": len(content),
            "url_private": f"{base}/{name}",
            "url_private_download": f"{base}/download/{name}",
            "permalink": f"https://{self.identity().team_domain}.slack.com/files/{user}/{fid}/{name}",
        }
        self._files[fid] = _RegisteredFile(fid, team, content, info)
        return info

    def new_response_url(
        self,
        *,
        kind: str = "commands",
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        team_id: str | None = None,
    ) -> str:
        """A ``response_url`` for a payload; bind ``message_ts`` so replace/delete_original act on it."""
        if kind not in ("commands", "actions"):
            raise ValueError("kind is 'commands' (slash commands) or 'actions' (interactivity)")
        team = team_id or self.team_id
        path = f"/{kind}/{team}/{next(self._id_counter):010d}/{secrets.token_hex(12)}"
        self._response_targets[path] = _ResponseTarget(team, channel, user, message_ts)
        return self.url + path

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int | None = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """The next ``times`` calls to ``method`` (``"*"`` = any) fail with ``status``.

        429 carries ``Retry-After``; status 200 with ``error=`` injects an application-level error such as
        ``channel_not_found``.
        """
        if status == 200 and not error:
            raise ValueError("status 200 needs error=... (an application-level failure)")
        self._faults.setdefault(method, []).append(
            _Fault(status, error or _DEFAULT_ERROR_FOR_STATUS.get(status, "fatal_error"), retry_after, times)
        )

    def fail_rate(
        self,
        rate: float,
        seed: int = 0,
        *,
        statuses: Iterable[int] = (429, 500, 503),
        retry_after: int = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Fail a ``rate`` fraction of calls at random (reproducible by ``seed``) for soak tests; 0 stops."""
        self._fail_rate = rate
        self._fail_rng = random.Random(seed)
        self._fail_statuses = tuple(statuses)
        self._fail_retry_after = retry_after
        self._fail_methods = frozenset(methods) if methods is not None else None

    def limit_channel_rate(self, per_second: float | None, *, burst: int = 1, retry_after: int = 1) -> None:
        """Token bucket per channel for chat.postMessage (Slack allows ~1 msg/s with short bursts)."""
        self._channel_rate = None if per_second is None else _ChannelRateLimit(per_second, burst, retry_after)

    async def down(self, mode: str = "refuse") -> None:
        """Start an outage; see the module docstring for what each mode looks like to a client."""
        if mode not in ("refuse", "reset", "503"):
            raise ValueError(f"unknown outage mode {mode!r}")
        self._down_mode = mode
        if mode == "refuse" and self._site is not None:
            await self._site.stop()
            self._site = None

    async def up(self) -> None:
        """End the outage; after "refuse", listen again on the same port."""
        if self._site is None and self._runner is not None:
            self._site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
            await self._site.start()
        self._down_mode = None

    # ------------------------------------------------------------------ recorded state

    def messages(self, channel: str | None = None, *, include_deleted: bool = False) -> list[JsonDict]:
        """Messages (roots and replies) in posting order, each with its ``channel``."""
        return [
            m.as_record()
            for m in self._messages
            if (channel is None or m.channel == channel) and (include_deleted or not m.deleted)
        ]

    def message(self, channel: str, ts: str) -> JsonDict | None:
        stored = self._by_key.get((channel, ts))
        return stored.as_record() if stored and not stored.deleted else None

    def thread(self, channel: str, thread_ts: str) -> list[JsonDict]:
        """The thread's parent (when the bot posted it) followed by its replies, oldest first."""
        return [
            m.as_record()
            for m in self._messages
            if m.channel == channel and not m.deleted and (m.ts == thread_ts or m.thread_ts == thread_ts)
        ]

    def ephemerals(self, user: str | None = None) -> list[JsonDict]:
        return [e for e in self._ephemerals if user is None or e["user"] == user]

    def updates(self, ts: str, channel: str | None = None) -> list[JsonDict]:
        """Edit history of one message (chat.update and response_url replacements), oldest first."""
        return [u for u in self._updates if u["ts"] == ts and (channel is None or u["channel"] == channel)]

    def view(self, view_id: str) -> JsonDict | None:
        return self._views.get(view_id)

    def calls_to(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method]

    def clear_records(self) -> None:
        """Forget calls and messages (not tokens, users, channels or files) between test phases."""
        self.calls.clear()
        self.downloads.clear()
        self.responses.clear()
        self.views_opened.clear()
        self.views_pushed.clear()
        self._messages.clear()
        self._by_key.clear()
        self._updates.clear()
        self._ephemerals.clear()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` is truthy, re-checking after every request the fake handles.

        Returns the predicate's value; raises ``TimeoutError`` listing the calls seen so far.
        """
        if self._changed is None:
            raise RuntimeError("FakeSlack is not started")
        async with self._changed:
            try:
                return await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                seen = ", ".join(f"{c.method}->{c.status}/{c.error or 'ok'}" for c in self.calls[-20:])
                raise TimeoutError(f"condition not met within {timeout}s; recent calls: [{seen}]") from None

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    # ------------------------------------------------------------------ HTTP plumbing

    async def _outage_response(self, request: web.Request) -> web.StreamResponse | None:
        if self._down_mode in ("refuse", "reset"):
            # Close without answering: the client sees the server disconnect mid-request.
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        if self._down_mode == "503":
            return web.Response(status=503, text=_OUTAGE_PAGE, content_type="text/html")
        return None

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        outage = await self._outage_response(request)
        if outage is not None:
            return outage
        method = request.match_info["method"]
        params, body_kind = {}, "none"
        status, headers, payload = 200, {"x-slack-req-id": secrets.token_hex(16)}, None
        try:
            params, body_kind = await self._read_params(request)
            self._apply_faults(method)
            payload = await self._dispatch(method, params, request, headers)
        except _ApiError as e:
            status = e.status
            headers.update(e.headers)
            payload = {"ok": False, "error": e.error, **e.extra}
        self.calls.append(
            RecordedCall(
                method=method,
                http_verb=request.method,
                params=params,
                headers=CIMultiDict(request.headers),
                body_kind=body_kind,
                status=status,
                ok=bool(payload.get("ok")),
                error=payload.get("error"),
                response=payload,
            )
        )
        await self._notify()
        return web.json_response(payload, status=status, headers=headers)

    async def _read_params(self, request: web.Request) -> tuple[JsonDict, str]:
        # slack_sdk sends `params=` in the query string even on POST, and `data=`/`json=` in the body.
        params: JsonDict = dict(request.query)
        kind = "none"
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = json.loads(await request.text())
                except json.JSONDecodeError:
                    raise _ApiError("invalid_json") from None
                if not isinstance(body, dict):
                    raise _ApiError("invalid_json")
                params.update(body)
                kind = "json"
            else:
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
                kind = "form"
        return {k: v for k, v in params.items() if v is not None}, kind

    def _apply_faults(self, method: str) -> None:
        for key in (method, "*"):
            queue = self._faults.get(key)
            if queue:
                fault = queue[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.pop(0)
                raise self._fault_error(fault.status, fault.error, fault.retry_after)
        if self._fail_rate and (self._fail_methods is None or method in self._fail_methods):
            if self._fail_rng.random() < self._fail_rate:
                status = self._fail_rng.choice(self._fail_statuses)
                error = _DEFAULT_ERROR_FOR_STATUS.get(status, "fatal_error")
                raise self._fault_error(status, error, self._fail_retry_after)

    @staticmethod
    def _fault_error(status: int, error: str, retry_after: int | None) -> _ApiError:
        headers = {"Retry-After": str(retry_after)} if status == 429 and retry_after is not None else {}
        return _ApiError(error, status=status, headers=headers)

    async def _dispatch(self, method: str, params: JsonDict, request: web.Request, headers: dict[str, str]) -> JsonDict:
        if method == "oauth.v2.access":
            return self._oauth_v2_access(params, request)
        handler = self._handlers.get(method)
        if handler is None:
            raise _ApiError("unknown_method", req_method=method)
        if method in self._unauthenticated:
            return await handler(params, self.identity())
        ident = self._authenticate(request, params)
        headers["x-oauth-scopes"] = ident.scopes
        needed = _REQUIRED_SCOPE.get(method)
        if needed:
            headers["x-accepted-oauth-scopes"] = needed
            if not ident.has_scope(needed):
                raise _ApiError("missing_scope", needed=needed, provided=ident.scopes)
        return await handler(params, ident)

    def _authenticate(self, request: web.Request, params: JsonDict) -> BotIdentity:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer "):].strip() if header.startswith("Bearer ") else None
        if token is None and request.method == "POST":
            token = params.pop("token", None)  # Slack also accepts the token as a POST parameter
        if not token:
            raise _ApiError("not_authed")
        if token in self._revoked:
            raise _ApiError("token_revoked")
        ident = self._identities.get(token)
        if ident is None:
            raise _ApiError("invalid_auth")
        return ident

    # ------------------------------------------------------------------ helpers for handlers

    def _next_ts(self) -> str:
        micros = 1_700_000_000_000_000 + next(self._ts_counter) * 100
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    @staticmethod
    def _json_field(params: JsonDict, name: str, *, format_error: str) -> Any:
        value = params.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise _ApiError(format_error) from None
        return value

    def _blocks(self, params: JsonDict, limit: int = _MAX_MESSAGE_BLOCKS) -> list[JsonDict] | None:
        blocks = self._json_field(params, "blocks", format_error="invalid_blocks_format")
        if blocks is None:
            return None
        if not isinstance(blocks, list) or not all(isinstance(b, dict) and b.get("type") for b in blocks):
            raise _ApiError("invalid_blocks", response_metadata={"messages": ["[ERROR] invalid block structure"]})
        if len(blocks) > limit:
            raise _ApiError(
                "invalid_blocks",
                response_metadata={"messages": [f"[ERROR] no more than {limit} items allowed [json-pointer:/blocks]"]},
            )
        return blocks

    def _resolve_channel(self, channel: str | None, ident: BotIdentity) -> str:
        if not channel:
            raise _ApiError("channel_not_found")
        if channel[0] in "UW":  # posting to a user id lands in the bot's DM with them
            return self._dm_channel_for(channel)
        if channel.startswith("#"):  # Slack resolves a channel name to its id
            named = next((c["id"] for c in self._channels.values() if c["name"] == channel[1:]), None)
            if named is None:
                raise _ApiError("channel_not_found")
            channel = named
        known = self._channels.get(channel)
        if known is not None and not known["is_member"] and known["is_private"]:
            raise _ApiError("channel_not_found")
        if known is not None and not known["is_member"]:
            if not ident.has_scope("chat:write.public"):
                raise _ApiError("not_in_channel")
        if known is None and channel[0] != "D" and self.strict_channels:
            raise _ApiError("channel_not_found")
        return channel

    def _bot_for_team(self, team_id: str) -> BotIdentity:
        for ident in self._identities.values():
            if ident.team_id == team_id:
                return ident
        return self.identity()

    def _dm_channel_for(self, user_id: str) -> str:
        if user_id not in self._dm_by_user:
            self._dm_by_user[user_id] = f"D0{next(self._id_counter):07d}"
        return self._dm_by_user[user_id]

    def _check_channel_rate(self, channel: str) -> None:
        limit = self._channel_rate
        if limit is None:
            return
        now = time.monotonic()
        bucket = limit.buckets.setdefault(channel, _RateBucket(float(limit.burst), now))
        bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * limit.per_second)
        bucket.updated = now
        if bucket.tokens < 1:
            raise self._fault_error(429, "ratelimited", limit.retry_after)
        bucket.tokens -= 1

    def _own_message(self, params: JsonDict, ident: BotIdentity, not_yours: str) -> _Message:
        channel, ts = params.get("channel"), params.get("ts")
        if not channel or channel[0] in "UW":
            raise _ApiError("channel_not_found")
        stored = self._by_key.get((channel, str(ts)))
        if stored is None or stored.deleted:
            raise _ApiError("message_not_found")
        if stored.bot_id != ident.bot_id:
            raise _ApiError(not_yours)
        return stored

    # ------------------------------------------------------------------ Web API methods

    async def _api_test(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        if "error" in params:
            raise _ApiError(str(params["error"]), args=params)
        return {"ok": True, "args": params}

    async def _auth_test(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        out: JsonDict = {
            "ok": True,
            "url": f"https://{ident.team_domain}.slack.com/",
            "team": ident.team_name,
            "user": ident.bot_name,
            "team_id": ident.team_id,
            "user_id": ident.bot_user_id,
            "bot_id": ident.bot_id,
            "is_enterprise_install": False,
        }
        if ident.enterprise_id:
            out["enterprise_id"] = ident.enterprise_id
        return out

    async def _chat_post_message(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        channel = self._resolve_channel(params.get("channel"), ident)
        blocks = self._blocks(params)
        attachments = self._json_field(params, "attachments", format_error="invalid_attachments")
        text = str(params.get("text") or "")
        if not text and not blocks and not attachments:
            raise _ApiError("no_text")
        if len(text) > _MAX_TEXT_CHARS:
            raise _ApiError("msg_too_long")
        self._check_channel_rate(channel)
        thread_ts = str(params.get("thread_ts") or "") or None
        message = _Message(
            channel=channel,
            ts=self._next_ts(),
            team=ident.team_id,
            user=ident.bot_user_id,
            bot_id=ident.bot_id,
            app_id=ident.app_id,
            text=text,
            blocks=blocks,
            attachments=attachments,
            thread_ts=thread_ts,
            metadata=self._json_field(params, "metadata", format_error="invalid_metadata_format"),
        )
        if thread_ts:
            parent = self._by_key.get((channel, thread_ts))
            if parent is not None:
                parent.reply_count += 1
        self._messages.append(message)
        self._by_key[(channel, message.ts)] = message
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.as_slack()}

    async def _chat_update(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        stored = self._own_message(params, ident, "cant_update_message")
        blocks = self._blocks(params)
        attachments = self._json_field(params, "attachments", format_error="invalid_attachments")
        text = params.get("text")
        if text is not None and len(str(text)) > _MAX_TEXT_CHARS:
            raise _ApiError("msg_too_long")
        # Slack keeps the previous blocks/attachments when the field is absent; [] removes them.
        if text is not None:
            stored.text = str(text)
        if blocks is not None:
            stored.blocks = blocks or None
        if attachments is not None:
            stored.attachments = attachments or None
        stored.edited_ts = self._next_ts()
        self._record_update(stored, source="chat.update")
        return {
            "ok": True,
            "channel": stored.channel,
            "ts": stored.ts,
            "text": stored.text,
            "message": stored.as_slack(),
        }

    def _record_update(self, stored: _Message, *, source: str) -> None:
        self._updates.append(
            {
                "channel": stored.channel,
                "ts": stored.ts,
                "text": stored.text,
                "blocks": stored.blocks,
                "attachments": stored.attachments,
                "edited_ts": stored.edited_ts,
                "source": source,
            }
        )

    async def _chat_post_ephemeral(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        channel = self._resolve_channel(params.get("channel"), ident)
        user = params.get("user")
        if not user:
            raise _ApiError("user_not_in_channel")
        blocks = self._blocks(params)
        text = str(params.get("text") or "")
        if not text and not blocks and not params.get("attachments"):
            raise _ApiError("no_text")
        message_ts = self._next_ts()
        self._ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": text,
                "blocks": blocks,
                "thread_ts": str(params.get("thread_ts") or "") or None,
                "message_ts": message_ts,
                "source": "chat.postEphemeral",
            }
        )
        return {"ok": True, "message_ts": message_ts}

    async def _chat_delete(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        stored = self._own_message(params, ident, "cant_delete_message")
        stored.deleted = True
        return {"ok": True, "channel": stored.channel, "ts": stored.ts}

    # -- views

    def _parse_view(self, params: JsonDict) -> JsonDict:
        view = self._json_field(params, "view", format_error="invalid_arguments")
        problems: list[str] = []
        if not isinstance(view, dict):
            missing = ["[ERROR] missing required field: view"]
            raise _ApiError("invalid_arguments", response_metadata={"messages": missing})
        if view.get("type") not in ("modal", "home"):
            problems.append("[ERROR] must be one of modal, home [json-pointer:/view/type]")
        if view.get("type") == "modal":
            title = (view.get("title") or {}).get("text")
            if not title:
                problems.append("[ERROR] missing required field: title [json-pointer:/view]")
            elif len(title) > 24:
                problems.append("[ERROR] must be less than 25 characters [json-pointer:/view/title/text]")
        blocks = view.get("blocks")
        if not isinstance(blocks, list):
            problems.append("[ERROR] missing required field: blocks [json-pointer:/view]")
        elif len(blocks) > _MAX_VIEW_BLOCKS:
            problems.append(f"[ERROR] no more than {_MAX_VIEW_BLOCKS} items allowed [json-pointer:/view/blocks]")
        if len(view.get("private_metadata") or "") > 3000:
            problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
        if len(view.get("callback_id") or "") > 255:
            problems.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
        if problems:
            raise _ApiError("invalid_arguments", response_metadata={"messages": problems})
        return view

    def _check_trigger(self, params: JsonDict) -> str:
        trigger_id = params.get("trigger_id") or params.get("interactivity_pointer")
        if not trigger_id:
            raise _ApiError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]}
            )
        if trigger_id in self._expired_triggers:
            raise _ApiError("expired_trigger_id")
        if trigger_id in self._exchanged_triggers:  # a trigger opens or pushes one view, once
            raise _ApiError("trigger_exchanged")
        return str(trigger_id)

    def _render_view(self, view: JsonDict, ident: BotIdentity, *, view_id: str, root_view_id: str,
                     previous_view_id: str | None) -> JsonDict:
        hash_value = f"{int(time.time())}.{secrets.token_hex(4)}"
        return {
            "id": view_id,
            "team_id": ident.team_id,
            "type": view.get("type"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": hash_value,
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous_view_id,
            "root_view_id": root_view_id,
            "app_id": ident.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": ident.team_id,
            "bot_id": ident.bot_id,
        }

    def _new_view_id(self) -> str:
        return f"V0{next(self._id_counter):08d}"

    async def _views_open(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        trigger_id = self._check_trigger(params)
        view = self._parse_view(params)
        self._exchanged_triggers.add(trigger_id)
        view_id = self._new_view_id()
        rendered = self._render_view(view, ident, view_id=view_id, root_view_id=view_id, previous_view_id=None)
        self._views[view_id] = rendered
        self._view_stacks.append([view_id])
        self.views_opened.append(rendered)
        return {"ok": True, "view": rendered}

    async def _views_push(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        # Slack finds the stack from the trigger's modal; we push onto the most recently opened one.
        trigger_id = self._check_trigger(params)
        view = self._parse_view(params)
        if not self._view_stacks:
            raise _ApiError("not_found")
        stack = self._view_stacks[-1]
        if len(stack) >= _MAX_VIEW_STACK:
            raise _ApiError("push_limit_reached")
        self._exchanged_triggers.add(trigger_id)
        view_id = self._new_view_id()
        rendered = self._render_view(view, ident, view_id=view_id, root_view_id=stack[0], previous_view_id=stack[-1])
        stack.append(view_id)
        self._views[view_id] = rendered
        self.views_pushed.append(rendered)
        return {"ok": True, "view": rendered}

    async def _views_update(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        view_id = params.get("view_id")
        if not view_id and params.get("external_id"):
            view_id = next((v["id"] for v in self._views.values() if v["external_id"] == params["external_id"]), None)
        current = self._views.get(str(view_id)) if view_id else None
        if current is None:
            raise _ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        view = self._parse_view(params)
        rendered = self._render_view(
            view, ident, view_id=current["id"], root_view_id=current["root_view_id"],
            previous_view_id=current["previous_view_id"],
        )
        self._views[current["id"]] = rendered
        return {"ok": True, "view": rendered}

    # -- users, conversations, files

    def _user_for(self, user: JsonDict, ident: BotIdentity) -> JsonDict:
        if "email" in user["profile"] and not ident.has_scope("users:read.email"):
            user = {**user, "profile": {k: v for k, v in user["profile"].items() if k != "email"}}
        return user

    async def _users_info(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        user = self._users.get(str(params.get("user", "")))
        if user is None:
            raise _ApiError("user_not_found")
        return {"ok": True, "user": self._user_for(user, ident)}

    async def _users_lookup_by_email(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        email = str(params.get("email", "")).lower()
        for user in self._users.values():
            if str(user["profile"].get("email", "")).lower() == email and email:
                return {"ok": True, "user": self._user_for(user, ident)}
        raise _ApiError("users_not_found")

    async def _conversations_info(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        channel_id = str(params.get("channel", ""))
        if channel_id in self._channels:
            return {"ok": True, "channel": self._channels[channel_id]}
        for user_id, dm_id in self._dm_by_user.items():
            if dm_id == channel_id:
                return {"ok": True, "channel": self._im_object(dm_id, user_id, ident)}
        raise _ApiError("channel_not_found")

    @staticmethod
    def _im_object(dm_id: str, user_id: str, ident: BotIdentity) -> JsonDict:
        return {
            "id": dm_id,
            "created": 1700000000,
            "is_im": True,
            "is_org_shared": False,
            "user": user_id,
            "is_user_deleted": False,
            "priority": 0,
            "context_team_id": ident.team_id,
        }

    async def _conversations_open(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        if params.get("channel"):
            return await self._conversations_info({"channel": params["channel"]}, ident)
        users = [u.strip() for u in str(params.get("users", "")).split(",") if u.strip()]
        if not users:
            raise _ApiError("users_list_not_supplied")
        if any(u[0] not in "UW" for u in users):
            raise _ApiError("user_not_found")
        if len(users) > 1:
            group_id = "G0" + hashlib.sha1(",".join(sorted(users)).encode()).hexdigest()[:8].upper()
            return {"ok": True, "channel": {"id": group_id}}
        already_open = users[0] in self._dm_by_user
        dm_id = self._dm_channel_for(users[0])
        channel = (
            self._im_object(dm_id, users[0], ident) if str(params.get("return_im")) in ("1", "true", "True")
            else {"id": dm_id}
        )
        out: JsonDict = {"ok": True, "channel": channel}
        if already_open:
            out.update(no_op=True, already_open=True)
        return out

    # -- history (the fake stores only what bots posted, so these list bot messages)

    @staticmethod
    def _truthy(value: Any) -> bool:
        return str(value).lower() in ("1", "true")

    def _page(self, messages: list[_Message], params: JsonDict, default_limit: int) -> JsonDict:
        """Slack's cursor pagination over ``messages``; metadata only with ``include_all_metadata``."""
        limit = max(1, min(int(params.get("limit") or default_limit), 1000))
        start = int(base64.b64decode(str(params["cursor"])).decode()) if params.get("cursor") else 0
        chunk = messages[start:start + limit]
        with_metadata = self._truthy(params.get("include_all_metadata"))
        out = []
        for m in chunk:
            record = m.as_slack()
            if not with_metadata:
                record.pop("metadata", None)
            out.append(record)
        more = start + limit < len(messages)
        next_cursor = base64.b64encode(str(start + limit).encode()).decode() if more else ""
        return {"ok": True, "messages": out, "has_more": more, "response_metadata": {"next_cursor": next_cursor}}

    async def _conversations_history(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        """Top-level messages of a channel, newest first (thread replies are not listed)."""
        channel = self._resolve_channel(params.get("channel"), ident)
        top = [m for m in reversed(self._messages) if m.channel == channel and not m.deleted
               and m.team == ident.team_id and (m.thread_ts is None or m.thread_ts == m.ts)]
        return self._page(top, params, 100)

    async def _conversations_replies(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        """A thread oldest first: its parent (when a bot posted it) and its replies."""
        channel = self._resolve_channel(params.get("channel"), ident)
        ts = str(params.get("ts") or "")
        if not ts:
            raise _ApiError("invalid_arguments")
        thread = [m for m in self._messages if m.channel == channel and not m.deleted and m.team == ident.team_id
                  and (m.ts == ts or m.thread_ts == ts)]
        return self._page(thread, params, 1000)

    async def _files_info(self, params: JsonDict, ident: BotIdentity) -> JsonDict:
        registered = self._files.get(str(params.get("file", "")))
        if registered is None or registered.team_id != ident.team_id:
            raise _ApiError("file_not_found")
        return {"ok": True, "file": registered.info, "comments": [], "response_metadata": {"next_cursor": ""}}

    # -- OAuth

    def _oauth_v2_access(self, params: JsonDict, request: web.Request) -> JsonDict:
        # slack_sdk sends client_id/secret as HTTP Basic auth; Slack also accepts them as form fields.
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                raise _ApiError("invalid_client_id") from None
        if client_id != self.client_id:
            raise _ApiError("invalid_client_id")
        if client_secret != self.client_secret:
            raise _ApiError("bad_client_secret")
        grant = self._oauth_codes.pop(str(params.get("code", "")), None)
        if grant is None:
            raise _ApiError("invalid_code")
        if grant["redirect_uri"] and params.get("redirect_uri") != grant["redirect_uri"]:
            raise _ApiError("bad_redirect_uri")
        n = next(self._id_counter)
        ident = self.add_bot(
            BotIdentity(
                token=f"xoxb-{1000000000 + n}-{2000000000 + n}-{secrets.token_hex(12)}",
                team_id=grant["team_id"],
                team_name=grant["team_name"],
                team_domain=grant["team_name"].lower().replace(" ", "-"),
                bot_user_id=f"U0BOT{n:04d}",
                bot_id=f"B0BOT{n:04d}",
                app_id=self.app_id,
                scopes=grant["scopes"],
            )
        )
        return {
            "ok": True,
            "app_id": ident.app_id,
            "authed_user": {"id": grant["installer_user_id"]},
            "scope": ident.scopes,
            "token_type": "bot",
            "access_token": ident.token,
            "bot_user_id": ident.bot_user_id,
            "team": {"id": ident.team_id, "name": ident.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    # ------------------------------------------------------------------ files and response_url

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        outage = await self._outage_response(request)
        if outage is not None:
            return outage
        team_file = request.match_info["team_file"]
        team_id, _, file_id = team_file.partition("-")
        registered = self._files.get(file_id)
        header = request.headers.get("Authorization", "")
        ident = self._identities.get(header[len("Bearer "):].strip()) if header.startswith("Bearer ") else None
        authorized = (
            ident is not None and ident.token not in self._revoked and registered is not None
            and ident.team_id == team_id == registered.team_id
        )
        self.downloads.append({"file_id": file_id, "path": request.path, "authorized": authorized})
        await self._notify()
        if registered is None:
            return web.Response(status=404, text="Not Found", content_type="text/plain")
        if not authorized:
            return web.Response(status=200, text=_SIGN_IN_PAGE, content_type="text/html")
        return web.Response(
            body=registered.content,
            content_type=registered.info["mimetype"],
            headers={"Content-Disposition": f'attachment; filename="{registered.info["name"]}"'},
        )

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        outage = await self._outage_response(request)
        if outage is not None:
            return outage
        target = self._response_targets.get(request.path)
        try:
            payload = json.loads(await request.text())
        except json.JSONDecodeError:
            payload = None
        record = {"url": str(request.url), "payload": payload, "status": 200}
        self.responses.append(record)
        if target is None:
            record["status"] = 404
            await self._notify()
            return web.Response(status=404, text="expired_url", content_type="text/html")
        target.uses += 1
        if target.uses > _RESPONSE_URL_MAX_USES:
            record["status"] = 404
            await self._notify()
            return web.Response(status=404, text="used_url", content_type="text/html")
        if not isinstance(payload, dict):
            record["status"] = 400
            await self._notify()
            return web.Response(status=400, text="invalid_payload", content_type="text/html")
        self._apply_response(target, payload)
        await self._notify()
        return web.Response(text="ok", content_type="text/html")

    def _apply_response(self, target: _ResponseTarget, payload: JsonDict) -> None:
        original = self._by_key.get((target.channel or "", target.message_ts or ""))
        if original is not None and payload.get("delete_original"):
            original.deleted = True
            return
        if original is not None and payload.get("replace_original"):
            if "text" in payload:
                original.text = str(payload["text"])
            if "blocks" in payload:
                original.blocks = payload["blocks"] or None
            original.edited_ts = self._next_ts()
            self._record_update(original, source="response_url")
            return
        ident = self._bot_for_team(target.team_id)
        if payload.get("response_type") == "in_channel" and target.channel:
            message = _Message(
                channel=target.channel, ts=self._next_ts(), team=ident.team_id, user=ident.bot_user_id,
                bot_id=ident.bot_id, app_id=ident.app_id, text=str(payload.get("text") or ""),
                blocks=payload.get("blocks"), attachments=payload.get("attachments"),
                thread_ts=payload.get("thread_ts"),
            )
            self._messages.append(message)
            self._by_key[(message.channel, message.ts)] = message
            return
        self._ephemerals.append(
            {
                "channel": target.channel,
                "user": target.user,
                "text": str(payload.get("text") or ""),
                "blocks": payload.get("blocks"),
                "thread_ts": payload.get("thread_ts"),
                "message_ts": self._next_ts(),
                "source": "response_url",
            }
        )
