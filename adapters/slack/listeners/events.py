"""Events API: @mentions and thread replies. Record, then ack: bolt answers Slack only after these
return (process_before_response), so the core call commits first; a failure there answers 500
and Slack redelivers the event (listeners/__init__.py).

- `app_mention` → copilot.mention, in the mention's thread (thread_ts, or the mention itself).
- `message` that is a reply in a thread (not the root, no subtype except file_share, not from a
  bot, not mentioning the bot — that one arrives as app_mention too) → copilot.message; the
  core ignores threads that are not sessions.
Images are downloaded before the copilot call, alongside the profile lookup and within
IMAGE_BUDGET_S, because the whole request must answer inside Slack's 3 seconds. A download that
does not finish in time is dropped and the person is told (their text is still recorded), rather
than the event failing: Slack's retry would face the same slow download. The event's own
event_id is the de-duplication key, so Slack's retries (X-Slack-Retry-Num) have exactly one effect."""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.deps import SlackDeps
from adapters.slack.files import download_images
from adapters.slack.listeners.failures import report_crash
from adapters.slack.payloads import event_event_id

log = logging.getLogger(__name__)

ALLOWED_MESSAGE_SUBTYPES = (None, "file_share")
IMAGE_BUDGET_S = 1.2  # of Slack's 3 s: the profile lookup runs alongside, the core call after
IMAGES_TOO_SLOW = ("Your image took too long to download from Slack, so FlowPilot read your message without it. "
                   "Post the image again if it matters.")


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


async def images_within_budget(deps: SlackDeps, files: list[dict[str, Any]] | None, token: str | None
                               ) -> tuple[list[dict[str, str]] | None, bool]:
    """(images or None, whether the download ran out of time)."""
    if not files:
        return None, False
    try:
        async with asyncio.timeout(IMAGE_BUDGET_S):
            return (await download_images(deps.http, files, token)) or None, False
    except TimeoutError:
        log.warning("slack: attachments not downloaded within the ack budget", extra={"files": len(files)})
        return None, True


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def handle(body: dict[str, Any], event: dict[str, Any], context: Any, thread_ts: str, mention: bool) -> None:
        team_id = str(body.get("team_id") or context.team_id or event.get("team") or "")
        token = await deps.token(context, team_id)
        inbound, (images, too_slow) = await asyncio.gather(
            deps.inbound(team_id=team_id, user_id=str(event["user"]), token=token,
                         channel_id=str(event.get("channel") or ""), thread_ts=thread_ts,
                         event_id=event_event_id(str(body.get("event_id") or "")) or None),
            images_within_budget(deps, event.get("files"), token))
        bot_user_id = getattr(context, "bot_user_id", None)
        text = strip_bot_mention(str(event.get("text") or ""), bot_user_id)
        if mention:
            reply = await deps.copilot.mention(inbound, text, images)  # recorded (committed)
        else:
            reply = await deps.copilot.message(inbound, text, images)
        deps.followups.start(show(reply, deps.target(inbound, token), too_slow), "event")
        # returning lets bolt send the 200

    async def show(reply: Any, target: Any, images_too_slow: bool) -> None:
        try:
            await deps.responder.show(reply, target)
            if images_too_slow and not (reply.ignored or reply.duplicate):
                await deps.responder.ephemeral(target, IMAGES_TOO_SLOW)
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
