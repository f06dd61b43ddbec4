"""What a listener still does for the person after Slack got its 200: ephemeral notices, opening a
form (views.open needs the trigger_id within 3 s, so it starts right after the core call).

Bolt runs with `process_before_response=True`, so the HTTP response waits for the listener: the
core call (one database transaction that records the event, its state change, its jobs and its
outbox rows) happens BEFORE Slack is answered, and a failure there answers 500 so Slack retries.
These follow-ups must not hold that response, so they run as tasks tracked here and drained on
shutdown. They are best-effort by nature (an ephemeral message is not stored by Slack either);
everything durable went through the outbox in the core's transaction."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 5.0


class Followups:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def start(self, work: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.get_running_loop().create_task(self._guarded(work, what), name=f"slack-followup:{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except Exception:  # the listeners report their own failures; this is the last net
            log.exception("slack: follow-up failed", extra={"followup": what})

    async def drain(self, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
        """Let in-flight notices finish (graceful shutdown), then cancel what is left."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def __len__(self) -> int:
        return len(self._tasks)
