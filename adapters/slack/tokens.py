"""The bot token for a workspace: the configured SLACK_BOT_TOKEN (one workspace), or the token
saved by that workspace's install (OAuth distribution)."""
from __future__ import annotations

import time
from typing import Protocol

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore

INSTALLATION_CACHE_S = 60.0  # a reinstall or uninstall shows up within a minute


class NotInstalled(LookupError):
    """No bot token for this workspace (never installed, or uninstalled)."""


class TokenSource(Protocol):
    async def bot_token(self, team_id: str | None) -> str: ...


class StaticTokens:
    def __init__(self, token: str) -> None:
        self._token = token

    async def bot_token(self, team_id: str | None) -> str:
        return self._token


class InstalledTokens:
    """Looks the token up in the installation store, with a short per-process cache. Falls back
    to `fallback` (SLACK_BOT_TOKEN, when also set) for a workspace that has no installation."""

    def __init__(self, store: AsyncInstallationStore, fallback: str | None = None,
                 cache_s: float = INSTALLATION_CACHE_S) -> None:
        self.store = store
        self.fallback = fallback
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, str]] = {}

    async def bot_token(self, team_id: str | None) -> str:
        if not team_id:
            raise NotInstalled("No Slack workspace id to look a bot token up for.")
        hit = self._cache.get(team_id)
        if hit is not None and time.monotonic() - hit[0] < self.cache_s:
            return hit[1]
        bot = await self.store.async_find_bot(enterprise_id=None, team_id=team_id)
        token = bot.bot_token if bot is not None and bot.bot_token else self.fallback
        if not token:
            raise NotInstalled(f"FlowPilot is not installed in Slack workspace {team_id} (install it again "
                               "from /slack/install).")
        self._cache[team_id] = (time.monotonic(), token)
        return token

    def forget(self, team_id: str) -> None:
        self._cache.pop(team_id, None)
