"""Mounting Teams on the shared aiohttp app: POST /api/messages and the "teams" outbox sender.

Called from bot.channels.mount_channels during startup, before the workers start. Without
MICROSOFT_APP_ID nothing is mounted (the SDK would accept unauthenticated posts), except in
explicit insecure development on a loopback host (FLOWPILOT_TEAMS_INSECURE_DEV=1)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from botbuilder.integration.aiohttp import CloudAdapter

from adapters.teams.auth import TeamsAuthSettings, build_cloud_adapter
from adapters.teams.bot import Background, FlowPilotTeamsBot
from adapters.teams.channel import TeamsChannelSender
from adapters.teams.endpoint import make_messages_handler, teams_enabled
from adapters.teams.ops import TeamsOps
from adapters.teams.refs import ConversationRefs

log = logging.getLogger(__name__)

MESSAGES_PATH = "/api/messages"
PLATFORM = "teams"
# Proactive calls need some bot id even when nothing is authenticated (insecure local development).
INSECURE_DEV_APP_ID = "00000000-0000-0000-0000-000000000000"


@dataclass
class TeamsChannel:
    """What mount_teams built, for tests and diagnostics (comps.extras["teams"])."""

    adapter: CloudAdapter
    bot: FlowPilotTeamsBot
    ops: TeamsOps
    refs: ConversationRefs
    sender: TeamsChannelSender
    background: Background


def auth_settings(settings: Any) -> TeamsAuthSettings:
    password = settings.microsoft_app_password
    return TeamsAuthSettings(
        app_id=(settings.microsoft_app_id or "").strip(),
        app_password=password.get_secret_value() if password is not None else "",
        app_type=settings.microsoft_app_type or "SingleTenant",
        tenant_id=(settings.microsoft_app_tenant_id or "").strip(),
        openid_metadata_url=settings.teams_openid_metadata_url or None,
        token_issuer=settings.teams_token_issuer or None,
        token_endpoint=settings.teams_token_endpoint or None,
    )


async def mount_teams(app: web.Application, comps: Any) -> bool:
    """Serve Teams if configured; True when mounted. The log line says why or why not."""
    settings = comps.settings
    auth = auth_settings(settings)
    enabled, reason = teams_enabled(auth, bool(settings.teams_insecure_dev), settings.host)
    if not enabled:
        log.info("%s; %s is not served", reason, MESSAGES_PATH)
        return False
    (log.info if auth.app_id else log.warning)(reason)
    adapter = build_cloud_adapter(auth, allow_unauthenticated=not auth.app_id)  # raises on half a config
    ops = TeamsOps(adapter, auth.app_id or INSECURE_DEV_APP_ID)
    refs = ConversationRefs(comps.store.db)
    background = Background()
    bot = FlowPilotTeamsBot(comps.copilot, comps.store, refs, ops, background)
    sender = TeamsChannelSender(ops, refs)
    app.router.add_post(MESSAGES_PATH, make_messages_handler(adapter, bot.on_turn))
    comps.runtime.senders[PLATFORM] = sender
    comps.extras["teams"] = TeamsChannel(adapter, bot, ops, refs, sender, background)
    if not app.on_cleanup.frozen:
        async def finish_background(_app: web.Application) -> None:
            await background.close()

        app.on_cleanup.insert(0, finish_background)  # before the components (database) close
    return True
