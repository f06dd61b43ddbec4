"""The outbox through the worker runtime (bot.workers.Runtime): per-thread order, edits in place,
retries that honour Retry-After and deliver exactly once, and visible permanent failures."""
from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text

from adapters.console.sender import ConsoleSender
from bot.workers import Runtime
from core.errors import DeliveryFailed
from core.ports import Destination
from core.views import TextView


@dataclass
class RecordingSender:
    """A channel that yields to the loop a random number of times per call (so an out-of-order
    delivery would show), fails on demand, and records what it delivered."""

    failures: list[DeliveryFailed] = field(default_factory=list)  # raised by the next calls, in order
    delivered: list[tuple[str, str]] = field(default_factory=list)  # (thread, text)
    calls: list[tuple[float, str]] = field(default_factory=list)  # (loop time, text)

    async def post(self, destination: dict[str, Any], view: Any) -> dict[str, Any]:
        self.calls.append((asyncio.get_running_loop().time(), view.text))
        for _ in range(random.randint(0, 5)):
            await asyncio.sleep(0)
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append((destination["thread_id"], view.text))
        return {"id": f"m{len(self.delivered)}", "thread_id": destination["thread_id"],
                "channel_id": destination["channel_id"]}

    async def update(self, ref: dict[str, Any], view: Any) -> dict[str, Any]:
        raise AssertionError("not used")


@pytest.fixture
async def runtime(store):
    started: list[Runtime] = []

    async def make(senders: dict[str, Any], max_attempts: int = 12) -> Runtime:
        rt = Runtime(store=store, handlers={}, senders=senders, lease_s=30, poll_s=0.1, backoff_base=0.02,
                     backoff_cap=1.0, outbox_max_attempts=max_attempts, job_workers=0, outbox_workers=3)
        await rt.start()
        started.append(rt)
        return rt

    yield make
    for rt in started:
        await rt.stop(grace_s=5)


async def send(store, platform: str, thread: str, texts: list[str], *, op: str = "post",
               card_key: str | None = None) -> None:
    account = await store.ensure_workspace("console", "ws-outbox", "Outbox Inc")
    async with store.unit(account) as uow:
        for t in texts:
            await uow.send(Destination(platform=platform, workspace_id="ws", channel_id="C1", thread_id=thread),
                           TextView(text=t), op=op, card_key=card_key)


async def outbox_rows(db) -> list[dict[str, Any]]:
    async with db.admin.connect() as conn:
        return [dict(r._mapping) for r in (await conn.execute(text("SELECT * FROM outbox ORDER BY id")))]


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "condition") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def settled(db, n: int):
    async def check():
        rows = await outbox_rows(db)
        done = [r for r in rows if r["status"] in ("delivered", "failed")]
        return rows if len(rows) == n and len(done) == n else None
    return check


async def test_each_thread_is_delivered_strictly_in_order(db, store, runtime):
    sender = RecordingSender()
    await runtime({"test": sender})
    threads = [f"T{n}" for n in range(4)]
    for batch in range(5):  # several commits, threads interleaved within each
        for thread in threads:
            await send(store, "test", thread, [f"{thread}-{batch}-{i}" for i in range(3)])
    await eventually(settled(db, 60), what="60 deliveries")
    for thread in threads:
        got = [t for th, t in sender.delivered if th == thread]
        assert got == [f"{thread}-{b}-{i}" for b in range(5) for i in range(3)], thread
    assert len(sender.delivered) == 60


async def test_an_upsert_after_a_post_edits_the_same_message(db, store, runtime):
    console = ConsoleSender()
    await runtime({"console": console})
    await send(store, "console", "T1", ["FlowPilot is thinking…"], op="upsert", card_key="reply:m1")
    await send(store, "console", "T1", ["The spooler is stuck."], op="upsert", card_key="reply:m1")
    await send(store, "console", "T1", ["The spooler is stuck. Restart it."], op="upsert", card_key="reply:m1")
    await send(store, "console", "T1", ["An unrelated notice"])
    rows = await eventually(settled(db, 4), what="4 deliveries")
    assert [r["status"] for r in rows] == ["delivered"] * 4
    assert len(console.order) == 2  # one edited reply + one notice
    first = console.messages[console.order[0]]
    assert (first.view.text, first.edits) == ("The spooler is stuck. Restart it.", 2)
    assert rows[2]["message_ref"]["id"] == rows[0]["message_ref"]["id"] == first.id


async def test_a_rate_limited_delivery_is_retried_and_delivered_once_in_order(db, store, runtime):
    sender = RecordingSender(failures=[DeliveryFailed("rate limited", retry_after=0.3, status=429),
                                       DeliveryFailed("rate limited", retry_after=0.3, status=429)])
    await runtime({"test": sender})
    await send(store, "test", "T1", ["first", "second"])
    rows = await eventually(settled(db, 2), what="2 deliveries")
    assert sender.delivered == [("T1", "first"), ("T1", "second")]  # the second waited behind the retries
    assert [(r["status"], r["attempts"]) for r in rows] == [("delivered", 3), ("delivered", 1)]
    assert "rate limited" in rows[0]["last_error"]
    first_calls = [at for at, t in sender.calls if t == "first"]
    assert len(first_calls) == 3
    assert all(b - a >= 0.3 for a, b in zip(first_calls, first_calls[1:]))  # Retry-After honoured


async def test_a_permanent_failure_ends_failed_visibly_and_the_thread_moves_on(db, store, runtime):
    sender = RecordingSender(failures=[DeliveryFailed("channel_not_found", permanent=True, status=404)])
    await runtime({"test": sender})
    await send(store, "test", "T1", ["lost", "next"])
    rows = await eventually(settled(db, 2), what="2 rows settled")
    assert (rows[0]["status"], rows[0]["attempts"]) == ("failed", 1)
    assert "channel_not_found" in rows[0]["last_error"] and rows[0]["delivered_at"] is None
    assert (rows[1]["status"], sender.delivered) == ("delivered", [("T1", "next")])


async def test_a_delivery_that_keeps_failing_stops_after_max_attempts(db, store, runtime):
    sender = RecordingSender(failures=[DeliveryFailed("timeout") for _ in range(10)])
    await runtime({"test": sender}, max_attempts=3)
    await send(store, "test", "T1", ["doomed"])
    [row] = await eventually(settled(db, 1), what="row settled")
    assert (row["status"], row["attempts"]) == ("failed", 3) and sender.delivered == []
    assert len(sender.calls) == 3
