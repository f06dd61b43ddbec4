"""SlackSender: the outbox's ChannelSender for Slack (chat.postMessage / chat.update).

A message reference is `{"channel_id", "ts", "thread_id", "team_id"}`; `thread_id` is the ts that
replies in this message's thread use (the thread's root, or the message itself when it starts
one). Failures become core.errors.DeliveryFailed: 429 with its Retry-After, 5xx and connection
problems retryable, a gone channel or a revoked token permanent with a message that says what to
do. Posts are paced per channel (pacing.py).

Exactly once on screen: chat.postMessage has no idempotency key, so a post carries the outbox
row's `delivery_key` in Slack message metadata (invisible to people), and a retried row first
looks for that key in the channel or thread (`find_delivered`, conversations.history/replies
with the *:history scopes the bot already has for thread replies). A process killed after Slack
accepted a post but before the reference was stored therefore never posts it twice."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError, SlackObjectFormationError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import render
from adapters.slack.client import retry_after_seconds
from adapters.slack.kit import Rendered
from adapters.slack.mrkdwn import clip
from adapters.slack.pacing import ChannelPacer
from adapters.slack.tokens import NotInstalled, TokenSource
from core.errors import DeliveryFailed

log = logging.getLogger(__name__)

PERMANENT_ERRORS = {
    "channel_not_found": "the channel does not exist, or it is private and FlowPilot was not invited",
    "not_in_channel": "FlowPilot is not a member of this channel: invite it with /invite @FlowPilot",
    "is_archived": "the channel is archived",
    "invalid_auth": "the Slack bot token is invalid: check SLACK_BOT_TOKEN or reinstall the app",
    "not_authed": "no Slack bot token was sent: check SLACK_BOT_TOKEN or reinstall the app",
    "token_revoked": "the Slack bot token was revoked (the app was uninstalled): reinstall it",
    "account_inactive": "the Slack bot token belongs to a deactivated app or workspace",
    "msg_too_long": "the message is too long for Slack",
    "missing_scope": "the Slack app lacks a permission: reinstall it with the manifest's scopes",
    "restricted_action": "a workspace setting prevents FlowPilot from posting here",
    "user_not_found": "the Slack user does not exist",
    "cannot_dm_bot": "a bot cannot be sent a direct message",
    "team_access_not_granted": "the app is not installed in this workspace",
}
REPOST_ERRORS = {"message_not_found", "cant_update_message"}
BLOCK_ERRORS = {"msg_blocks_too_long", "invalid_blocks"}
FALLBACK_TEXT_LIMIT = 39_000
DELIVERY_EVENT = "flowpilot_delivery"  # message metadata event_type carrying the outbox delivery key
FIND_PAGES = 5  # conversations.replies pages (200 each) searched for an earlier delivery


def delivery_failed(exc: Exception) -> DeliveryFailed:
    """One mapping from Slack client failures to the outbox's retry decision."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", None)
        error = str((exc.response.data or {}).get("error") if isinstance(exc.response.data, dict) else "") or "error"
        if status == 429:
            wait = retry_after_seconds(getattr(exc.response, "headers", None))
            return DeliveryFailed(f"Slack rate limit (retry after {wait}s)", retry_after=wait, status=429)
        if status is not None and status >= 500:
            return DeliveryFailed(f"Slack server error {status}", status=status)
        if error in PERMANENT_ERRORS:
            return DeliveryFailed(f"Slack refused the message ({error}): {PERMANENT_ERRORS[error]}.", permanent=True,
                                  status=status)
        return DeliveryFailed(f"Slack error: {error}", status=status)
    if isinstance(exc, NotInstalled):
        return DeliveryFailed(str(exc), permanent=True)
    if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, SlackClientError, OSError)):
        return DeliveryFailed(f"Slack unreachable: {type(exc).__name__}: {exc}")
    return DeliveryFailed(f"Slack delivery failed: {type(exc).__name__}: {exc}")


def _error_code(exc: SlackApiError) -> str:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    return str(data.get("error") or "")


def blocks_as_text(rendered: Rendered) -> str:
    """The whole message as mrkdwn text, for when Slack rejects the blocks (msg_blocks_too_long)."""
    parts: list[str] = []
    for block in rendered.blocks:
        if block.get("type") in ("section", "header"):
            parts.append(str((block.get("text") or {}).get("text") or ""))
        elif block.get("type") == "context":
            parts += [str(e.get("text") or "") for e in block.get("elements", [])]
    return clip("\n\n".join(p for p in parts if p) or rendered.text, FALLBACK_TEXT_LIMIT)


