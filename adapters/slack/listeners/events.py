"""Events API: @mentions and thread replies. Bolt acks events before these run.

- `app_mention` → copilot.mention, in the mention's thread (thread_ts, or the mention itself).
- `message` that is a reply in a thread (not the root, no subtype except file_share, not from a
  bot, not mentioning the bot — that one arrives as app_mention too) → copilot.message; the
  core ignores threads that are not sessions.
Images are downloaded after the ack and before the copilot call. The event's own event_id is the
de-duplication key, so Slack's retries (X-Slack-Retry-Num) have exactly one effect."""
from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.deps import SlackDeps
from adapters.slack.files import download_images
from adapters.slack.listeners.failures import report_crash
from adapters.slack.payloads import event_event_id

ALLOWED_MESSAGE_SUBTYPES = (None, "file_share")


def strip_bot_mention(text: str, bot_user_id: str | None) -> str:
    if not bot_user_id:
        return (text or "").strip()
    return re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text or "").strip()


def is_session_candidate(event: dict[str, Any], bot_user_id: str | None) -> bool:
    """A human's reply inside a thread, not addressed to the bot (that is an app_mention)."""
    thread_ts = event.get("thread_ts")
    if not thread_ts or thread_ts == event.get("ts"):
        return False
    if event.get("subtype") not in ALLOWED_MESSAGE_SUBTYPES:
        return False
    if event.get("bot_id") or not event.get("user"):
        return False
    return not (bot_user_id and f"<@{bot_user_id}" in str(event.get("text") or ""))


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def handle(body: dict[str, Any], event: dict[str, Any], context: Any, thread_ts: str, mention: bool) -> None:
        target = None
        try:
            team_id = str(body.get("team_id") or context.team_id or event.get("team") or "")
            token = await deps.token(context, team_id)
            inbound = await deps.inbound(team_id=team_id, user_id=str(event["user"]), token=token,
                                         channel_id=str(event.get("channel") or ""), thread_ts=thread_ts,
                                         event_id=event_event_id(str(body.get("event_id") or "")) or None)
            target = deps.target(inbound, token)
            images = await download_images(deps.http, event.get("files"), token) or None
            bot_user_id = getattr(context, "bot_user_id", None)
            text = strip_bot_mention(str(event.get("text") or ""), bot_user_id)
            if mention:
                reply = await deps.copilot.mention(inbound, text, images)
            else:
                reply = await deps.copilot.message(inbound, text, images)
            await deps.responder.show(reply, target)
        except Exception:
            await report_crash(deps.responder, target, "event")

    async def on_mention(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        if event.get("bot_id") or not event.get("user"):
            return
        await handle(body, event, context, str(event.get("thread_ts") or event["ts"]), mention=True)

    async def on_message(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        if is_session_candidate(event, getattr(context, "bot_user_id", None)):
            await handle(body, event, context, str(event["thread_ts"]), mention=False)

    app.event("app_mention")(on_mention)
    app.event("message")(on_message)  # every message event, so none is left "unhandled" (404 → retries)
