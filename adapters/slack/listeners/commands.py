"""`/flowpilot <text>`: hand the text as-is to the core (it parses the subcommands), then ack.
Record, then ack (listeners/__init__.py): the core call commits before Slack's 200; if it fails
the exception reaches bolt, which answers 500, and nothing was recorded. The reply is shown
after the ack (followups.py). Slash commands carry no thread, so `Where.thread_id` is None."""
from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.deps import SlackDeps
from adapters.slack.listeners.failures import report_crash
from adapters.slack.payloads import command_event_id


def register(app: AsyncApp, deps: SlackDeps, names: tuple[str, ...]) -> None:
    async def on_command(ack: Any, body: dict[str, Any], context: Any) -> None:
        team_id = str(body.get("team_id") or context.team_id or "")
        token = await deps.token(context, team_id)
        inbound = await deps.inbound(
            team_id=team_id, user_id=str(body["user_id"]), token=token, channel_id=str(body.get("channel_id") or ""),
            thread_ts=None, event_id=command_event_id(str(body.get("trigger_id") or "")),
            user_name=body.get("user_name"), channel_name=body.get("channel_name"))
        target = deps.target(inbound, token, response_url=body.get("response_url"),
                             trigger_id=body.get("trigger_id"))
        reply = await deps.copilot.command(inbound, str(body.get("text") or ""))  # recorded (committed)
        await ack()
        deps.followups.start(show(reply, target), "slash command")

    async def show(reply: Any, target: Any) -> None:
        try:
            await deps.responder.show(reply, target)
            if reply.card is not None and reply.error is None:  # e.g. `queue`: a list only the asker sees
                await deps.responder.ephemeral_card(target, reply.card)
        except Exception:
            await report_crash(deps.responder, target, "slash command")

    for name in names:
        app.command(name)(on_command)
