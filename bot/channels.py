"""Mounting the channel adapters that are configured (Slack, Teams)."""
from __future__ import annotations

import logging

from aiohttp import web

from bot.wiring import Components

log = logging.getLogger(__name__)

CHANNELS = web.AppKey("channels", list)


async def _mount_slack(app: web.Application, comps: Components, mounted: list) -> None:
    from adapters.slack.mount import mount_slack

    # No `observe`: bot/observability.py's middleware records the ack metrics of every channel once.
    if await mount_slack(app, comps) is not None:
        mounted.append("slack")


async def _mount_teams(app: web.Application, comps: Components, mounted: list) -> None:
    from adapters.teams.mount import mount_teams

    if await mount_teams(app, comps):
        mounted.append("teams")


async def mount_channels(app: web.Application, comps: Components) -> None:
    mounted = []
    app[CHANNELS] = mounted
    await _mount_slack(app, comps, mounted)
    await _mount_teams(app, comps, mounted)
    if not mounted:
        log.info("no chat channel configured: set SLACK_* or MICROSOFT_APP_* (see README); "
                 "`flowpilot try` runs a session in the terminal")
