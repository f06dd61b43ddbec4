"""Inbound traffic with duplicates: every unique event is one `Delivery`; a seeded third of them
arrive two or three times (a Slack retry with X-Slack-Retry-Num, the same click payload again, a
Teams redelivery of the same activity id). All copies of a phase are shuffled together and sent
concurrently with bounded concurrency, so duplicates race each other."""
from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Send = Callable[[int], Awaitable[int]]  # copy number (0 = the original) -> HTTP status


@dataclass
class Delivery:
    kind: str
    send: Send
    copies: int = 1


@dataclass
class Traffic:
    rng: random.Random
    concurrency: int = 24
    duplicates: bool = True  # a third of the events arrive two or three times
    unique: int = 0
    sent: int = 0
    duplicated: int = 0
    statuses: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)

    async def run(self, deliveries: list[Delivery]) -> int:
        """Send one phase; returns how many requests were sent (copies included)."""
        share = len(deliveries) // 3 if self.duplicates else 0
        chosen = set(self.rng.sample(range(len(deliveries)), share))
        for index, delivery in enumerate(deliveries):
            if index in chosen:
                delivery.copies = self.rng.choice((2, 3))
        copies = [(d, n) for d in deliveries for n in range(d.copies)]
        self.rng.shuffle(copies)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(delivery: Delivery, n: int) -> None:
            async with gate:
                self.statuses[await delivery.send(n)] += 1

        await asyncio.gather(*(one(d, n) for d, n in copies))
        self.unique += len(deliveries)
        self.duplicated += len(chosen)
        self.sent += len(copies)
        self.kinds.update(d.kind for d in deliveries)
        return len(copies)
