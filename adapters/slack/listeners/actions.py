"""Button clicks (`fp:<action>:<n>`). A button that needs text records nothing: it is acked and
its modal opens right away (the trigger_id is good for 3 seconds). Any other click is recorded
first (copilot.action commits before Slack's 200; a failure there answers 500, see
listeners/__init__.py) and the person then gets the reply's text or error ephemerally. Cards are re-rendered by the core through
the outbox (chat.update); the one exception is a refused click that comes back with the card as it
stands now, since a refusal writes no outbox row."""
from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.blocks import render
from adapters.slack.deps import SlackDeps
from adapters.slack.listeners.failures import report_crash
from adapters.slack.modals import input_modal
from adapters.slack.payloads import ModalContext, action_event_id, decode_button

log = logging.getLogger(__name__)

ACTION_PATTERN = re.compile(r"^fp:")
MODAL_TOO_SLOW = "Slack took too long to open the form: please click the button again."


def click_location(body: dict[str, Any]) -> tuple[str, str | None]:
    """(channel, thread) of the clicked message: its thread, or the message itself as a root."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
    thread = container.get("thread_ts") or message.get("thread_ts") or container.get("message_ts") or message.get("ts")
    return str(channel), thread


async def refresh_clicked(deps: SlackDeps, token: str, body: dict[str, Any], card: Any) -> None:
    """A refused click rolls back, so no outbox edit follows; when the core hands back the card as
    it stands now (e.g. a stale Pick up), show it where it was clicked. Best effort."""
    container = body.get("container") or {}
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if container.get("is_ephemeral") or not channel or not ts:
        return
    try:
        rendered = render(card)
        await deps.client.chat_update(token=token, channel=channel, ts=ts, text=rendered.text, blocks=rendered.blocks)
    except Exception as exc:
        log.info("slack: could not refresh the clicked card", extra={"error": f"{type(exc).__name__}: {exc}"})


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def on_click(ack: Any, body: dict[str, Any], context: Any) -> None:
        action = (body.get("actions") or [{}])[0]
        click = decode_button(action.get("value"))
        team_id = str((body.get("team") or {}).get("id") or context.team_id or "")
        user = body.get("user") or {}
        channel, thread = click_location(body)
        token = await deps.token(context, team_id)
        trigger_id = body.get("trigger_id")
        if click.input is not None:  # nothing to record yet: the modal's submission is the request
            await ack()
            deps.followups.start(open_input_modal(body, action, click, team_id, channel, thread, token),
                                 "input modal")
            return
        inbound = await deps.inbound(
            team_id=team_id, user_id=str(user.get("id")), token=token, channel_id=channel, thread_ts=thread,
            event_id=action_event_id(action.get("action_ts"), trigger_id),
            user_name=user.get("name") or user.get("username"))
        target = deps.target(inbound, token, response_url=body.get("response_url"), trigger_id=trigger_id)
        reply = await deps.copilot.action(inbound, click.action, click.value)  # recorded (committed)
        await ack()
        deps.followups.start(show(reply, target, token, body), "button click")

    async def open_input_modal(body: dict[str, Any], action: dict[str, Any], click: Any, team_id: str, channel: str,
                               thread: str | None, token: str) -> None:
        user = body.get("user") or {}
        modal_context = ModalContext(action=click.action, value=click.value, team_id=team_id,
                                     channel_id=channel or None, thread_ts=thread, user_id=str(user.get("id")),
                                     input_name=click.input.name)
        label = str((action.get("text") or {}).get("text") or "FlowPilot")
        target = None
        try:
            try:
                await deps.client.views_open(token=token, trigger_id=body.get("trigger_id"),
                                             view=input_modal(click.input, modal_context, label))
            except Exception as exc:
                log.warning("slack: views.open failed", extra={"error": f"{type(exc).__name__}: {exc}"})
                inbound = await deps.inbound(team_id=team_id, user_id=str(user.get("id")), token=token,
                                             channel_id=channel, thread_ts=thread, event_id=None)
                target = deps.target(inbound, token)
                await deps.responder.ephemeral(target, MODAL_TOO_SLOW)
        except Exception:
            await report_crash(deps.responder, target, "button click")

    async def show(reply: Any, target: Any, token: str, body: dict[str, Any]) -> None:
        try:
            await deps.responder.show(reply, target)
            if reply.error is not None and reply.card is not None:
                await refresh_clicked(deps, token, body, reply.card)
        except Exception:
            await report_crash(deps.responder, target, "button click")

    app.action(ACTION_PATTERN)(on_click)
