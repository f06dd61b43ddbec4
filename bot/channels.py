"""Mounting the channel adapters that are configured (Slack, Teams)."""
from __future__ import annotations

import logging

from aiohttp import web

from bot.wiring import Components

log = logging.getLogger(__name__)


async def mount_channels(app: web.Application, comps: Components) -> None:
    mounted = []
    app["flowpilot.channels"] = mounted
    if not mounted:
        log.info("no chat channel configured: set SLACK_* or MICROSOFT_APP_* (see README); "
                 "`flowpilot try` runs a session in the terminal")
