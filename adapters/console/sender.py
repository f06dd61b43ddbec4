"""The console channel's sender: keeps every delivered message (and its edits) in memory and
prints new ones. Used by `flowpilot try` and by end-to-end tests."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.console.render import render


@dataclass
class ConsoleMessage:
    id: str
    destination: dict[str, Any]
    view: Any
    edits: int = 0

    @property
    def text(self) -> str:
        return render(self.view)


@dataclass
class ConsoleSender:
    echo: Callable[[str], None] | None = None
    messages: dict[str, ConsoleMessage] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    # ids must never repeat across runs: the database keeps thread bindings and card refs
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    async def post(self, destination: dict[str, Any], view: Any) -> dict[str, Any]:
        mid = f"{self.run}-m{len(self.order) + 1}"
        self.messages[mid] = ConsoleMessage(mid, dict(destination), view)
        self.order.append(mid)
        if self.echo:
            self.echo(render(view))
        await self._notify()
        thread = destination.get("thread_id") or mid
        return {"id": mid, "thread_id": thread, "channel_id": destination.get("channel_id")}

    async def update(self, ref: dict[str, Any], view: Any) -> dict[str, Any]:
        msg = self.messages.get(ref["id"])
        if msg is None:  # a card from an earlier run of the console: show it again
            return await self.post({"channel_id": ref.get("channel_id"), "thread_id": ref.get("thread_id")}, view)
        msg.view = view
        msg.edits += 1
        if self.echo:
            self.echo(render(view))
        await self._notify()
        return ref

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        async def _wait() -> Any:
            async with self._changed:
                while True:
                    value = predicate()
                    if value:
                        return value
                    await self._changed.wait()

        return await asyncio.wait_for(_wait(), timeout)

    def texts(self) -> list[str]:
        return [self.messages[m].text for m in self.order]

    def views(self, type_: str | None = None) -> list[Any]:
        return [self.messages[m].view for m in self.order
                if type_ is None or getattr(self.messages[m].view, "type", None) == type_]
