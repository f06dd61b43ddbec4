"""The Slack manifest asks for exactly what the code uses.

A slash command, event or interaction the code handles but the manifest does not register never reaches
the bot; an event the manifest subscribes to with no listener is answered 404 and retried by Slack; a
scope the code needs and the manifest lacks fails in production with `missing_scope`; a scope nothing
uses makes workspace admins refuse the install. So the commands and events are read from the bolt app
that adapters/slack really builds (mount_slack, the same call the server makes), and the scopes are
derived from the Web API methods called in adapters/slack/ (read from the source), the events and the
commands. Teams menus against core commands are covered by tests/e2e/test_teams_channel.py.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.mount import mount_slack
from core.commands import COMMANDS
from manifest.build import SLACK_SUBCOMMANDS, render_slack_manifest
from tests.harness import test_settings as make_settings

SLACK_ADAPTER = Path(__file__).resolve().parents[2] / "adapters" / "slack"

# Web API method (slack_sdk name) → the bot scopes it needs, as Slack documents them for what we do.
SCOPES_FOR_METHOD: dict[str, set[str]] = {
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    # The email in the profile links one person's Slack and Teams identities (DOMAIN identity rules).
    "users_info": {"users:read", "users:read.email"},
    # Only DMs are opened (escalation cards to seniors when no channel is registered).
    "conversations_open": {"im:write"},
    "views_open": set(),  # a trigger_id is the permission
    # The sender looks for a message an earlier delivery attempt already posted, in the conversations the
    # bot posts to: public and private channels and the DMs it opens (not group DMs: best effort there).
    "conversations_history": {"channels:history", "groups:history", "im:history"},
    "conversations_replies": {"channels:history", "groups:history", "im:history"},
}
# Things the adapter does that are not Web API calls but still need a scope, with the source text that
# proves the code does them (so the scope is dropped from here, and then from the manifest, with the code).
SCOPES_FOR_BEHAVIOUR: dict[str, tuple[str, str, set[str]]] = {
    "download attached images with the bot token": ("files.py", "url_private", {"files:read"}),
}
# Slack refuses to deliver an event unless the app holds the scope that covers it.
SCOPE_FOR_EVENT = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
}
# The `channel_type` Slack puts on a message event delivered under each subscription.
CHANNEL_TYPE_FOR_MESSAGE_EVENT = {"message.channels": "channel", "message.groups": "group",
                                  "message.im": "im", "message.mpim": "mpim"}
REGISTRARS = ("command", "event", "action", "view", "shortcut", "options", "view_submission", "view_closed",
              "block_action", "message", "function")


def slack_manifest() -> dict[str, Any]:
    return yaml.safe_load(render_slack_manifest("https://flowpilot.example.com"))


# --------------------------------------------------------------------------- the bolt app as built


class Registrations:
    """What adapters/slack asks bolt to listen for, recorded while the real AsyncApp registers it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def of(self, kind: str) -> list[Any]:
        return [constraint for registrar, constraint in self.calls if registrar == kind]


@pytest.fixture
async def built(monkeypatch) -> tuple[AsyncApp, Registrations]:
    registrations = Registrations()
    for name in REGISTRARS:
        original = getattr(AsyncApp, name)

        def spy(self, *args, __name=name, __original=original, **kwargs):
            registrations.calls.append((__name, args[0] if args else kwargs))
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(AsyncApp, name, spy)

    settings = make_settings(SLACK_BOT_TOKEN="xoxb-1-2-manifestcheck", SLACK_SIGNING_SECRET="manifest-check",
                             SLACK_API_URL="http://127.0.0.1:9/api/")
    async with aiohttp.ClientSession() as http:
        # mount_slack only needs these parts of the components to build the app (no database: single workspace).
        comps = SimpleNamespace(settings=settings, extras={}, http=http, copilot=None,
                                runtime=SimpleNamespace(senders={}))
        runtime = await mount_slack(web.Application(), comps)
        assert runtime is not None and comps.runtime.senders["slack"] is runtime.sender
        yield runtime.bolt, registrations


async def handled(bolt: AsyncApp, body: dict[str, Any]) -> bool:
    """Whether any listener of the built app takes this request (bolt answers 404 otherwise)."""
    request = AsyncBoltRequest(body=body, mode="socket_mode")
    for listener in bolt._async_listeners:  # noqa: SLF001 - the listeners are what is under test
        if await listener.async_matches(req=request, resp=BoltResponse(status=200)):
            return True
    return False


def event_body(manifest_event: str) -> dict[str, Any]:
    kind, _, _ = manifest_event.partition(".")
    event: dict[str, Any] = {"type": kind, "user": "U1", "text": "hi", "ts": "2.0", "thread_ts": "1.0",
                             "channel": "C1", "event_ts": "2.0"}
    if kind == "message":
        event["channel_type"] = CHANNEL_TYPE_FOR_MESSAGE_EVENT[manifest_event]
    return {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "Ev1", "event": event}


def command_body(command: str) -> dict[str, Any]:
    return {"command": command, "text": "help", "team_id": "T1", "user_id": "U1", "channel_id": "C1",
            "trigger_id": "1.2.x", "response_url": "http://127.0.0.1:9/commands/x"}


