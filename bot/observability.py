"""Request ids in every log line of a request, and ack-latency histograms per platform and kind."""
from __future__ import annotations

import json
import logging
import time
import uuid
from contextvars import ContextVar
from urllib.parse import parse_qs

from aiohttp import web

from bot import metrics

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_PLATFORM_PATHS = {"/slack/events": "slack", "/api/messages": "teams"}


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id_var.get()
        if rid and not hasattr(record, "request_id"):
            record.request_id = rid
        return True


def install_log_context() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())


async def _kind(request: web.Request, platform: str) -> str:
    """What kind of inbound this is, from the (cached) body, without disturbing verification."""
    try:
        body = await request.read()
        if platform == "teams":
            return str(json.loads(body or b"{}").get("type") or "unknown")
        if request.content_type == "application/json":  # Events API: same kinds as adapters/slack/mount.py
            payload = json.loads(body or b"{}")
            if payload.get("type") == "event_callback":
                return "event:" + str((payload.get("event") or {}).get("type") or "unknown")
            return str(payload.get("type") or "event")
        form = parse_qs(body.decode("utf-8", "replace"))
        if "payload" in form:
            payload = json.loads(form["payload"][0])
            return str(payload.get("type") or "interaction")
        return "command" if "command" in form else "unknown"
    except web.HTTPException:  # 413: re-reading later would continue the stream, so stop here
        raise
    except Exception:
        return "malformed"


@web.middleware
async def observe(request: web.Request, handler):
    rid = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]  # a caller's id, bounded
    token = request_id_var.set(rid)
    platform = _PLATFORM_PATHS.get(request.path)
    started = time.perf_counter()
    kind = None
    status = 500
    try:
        if platform and request.method == "POST":
            kind = await _kind(request, platform)
        response = await handler(request)
        status = response.status
        response.headers.setdefault("X-Request-Id", rid)
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if platform and request.method == "POST":
            # A refused request's kind came from a body nobody vouched for (Teams checks the
            # token after parsing): keep label values bounded.
            if status in (401, 403):
                kind = "unauthenticated"
            elif status == 413:
                kind = "too_large"
            elif 400 <= status < 500:
                kind = "rejected"
            kind = kind or "unknown"
            metrics.ACK_LATENCY.labels(platform, kind).observe(time.perf_counter() - started)
            metrics.INBOUND.labels(platform, kind, str(status)).inc()
        request_id_var.reset(token)
