"""Escalate → summary → claim → resolve through the core with the console channel."""
from __future__ import annotations

import uuid

from sqlalchemy import text

from core.model import Role
from tests.harness import console_inbound, running

TURN = """Check the spooler.
[ACTIONS]
[{"label": "Spooler state", "command": "Get-Service Spooler", "description": "running or not"}]
[/ACTIONS]"""


async def _set_role(h, user: str, role: Role, workspace: str = "console-ws") -> None:
    account = await h.store.ensure_workspace("console", workspace)
    async with h.store.unit(account) as uow:
        person = await uow.people.by_identity("console", workspace, user)
        await uow.people.set_role(person.id, role)


async def test_escalate_claim_resolve(db, database_url):
    async with running(database_url) as h:
        h.fake_ai.reply_text(TURN)
        engineer = console_inbound()
        started = await h.copilot.command(engineer, "new Printer queue stuck")
        await h.console.wait_for(lambda: h.console.views("lane"))
        thread = h.console.order[0]
        # the senior is known to FlowPilot and promoted by an admin
        senior = console_inbound(user="U-sen", name="Sam Senior", thread=thread)
        await h.copilot.command(senior, "help")
        await _set_role(h, "U-sen", Role.SENIOR)
        h.fake_ai.reply_json({"summary_prose": "Spooler stuck.", "what_we_know": ["Queue frozen"],
                              "likely_cause": "Corrupt job", "suggested_steps": ["Clear the queue"],
                              "confidence": "medium"})
        esc = await h.copilot.command(console_inbound(thread=thread), "escalate stuck after restart")
        assert esc.ok, esc.error
        cards = await h.console.wait_for(
            lambda: [v for v in h.console.views("escalation") if v.state == "ready"])
        hid = cards[0].handoff_id
        own = await h.copilot.action(console_inbound(thread=thread), "claim",
                                     {"handoff_id": hid, "session_id": started.session_id})
        assert own.error is not None and "own escalation" in str(own.error)
        won = await h.copilot.action(senior, "claim", {"handoff_id": hid, "session_id": started.session_id})
        assert won.ok, won.error
        await h.console.wait_for(lambda: [v for v in h.console.views("escalation") if v.state == "claimed"])
        ctx = await h.console.wait_for(lambda: h.console.views("handoff_context"))
        assert ctx[0].likely_cause == "Corrupt job"
        h.fake_ai.reply_text("## Problem\nx\n\n## What we confirmed\ny\n\n## Root cause\nz\n\n## Resolution\nw")
        res = await h.copilot.action(senior, "resolve", {"session_id": started.session_id})
        assert res.ok, res.error
        preview = await h.console.wait_for(lambda: h.console.views("preview"))
        confirm = await h.copilot.action(senior, "preview_confirm", dict(preview[0].buttons[1].value))
        assert confirm.ok, confirm.error
        await h.console.wait_for(lambda: any("Resolved locally" in t for t in h.console.texts()))
        account = await h.store.ensure_workspace("console", "console-ws")
        async with h.store.unit(account) as uow:
            session = await uow.sessions.get(uuid.UUID(started.session_id))
            assert session.status.value == "resolved"
            assert session.resolution_note_markdown.startswith("## Problem")
