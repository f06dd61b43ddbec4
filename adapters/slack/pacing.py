"""About one message per second per channel (Slack's chat.postMessage guidance), in-process.

Posts to one channel take turns under that channel's lock and start at least `interval_s` after
the previous one finished, which also keeps their order. Other replicas pace themselves; Slack's
429 + Retry-After (handled by the client and the outbox) covers what two processes overlap."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
IDLE_FORGET_S = 600.0


class ChannelPacer:
    def __init__(self, interval_s: float = 1.0, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._sleep = sleep
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    @asynccontextmanager
    async def turn(self, channel_key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(channel_key, asyncio.Lock())
        async with lock:
            last = self._last.get(channel_key)
            if last is not None:
                wait = last + self.interval_s - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            try:
                yield
            finally:
                self._last[channel_key] = self._clock()
                self._forget_idle()

    def _forget_idle(self) -> None:
        if len(self._last) < 1000:
            return
        cutoff = self._clock() - IDLE_FORGET_S
        for key in [k for k, t in self._last.items() if t < cutoff and not self._locks[k].locked()]:
            self._last.pop(key, None)
            self._locks.pop(key, None)
