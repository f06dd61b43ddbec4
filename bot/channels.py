"""Mounting the channel adapters that are configured (Slack, Teams)."""
from __future__ import annotations

import logging

from aiohttp import web

from bot import metrics
from bot.wiring import Components

log = logging.getLogger(__name__)


def _observe_slack(kind: str, seconds: float, status: int) -> None:
    metrics.ACK_LATENCY.labels("slack", kind).observe(seconds)
    metrics.INBOUND.labels("slack", kind, "ok" if status < 400 else str(status)).inc()


async def _mount_slack(app: web.Application, comps: Components, mounted: list) -> None:
    from adapters.slack.mount import mount_slack

    if await mount_slack(app, comps, observe=_observe_slack) is not None:
        mounted.append("slack")


async def _mount_teams(app: web.Application, comps: Components, mounted: list) -> None:
    from adapters.teams.mount import mount_teams

    if await mount_teams(app, comps):
        mounted.append("teams")


async def mount_channels(app: web.Application, comps: Components) -> None:
    mounted = []
    app["flowpilot.channels"] = mounted
    await _mount_slack(app, comps, mounted)
    await _mount_teams(app, comps, mounted)
    if not mounted:
        log.info("no chat channel configured: set SLACK_* or MICROSOFT_APP_* (see README); "
                 "`flowpilot try` runs a session in the terminal")
