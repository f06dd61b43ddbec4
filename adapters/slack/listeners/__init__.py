"""Bolt listeners, one module per kind of request, each with `register(app, deps)`. They only
translate: Slack payload → Inbound + copilot call → Reply shown back (replies.py)."""
from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from adapters.slack.deps import SlackDeps
from adapters.slack.listeners import actions, commands, events, views


def register_all(app: AsyncApp, deps: SlackDeps, commands_registered: tuple[str, ...]) -> None:
    commands.register(app, deps, commands_registered)
    events.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
