"""The one long-lived Web API client: our shared aiohttp session (slack_sdk would otherwise open
and close a session per call) and retry handlers for 429, 5xx and dropped connections.

The client carries a token only in single-workspace mode; every call we make passes the
workspace's token explicitly, so one client serves every installation."""
from __future__ import annotations

from typing import Optional

import aiohttp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler, AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.config import SlackOptions

WEB_API_TIMEOUT_S = 15


def retry_after_seconds(headers: dict | None) -> float | None:
    """Retry-After from slack_sdk's header dict (values may be lists)."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, (list, tuple)) and value else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None


class ShortRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Sleeps through short Retry-After waits inside the call; a long one fails the call at once
    so the outbox reschedules it instead of holding a worker (and the channel's pacing lock)."""

    def __init__(self, max_retry_count: int, max_wait_s: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: Optional[HttpResponse] = None, error: Optional[Exception] = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_seconds(response.headers)
        return wait is None or wait <= self.max_wait_s


def retry_handlers(options: SlackOptions) -> list[AsyncRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=1),
        ShortRateLimitRetryHandler(options.rate_limit_retries, options.max_inline_retry_after_s),
        AsyncServerErrorRetryHandler(max_retry_count=1),
    ]


def build_web_client(api_url: str, session: aiohttp.ClientSession, options: SlackOptions,
                     token: str | None = None) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=api_url, session=session, timeout=WEB_API_TIMEOUT_S,
                          retry_handlers=retry_handlers(options))