async def test_the_manifest_registers_exactly_the_slash_commands_the_app_handles(built):
    bolt, registrations = built
    manifest_commands = [c["command"] for c in slack_manifest()["features"]["slash_commands"]]

    assert set(registrations.of("command")) == set(manifest_commands)
    for command in manifest_commands:
        assert await handled(bolt, command_body(command)), f"nothing handles {command}"
    assert not await handled(bolt, command_body("/not-ours"))


def test_the_usage_hint_lists_exactly_the_subcommands_the_core_parses():
    assert sorted(SLACK_SUBCOMMANDS) == sorted(COMMANDS)


async def test_every_subscribed_event_has_a_listener_and_every_listener_is_subscribed(built):
    bolt, registrations = built
    subscribed = slack_manifest()["settings"]["event_subscriptions"]["bot_events"]

    for event in subscribed:
        assert await handled(bolt, event_body(event)), f"{event} is subscribed but nothing handles it (404 → retries)"
    unsubscribed = event_body("app_mention")
    unsubscribed["event"]["type"] = "reaction_added"
    assert not await handled(bolt, unsubscribed)  # the probe can say no
    listened = {constraint if isinstance(constraint, str) else constraint["type"]
                for constraint in registrations.of("event")}
    assert listened == {event.partition(".")[0] for event in subscribed}


async def test_interactivity_is_on_because_buttons_and_modals_are_handled(built):
    _, registrations = built
    manifest = slack_manifest()

    assert registrations.of("action") and registrations.of("view")
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    # No shortcuts, option loaders or workflow functions are handled, so none are declared.
    assert not registrations.of("shortcut") and "shortcuts" not in manifest["features"]
    assert not registrations.of("options") and "options_load_url" not in manifest["settings"]["interactivity"]
    assert not registrations.of("function") and "functions" not in manifest


# --------------------------------------------------------------------------- scopes


def web_api_methods_called() -> dict[str, list[str]]:
    """slack_sdk Web API methods called anywhere in adapters/slack, with where (file:line)."""
    api = {n for n in dir(AsyncWebClient) if not n.startswith("_") and callable(getattr(AsyncWebClient, n))}
    found: dict[str, list[str]] = {}
    for path in sorted(SLACK_ADAPTER.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in api:
                name = node.func.attr
                if name == "api_call":  # the generic form: the method name is the first argument
                    first = node.args[0] if node.args else None
                    name = first.value.replace(".", "_") if isinstance(first, ast.Constant) else "api_call(?)"
                found.setdefault(name, []).append(f"{path.relative_to(SLACK_ADAPTER)}:{node.lineno}")
    return found


def test_the_scan_finds_the_calls_we_know_the_adapter_makes():
    # Guards against a vacuous scan: these calls are what posts cards, edits them and DMs seniors.
    called = web_api_methods_called()
    assert {"chat_postMessage", "chat_update", "chat_postEphemeral", "users_info", "conversations_open"} <= set(called)
    assert any(where.startswith("sender.py") for where in called["chat_postMessage"])


def required_scopes(manifest: dict[str, Any]) -> dict[str, set[str]]:
    """scope → why the code needs it."""
    needs: dict[str, set[str]] = {}
    for method, where in web_api_methods_called().items():
        for scope in SCOPES_FOR_METHOD[method]:
            needs.setdefault(scope, set()).add(f"{method} ({', '.join(where)})")
    for why, (file, evidence, scopes) in SCOPES_FOR_BEHAVIOUR.items():
        if evidence in (SLACK_ADAPTER / file).read_text(encoding="utf-8"):
            for scope in scopes:
                needs.setdefault(scope, set()).add(why)
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        needs.setdefault(SCOPE_FOR_EVENT[event], set()).add(f"event {event}")
    if manifest["features"].get("slash_commands"):
        needs.setdefault("commands", set()).add("slash commands")
    return needs


def test_every_web_api_method_the_adapter_calls_has_known_scopes():
    unmapped = {m: where for m, where in web_api_methods_called().items() if m not in SCOPES_FOR_METHOD}
    assert not unmapped, f"map these Web API methods to their scopes in SCOPES_FOR_METHOD: {unmapped}"


def test_the_manifest_has_every_scope_the_code_needs_and_no_other():
    manifest = slack_manifest()
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    needs = required_scopes(manifest)

    missing = {scope: sorted(why) for scope, why in needs.items() if scope not in granted}
    unused = granted - set(needs)
    assert not missing, f"the code needs scopes the manifest does not request: {missing}"
    assert not unused, f"the manifest requests scopes nothing uses: {sorted(unused)}"
    assert "user" not in manifest["oauth_config"]["scopes"]  # the bot never acts as a user


def test_a_new_web_api_call_without_its_scope_would_be_caught(tmp_path, monkeypatch):
    # The same derivation over a copy of the adapter with one more call: it must demand the new scope.
    copy = tmp_path / "slack"
    copy.mkdir()
    for path in SLACK_ADAPTER.rglob("*.py"):
        target = copy / path.relative_to(SLACK_ADAPTER)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (copy / "extra.py").write_text("async def f(client):\n    await client.reactions_add(name='eyes')\n")
    monkeypatch.setattr(sys.modules[__name__], "SLACK_ADAPTER", copy)
    monkeypatch.setitem(SCOPES_FOR_METHOD, "reactions_add", {"reactions:write"})

    needs = required_scopes(slack_manifest())

    assert re.search(r"reactions_add \(extra\.py:2\)", " ".join(needs["reactions:write"]))
    assert "reactions:write" not in slack_manifest()["oauth_config"]["scopes"]["bot"]
