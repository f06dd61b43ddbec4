"""A session through the whole core: command → header → AI turn → reply and lane card."""
from __future__ import annotations

from tests.harness import console_inbound, running

REPLY = """Let's narrow it down.
[QUESTIONS]
[{"text": "Does it happen for every user?", "context": "scope"}]
[/QUESTIONS]
[ACTIONS]
[{"label": "Check the service", "command": "Get-Service Spooler", "description": "Shows if it runs"}]
[/ACTIONS]"""


async def test_new_session_gets_header_reply_and_lane(db, database_url):
    async with running(database_url) as h:
        h.fake_ai.reply_text(REPLY)
        reply = await h.copilot.command(console_inbound(), "new Printer queue stuck #48291")
        assert reply.ok, reply.error
        lane = await h.console.wait_for(lambda: h.console.views("lane"))
        texts = h.console.texts()
        assert texts[0].startswith("== Printer queue stuck · CW #48291 · active")
        assert any("Let's narrow it down." in t for t in texts)
        assert not any("[QUESTIONS]" in t for t in texts)
        assert lane[0].questions[0].text == "Does it happen for every user?"
        assert lane[0].checks[0].command == "Get-Service Spooler"
        # the "thinking…" message was replaced by the reply (same message, edited)
        working = [m for m in h.console.messages.values() if "Let's narrow it down." in m.text]
        assert working and working[0].edits == 1
