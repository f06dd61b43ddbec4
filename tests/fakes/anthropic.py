"""FakeAnthropic: a local aiohttp server that speaks the Anthropic Messages API (`POST /v1/messages`).

The real `anthropic.AsyncAnthropic` client is pointed at `fake.url` and talks to it over HTTP, so request
building, error classes and `retry-after` parsing are the SDK's own.

What it does like the real API
- Checks the API key (401 `authentication_error` when missing or, if the fake was given `api_key=`,
  different) and `anthropic-version` (400). The key is read from `x-api-key` or from
  `Authorization: Bearer …`, which is where anthropic 2.12 actually puts it.
- Rejects what the real API rejects and our code could plausibly send: missing fields, empty text
  blocks, more than 4 `cache_control` breakpoints, bad image blocks, structured-output schemas whose
  objects lack `additionalProperties: false`, a forced tool that is not declared.
- Prompt caching: the request is flattened into blocks in the API's cache order (tools, system,
  messages); a prefix is written to the cache at every block carrying `cache_control` (or the last block
  when the top-level `cache_control` is set) and read back when a later request repeats it (the lookup
  walks back up to 20 blocks from each breakpoint). `cache_control` itself is not part of the prefix, so
  moving the history breakpoint forward keeps earlier prefixes readable. Tokens are estimated as
  len(text) // 4 (a fixed 1,600 per image). `min_cache_tokens` mimics the model minimum below which
  caching is silently skipped; it defaults to 0 so small test prompts cache. `expire_cache()` stands in
  for the 5-minute TTL running out.
- Every response carries a `request-id` header; errors use `{"type": "error", "error": {"type", "message"},
  "request_id"}`; 429/529 carry `retry-after` when scripted with one.

Scripting (per test)
- A FIFO queue: `reply_text`, `reply_json`, `reply_tool_use`, `fail(status, retry_after, times)`,
  `delay(seconds)` (the next reply is held back that long). Invalid requests (400/401) do not consume it.
- When the queue is empty, `fake.responder(request_json)` is asked (it may return a reply object, a `str`
  for text, a `dict` for JSON, or an awaitable of those); without a responder a default reply is made:
  schema-shaped JSON for structured output / forced tools, otherwise `default_text`.
- `down()` / `up()`: a full outage answers every request with **HTTP 503** (`api_error`), chosen over
  connection-refused because it is deterministic (no port re-binding) and still records the requests.
- Streaming (`"stream": true`) is not implemented and answered with 400 so nobody mistakes it for support.
- `fake.requests` records every request (`RecordedRequest`: path, lower-cased headers, JSON body, the
  status and JSON body answered).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import itertools
import json
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Union

from aiohttp import web

IMAGE_TOKENS = 1600
CACHE_LOOKBACK_BLOCKS = 20
MAX_BREAKPOINTS = 4
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
IMAGE_MEDIA_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
DEFAULT_ERROR_MESSAGES = {429: "Number of request tokens has exceeded your rate limit.", 529: "Overloaded"}


# --------------------------------------------------------------------------- scripted replies
@dataclass(frozen=True)
class TextReply:
    text: str
    stop_reason: str = "end_turn"


@dataclass(frozen=True)
class JsonReply:
    """Structured output: a JSON text block, or a `tool_use` block when the request forces a tool."""

    data: Any


@dataclass(frozen=True)
class ToolUseReply:
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ErrorReply:
    status: int
    message: str | None = None
    error_type: str | None = None
    retry_after: float | None = None


Reply = Union[TextReply, JsonReply, ToolUseReply, ErrorReply]
ResponderResult = Union[Reply, str, dict]
Responder = Callable[[dict[str, Any]], Union[ResponderResult, Awaitable[ResponderResult]]]


@dataclass(frozen=True)
class _Delay:
    seconds: float


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    response: dict[str, Any] = field(default_factory=dict)


class _RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- prompt cache model
@dataclass(frozen=True)
class _Block:
    canonical: str
    tokens: int
    cache_ttl: str | None  # set when this block carries cache_control


def _canonical(block: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)


def _block_tokens(block: dict[str, Any]) -> int:
    if block.get("type") == "text":
        return len(block.get("text", "")) // 4
    if block.get("type") == "image":
        return IMAGE_TOKENS
    return len(_canonical(block)) // 4


def _ttl(block: dict[str, Any]) -> str | None:
    marker = block.get("cache_control")
    return marker.get("ttl", "5m") if isinstance(marker, dict) else None


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _flatten(body: dict[str, Any]) -> list[_Block]:
    """The request as blocks in the API's cache order: tools, then system, then messages."""
    blocks = [_Block(_canonical(tool), len(_canonical(tool)) // 4, _ttl(tool)) for tool in body.get("tools", [])]
    for block in _content_blocks(body.get("system", [])):
        blocks.append(_Block(_canonical(block), _block_tokens(block), _ttl(block)))
    for message in body["messages"]:
        # the role is part of the prefix, so it opens each message as a zero-token block
        blocks.append(_Block(f"role:{message['role']}", 0, None))
        for block in _content_blocks(message["content"]):
            blocks.append(_Block(_canonical(block), _block_tokens(block), _ttl(block)))
    top_level = body.get("cache_control")
    if isinstance(top_level, dict) and blocks:
        last = blocks[-1]
        blocks[-1] = _Block(last.canonical, last.tokens, top_level.get("ttl", "5m"))
    return blocks


class _PromptCache:
    def __init__(self, min_tokens: int) -> None:
        self.min_tokens = min_tokens
        self._entries: dict[str, float] = {}  # prefix hash -> expiry (monotonic)

    def clear(self) -> None:
        self._entries.clear()

    def usage(self, model: str, blocks: list[_Block]) -> dict[str, Any]:
        now = time.monotonic()
        keys, cumulative = [], []
        digest, running = hashlib.sha256(model.encode()), 0
        for block in blocks:
            digest.update(b"\x00" + block.canonical.encode())
            keys.append(digest.hexdigest())
            running += block.tokens
            cumulative.append(running)
        total = running
        breakpoints = [i for i, block in enumerate(blocks) if block.cache_ttl]

        read_upto = -1
        for bp in reversed(breakpoints):
            for pos in range(bp, max(-1, bp - CACHE_LOOKBACK_BLOCKS), -1):
                if self._entries.get(keys[pos], 0.0) > now:
                    read_upto = pos
                    break
            if read_upto >= 0:
                break

        writable = [bp for bp in breakpoints if cumulative[bp] >= self.min_tokens]
        read = cumulative[read_upto] if read_upto >= 0 else 0
        creation, ttl_of_creation = 0, "5m"
        if writable and writable[-1] > read_upto:
            creation = cumulative[writable[-1]] - read
            ttl_of_creation = blocks[writable[-1]].cache_ttl or "5m"
        for bp in writable:
            self._entries[keys[bp]] = now + TTL_SECONDS.get(blocks[bp].cache_ttl or "5m", 300.0)
        if read_upto >= 0:  # a hit refreshes the entry's TTL
            self._entries[keys[read_upto]] = max(self._entries[keys[read_upto]], now + 300.0)
        return {
            "input_tokens": total - read - creation,
            "cache_creation_input_tokens": creation,
            "cache_read_input_tokens": read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": creation if ttl_of_creation != "1h" else 0,
                "ephemeral_1h_input_tokens": creation if ttl_of_creation == "1h" else 0,
            },
            "service_tier": "standard",
        }


# --------------------------------------------------------------------------- request validation
def _validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise _RequestError(400, "request body must be a JSON object")
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise _RequestError(400, f"{name}: Field required")
    if body.get("stream"):
        raise _RequestError(400, "stream: FakeAnthropic does not implement streaming")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        raise _RequestError(400, "max_tokens: must be a positive integer")
    if not body["messages"]:
        raise _RequestError(400, "messages: at least one message is required")
    system = body.get("system", [])
    for block in system if isinstance(system, list) else []:
        if block.get("type") == "text" and not block.get("text"):
            raise _RequestError(400, "system: text content blocks must be non-empty")
    for index, message in enumerate(body["messages"]):
        if message.get("role") not in ("user", "assistant"):
            raise _RequestError(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
        blocks = _content_blocks(message.get("content", []))
        if not blocks:
            raise _RequestError(400, f"messages.{index}: all messages must have non-empty content")
        for block in blocks:
            _validate_block(index, block)
    breakpoints = sum(1 for block in _all_blocks(body) if isinstance(block.get("cache_control"), dict))
    breakpoints += 1 if isinstance(body.get("cache_control"), dict) else 0
    if breakpoints > MAX_BREAKPOINTS:
        raise _RequestError(400, f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                                 f"Found {breakpoints}.")
    _validate_output_format(body)
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool" and choice.get("name") not in {t.get("name") for t in body.get("tools", [])}:
        raise _RequestError(400, f"tool_choice: tool '{choice.get('name')}' not found in tools")


def _validate_block(index: int, block: dict[str, Any]) -> None:
    if block.get("type") == "text" and not block.get("text"):
        raise _RequestError(400, "messages: text content blocks must be non-empty")
    if block.get("type") == "image":
        source = block.get("source") or {}
        if source.get("media_type") not in IMAGE_MEDIA_TYPES:
            raise _RequestError(400, f"messages.{index}: image media_type must be one of {sorted(IMAGE_MEDIA_TYPES)}")
        try:
            base64.b64decode(source.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            raise _RequestError(400, f"messages.{index}: Could not process image") from None


def _all_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = list(body.get("tools", [])) + _content_blocks(body.get("system", []))
    for message in body["messages"]:
        blocks.extend(_content_blocks(message.get("content", [])))
    return blocks


def _validate_output_format(body: dict[str, Any]) -> None:
    fmt = (body.get("output_config") or {}).get("format")
    if not fmt:
        return
    if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise _RequestError(400, "output_config.format: expected {'type': 'json_schema', 'schema': {...}}")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and node.get("additionalProperties") is not False:
                raise _RequestError(400, "output_config.format.schema: For 'object' type, "
                                         "'additionalProperties' must be explicitly set to false")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(fmt["schema"])


# --------------------------------------------------------------------------- default structured replies
def example_for_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A minimal instance of a JSON schema (first enum value, empty arrays, "example" strings)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return example_for_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            variants = schema[key]
            non_null = [v for v in variants if v.get("type") != "null"]
            return example_for_schema((non_null or variants)[0], defs)
    kind = schema.get("type")
    if kind == "object":
        return {name: example_for_schema(prop, defs) for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        return [example_for_schema(schema["items"], defs) for _ in range(schema.get("minItems", 0))]
    return {"string": "example", "integer": 0, "number": 0, "boolean": False, "null": None}.get(kind, None)


# --------------------------------------------------------------------------- the server
def _bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class FakeAnthropic:
    def __init__(self, *, api_key: str | None = None, min_cache_tokens: int = 0,
                 default_text: str = "Fake reply.") -> None:
        self.api_key = api_key
        self.default_text = default_text
        self.responder: Responder | None = None
        self.requests: list[RecordedRequest] = []
        self._cache = _PromptCache(min_cache_tokens)
        self._script: deque[Reply | _Delay] = deque()
        self._down = False
        self._ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ---- lifecycle
    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeAnthropic is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> "FakeAnthropic":
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        self._stopping.set()  # releases handlers held by delay()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeAnthropic":
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ---- scripting
    def reply_text(self, text: str, *, stop_reason: str = "end_turn") -> None:
        self._script.append(TextReply(text, stop_reason))

    def reply_json(self, data: Any) -> None:
        self._script.append(JsonReply(data))

    def reply_tool_use(self, name: str, input: dict[str, Any]) -> None:
        self._script.append(ToolUseReply(name, input))

    def fail(self, status: int = 529, retry_after: float | None = None, times: int = 1,
             message: str | None = None) -> None:
        for _ in range(times):
            self._script.append(ErrorReply(status, message, None, retry_after))

    def delay(self, seconds: float) -> None:
        """Hold the next reply back for `seconds` (cut short when the fake stops)."""
        self._script.append(_Delay(seconds))

    def down(self) -> None:
        self._down = True

    def up(self) -> None:
        self._down = False

    def expire_cache(self) -> None:
        self._cache.clear()

    @property
    def pending(self) -> int:
        """Scripted steps not yet consumed."""
        return len(self._script)

    # ---- handling
    async def _handle(self, request: web.Request) -> web.Response:
        request_id = f"req_fake_{next(self._ids):06d}"
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = RecordedRequest(request.path, {k.lower(): v for k, v in request.headers.items()}, body)
        self.requests.append(record)

        if self._down:
            return self._error(record, request_id, ErrorReply(503, "Service unavailable (FakeAnthropic is down)"))
        try:
            self._check_headers(record.headers)
            _validate(body)
        except _RequestError as exc:
            return self._error(record, request_id, ErrorReply(exc.status, exc.message))

        seconds, step = self._next_step()
        if seconds > 0:
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
            except asyncio.TimeoutError:
                pass
        reply = step if step is not None else await self._ask_responder(body)
        if isinstance(reply, ErrorReply):
            return self._error(record, request_id, reply)
        return self._message(record, request_id, body, reply)

    def _check_headers(self, headers: dict[str, str]) -> None:
        # anthropic 2.12 sends the API key as `Authorization: Bearer <key>`; older clients and curl
        # examples use `x-api-key`. The real API takes either, so the fake does too.
        key = headers.get("x-api-key") or _bearer_token(headers.get("authorization", ""))
        if not key:
            raise _RequestError(401, "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            raise _RequestError(401, "invalid x-api-key")
        if not headers.get("anthropic-version"):
            raise _RequestError(400, "anthropic-version: header is required")

    def _next_step(self) -> tuple[float, Reply | None]:
        seconds = 0.0
        while self._script:
            step = self._script.popleft()
            if isinstance(step, _Delay):
                seconds += step.seconds
                continue
            return seconds, step
        return seconds, None

    async def _ask_responder(self, body: dict[str, Any]) -> Reply:
        if self.responder is None:
            return self._default_reply(body)
        result = self.responder(body)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, str):
            return TextReply(result)
        if isinstance(result, dict):
            return JsonReply(result)
        return result

    def _default_reply(self, body: dict[str, Any]) -> Reply:
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            tool = next(t for t in body.get("tools", []) if t.get("name") == choice["name"])
            return JsonReply(example_for_schema(tool.get("input_schema", {"type": "object"})))
        fmt = (body.get("output_config") or {}).get("format")
        if fmt:
            return JsonReply(example_for_schema(fmt["schema"]))
        return TextReply(self.default_text)

    def _message(self, record: RecordedRequest, request_id: str, body: dict[str, Any],
                 reply: Reply) -> web.Response:
        content, stop_reason = self._content(body, reply)
        usage = self._cache.usage(body["model"], _flatten(body))
        output_chars = sum(len(b.get("text", "")) or len(json.dumps(b.get("input", {}))) for b in content)
        usage["output_tokens"] = max(1, output_chars // 4)
        payload = {
            "id": f"msg_fake_{request_id[9:]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        record.status, record.response = 200, payload
        return web.json_response(payload, headers={"request-id": request_id})

    @staticmethod
    def _content(body: dict[str, Any], reply: Reply) -> tuple[list[dict[str, Any]], str]:
        if isinstance(reply, TextReply):
            return [{"type": "text", "text": reply.text}], reply.stop_reason
        if isinstance(reply, ToolUseReply):
            return [{"type": "tool_use", "id": "toolu_fake_01", "name": reply.name, "input": reply.input}], "tool_use"
        choice = body.get("tool_choice") or {}
        if choice.get("type") == "tool":
            block = {"type": "tool_use", "id": "toolu_fake_01", "name": choice["name"], "input": reply.data}
            return [block], "tool_use"
        return [{"type": "text", "text": json.dumps(reply.data)}], "end_turn"

    @staticmethod
    def _error(record: RecordedRequest, request_id: str, reply: ErrorReply) -> web.Response:
        payload = {
            "type": "error",
            "error": {
                "type": reply.error_type or ERROR_TYPES.get(reply.status, "api_error"),
                "message": reply.message or DEFAULT_ERROR_MESSAGES.get(reply.status, f"Error {reply.status}"),
            },
            "request_id": request_id,
        }
        headers = {"request-id": request_id}
        if reply.retry_after is not None:
            headers["retry-after"] = f"{reply.retry_after:g}"
        record.status, record.response = reply.status, payload
        return web.json_response(payload, status=reply.status, headers=headers)