class SlackSender:
    def __init__(self, client: AsyncWebClient, tokens: TokenSource, pacer: ChannelPacer | None = None) -> None:
        self.client = client
        self.tokens = tokens
        self.pacer = pacer or ChannelPacer()

    # ------------------------------------------------------------------ ChannelSender
    async def post(self, destination: dict[str, Any], view: Any) -> dict[str, Any]:
        team_id = str(destination.get("workspace_id") or "")
        try:
            token = await self.tokens.bot_token(team_id)
            channel = destination.get("channel_id")
            if destination.get("user_id"):
                channel = await self._open_dm(str(destination["user_id"]), token)
            if not channel:
                raise DeliveryFailed("No Slack channel or user to post to.", permanent=True)
            rendered = self._render(view)
            thread_ts = destination.get("thread_id") or None
            key = destination.get("delivery_key")
            metadata = {"event_type": DELIVERY_EVENT, "event_payload": {"key": key}} if key else None
            async with self.pacer.turn(f"{team_id}:{channel}"):
                resp = await self._with_text_fallback(
                    rendered, lambda text, blocks: self.client.chat_postMessage(
                        token=token, channel=channel, text=text, blocks=blocks or None, thread_ts=thread_ts,
                        unfurl_links=False, unfurl_media=False, metadata=metadata))
        except DeliveryFailed:
            raise
        except Exception as exc:
            raise delivery_failed(exc) from exc
        ts = str(resp["ts"])
        return {"channel_id": str(resp.get("channel") or channel), "ts": ts, "thread_id": thread_ts or ts,
                "team_id": team_id}

    async def update(self, ref: dict[str, Any], view: Any) -> dict[str, Any]:
        team_id = str(ref.get("team_id") or "")
        try:
            token = await self.tokens.bot_token(team_id)
            rendered = self._render(view)
            await self._with_text_fallback(
                rendered, lambda text, blocks: self.client.chat_update(
                    token=token, channel=ref["channel_id"], ts=ref["ts"], text=text, blocks=blocks))
        except SlackApiError as exc:
            if _error_code(exc) not in REPOST_ERRORS:
                raise delivery_failed(exc) from exc
            # The message is gone (deleted by someone, or posted by an older install): post it again.
            log.info("slack: message to update is gone; posting it again",
                     extra={"channel": ref.get("channel_id"), "error": _error_code(exc)})
            in_thread = ref.get("thread_id") and ref.get("thread_id") != ref.get("ts")
            return await self.post({"workspace_id": team_id, "channel_id": ref.get("channel_id"),
                                    "thread_id": ref.get("thread_id") if in_thread else None}, view)
        except DeliveryFailed:
            raise
        except Exception as exc:
            raise delivery_failed(exc) from exc
        return dict(ref)

    async def find_delivered(self, destination: dict[str, Any], key: str) -> dict[str, Any] | None:
        """The reference of a message an earlier attempt posted under `key`, or None. Best effort:
        when Slack cannot be asked, the caller posts (a duplicate beats a lost message)."""
        team_id = str(destination.get("workspace_id") or "")
        try:
            token = await self.tokens.bot_token(team_id)
            channel = destination.get("channel_id")
            if destination.get("user_id"):
                channel = await self._open_dm(str(destination["user_id"]), token)
            if not channel:
                return None
            thread_ts = destination.get("thread_id") or None
            async for message in self._recent(token, str(channel), thread_ts):
                meta = message.get("metadata") or {}
                if meta.get("event_type") == DELIVERY_EVENT and (meta.get("event_payload") or {}).get("key") == key:
                    ts = str(message["ts"])
                    return {"channel_id": str(channel), "ts": ts, "thread_id": thread_ts or ts, "team_id": team_id}
        except Exception as exc:
            log.warning("slack: could not look for an earlier delivery; posting again",
                        extra={"key": key, "error": f"{type(exc).__name__}: {exc}"})
        return None

    async def _recent(self, token: str, channel: str, thread_ts: str | None):
        if thread_ts is None:  # a top-level post: the newest messages of the channel
            resp = await self.client.conversations_history(token=token, channel=channel, limit=100,
                                                           include_all_metadata=True)
            for message in resp.get("messages") or []:
                yield message
            return
        cursor = None
        for _ in range(FIND_PAGES):
            resp = await self.client.conversations_replies(token=token, channel=channel, ts=thread_ts, limit=200,
                                                           include_all_metadata=True, cursor=cursor)
            for message in resp.get("messages") or []:
                yield message
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _render(view: Any) -> Rendered:
        try:
            return render(view)
        except (SlackObjectFormationError, ValueError, TypeError) as exc:  # a rendering bug: retrying won't help
            raise DeliveryFailed(f"Could not render {type(view).__name__} for Slack: {exc}", permanent=True) from exc

    async def _with_text_fallback(self, rendered: Rendered,
                                  call: Callable[[str, list[dict[str, Any]] | None], Awaitable[Any]]) -> Any:
        try:
            return await call(rendered.text, rendered.blocks)
        except SlackApiError as exc:
            if _error_code(exc) not in BLOCK_ERRORS:
                raise
            log.warning("slack: blocks rejected; sending the message as text", extra={"error": _error_code(exc)})
            return await call(blocks_as_text(rendered), [])

    async def _open_dm(self, user_id: str, token: str) -> str:
        resp = await self.client.conversations_open(token=token, users=user_id)
        return str(resp["channel"]["id"])
