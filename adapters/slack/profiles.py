"""Who a Slack user is (display name, email) via users.info: cached per process, best effort.
A slow or failing lookup never breaks the request; the person is then known by the name in the
payload (and the email is filled in on a later contact)."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

HIT_TTL_S = 3600.0
MISS_TTL_S = 60.0


@dataclass(frozen=True)
class Profile:
    display_name: str | None
    email: str | None


class Profiles:
    def __init__(self, client: AsyncWebClient, timeout_s: float = 1.5) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._cache: dict[tuple[str, str], tuple[float, Profile]] = {}

    async def lookup(self, team_id: str, user_id: str, token: str | None, fallback_name: str | None = None,
                     timeout_s: float | None = None) -> Profile:
        key = (team_id, user_id)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() < hit[0]:
            return hit[1] if hit[1].display_name else Profile(fallback_name, hit[1].email)
        try:
            resp = await asyncio.wait_for(self.client.users_info(token=token, user=user_id),
                                          timeout_s or self.timeout_s)
            user = resp.get("user") or {}
            profile = user.get("profile") or {}
            name = (profile.get("display_name") or profile.get("real_name") or user.get("real_name")
                    or user.get("name") or fallback_name)
            found = Profile(display_name=name or None, email=(profile.get("email") or None))
            self._cache[key] = (time.monotonic() + HIT_TTL_S, found)
            return found
        except Exception as exc:  # best effort by design
            log.info("slack: users.info failed", extra={"user": user_id, "error": f"{type(exc).__name__}: {exc}"})
            self._cache[key] = (time.monotonic() + MISS_TTL_S, Profile(None, None))
            return Profile(fallback_name, None)
