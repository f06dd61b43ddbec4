"""What the listeners share: the core, the Web API client, tokens, profiles, the responder."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.followups import Followups
from adapters.slack.profiles import Profiles
from adapters.slack.replies import Responder, Target
from adapters.slack.tokens import TokenSource
from core.commands import Actor, Inbound, Where
from core.model import Platform

log = logging.getLogger(__name__)


@dataclass
class SlackDeps:
    copilot: Any  # core.copilot.Copilot
    client: AsyncWebClient
    tokens: TokenSource
    profiles: Profiles
    responder: Responder
    http: aiohttp.ClientSession
    followups: Followups = field(default_factory=Followups)  # work after the ack (followups.py)

    async def token(self, context: Any, team_id: str) -> str:
        """The bot token bolt authorized this request with, else the workspace's stored one."""
        token = getattr(context, "bot_token", None) if context is not None else None
        return token or await self.tokens.bot_token(team_id)

    async def inbound(self, *, team_id: str, user_id: str, token: str, channel_id: str, thread_ts: str | None,
                      event_id: str | None, user_name: str | None = None, channel_name: str | None = None,
                      profile_timeout_s: float | None = None) -> Inbound:
        profile = await self.profiles.lookup(team_id, user_id, token, fallback_name=user_name,
                                             timeout_s=profile_timeout_s)
        actor = Actor(platform=Platform.SLACK, workspace_id=team_id, user_id=user_id,
                      display_name=profile.display_name, email=profile.email)
        where = Where(platform=Platform.SLACK, workspace_id=team_id, channel_id=channel_id or "", thread_id=thread_ts,
                      channel_name=channel_name)
        return Inbound(actor=actor, where=where, event_id=event_id)

    @staticmethod
    def target(inbound: Inbound, token: str, *, response_url: str | None = None,
               trigger_id: str | None = None) -> Target:
        where = inbound.where
        return Target(team_id=where.workspace_id, user_id=inbound.actor.user_id, token=token,
                      channel_id=where.channel_id or None, thread_ts=where.thread_id, response_url=response_url,
                      trigger_id=trigger_id)
