"""Bolt listeners, one module per kind of request, each with `register(app, deps)`. They only
translate: Slack payload → Inbound + copilot call → Reply shown back (replies.py).

Record, then ack. Bolt runs with `process_before_response=True`, so Slack's HTTP 200 goes out
only when the listener returns, and every listener makes its core call (one transaction that
de-duplicates the event and writes its state, jobs and outbox rows) before that. A crash before
the commit leaves Slack without a 200, so Slack retries (events) or shows the person an error
(commands, clicks, modals); an exception from the core call reaches bolt, which answers 500. What
is shown to the person afterwards (ephemeral notices, forms) runs after the ack (followups.py)."""
from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from adapters.slack.deps import SlackDeps
from adapters.slack.listeners import actions, commands, events, views


def register_all(app: AsyncApp, deps: SlackDeps, commands_registered: tuple[str, ...]) -> None:
    commands.register(app, deps, commands_registered)
    events.register(app, deps)
    actions.register(app, deps)
    views.register(app, deps)
