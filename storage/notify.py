"""LISTEN/NOTIFY wake-ups for workers, with reconnect. A periodic poll is the safety net, so a
lost notification only delays work by one poll interval."""
from __future__ import annotations

import asyncio
import logging

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

RECONNECT_CAP_S = 2.0


def asyncpg_dsn(url: str) -> dict:
    u = make_url(url)
    kwargs = dict(user=u.username, password=u.password, database=u.database, port=u.port)
    host = u.query.get("host") or u.host
    kwargs["host"] = host
    return {k: v for k, v in kwargs.items() if v is not None}


class Notifier:
    def __init__(self, url: str, channels: list[str]) -> None:
        self._kwargs = asyncpg_dsn(url)
        self._channels = channels
        self.events = {c: asyncio.Event() for c in channels}
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier")

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def _on_notify(self, _conn, _pid, channel: str, _payload: str) -> None:
        ev = self.events.get(channel)
        if ev:
            ev.set()

    async def _run(self) -> None:
        delay = 0.5
        while not self._stopping:
            conn = None
            try:
                conn = await asyncpg.connect(**self._kwargs, timeout=10)
                for c in self._channels:
                    await conn.add_listener(c, self._on_notify)
                delay = 0.5
                for ev in self.events.values():  # we may have missed some while disconnected
                    ev.set()
                while not self._stopping and not conn.is_closed():
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database restarting: retry with backoff
                log.warning("notify listener disconnected", extra={"error": type(exc).__name__})
            finally:
                if conn is not None and not conn.is_closed():
                    try:
                        await conn.close(timeout=2)
                    except Exception:
                        pass
            await asyncio.sleep(delay)
            # Capped low: until LISTEN is back, idle workers only wake on their poll, so a long
            # backoff here is how long work stalls after the database returns.
            delay = min(delay * 2, RECONNECT_CAP_S)
