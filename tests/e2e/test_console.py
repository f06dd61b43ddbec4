"""`flowpilot try` end to end, as a person uses it: the installed command in a subprocess, driven line by
line through stdin, against its own fresh database and (with a key) the fake Anthropic server started
here. Each step waits for what the person would see before typing the next line."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from core.prompts.artifacts import RESOLUTION_NOTE_PROMPT
from tests.fakes.anthropic import FakeAnthropic, example_for_schema

REPO = Path(__file__).resolve().parents[2]
FLOWPILOT = Path(sys.executable).parent / "flowpilot"
KEY = "sk-test-console-key"
STEP_TIMEOUT_S = 60

CHAT_REPLY = """Let's narrow it down (console-marker-7).
[QUESTIONS]
[{"text": "Does it happen for every user?", "context": "scope"}]
[/QUESTIONS]
[ACTIONS]
[{"label": "Check the spooler", "command": "Get-Service Spooler", "description": "Shows if it runs"}]
[/ACTIONS]"""
SUMMARY = {"summary_prose": "The print spooler stalls again after every restart.",
           "what_we_know": ["Spooler restarts do not hold"], "likely_cause": "A corrupt driver",
           "suggested_steps": ["Reinstall the printer driver"], "confidence": "medium"}
NOTE = ("## Problem\nThe office printer queue was stuck.\n\n## What we confirmed\n- Spooler restarts did not hold.\n\n"
        "## Root cause\nA corrupt printer driver.\n\n## Resolution\nReinstalled the driver; printing works.")


def system_text(body: dict[str, Any]) -> str:
    system = body.get("system", "")
    return system if isinstance(system, str) else "".join(block.get("text", "") for block in system)


def model(body: dict[str, Any]) -> Any:
    """Chat turns get the marker reply, the escalation summary its JSON, the resolution note 4 sections."""
    fmt = (body.get("output_config") or {}).get("format")
    forced = (body.get("tool_choice") or {}).get("type") == "tool"
    if fmt or forced:
        schema = fmt["schema"] if fmt else body["tools"][0]["input_schema"]
        return SUMMARY if "summary_prose" in json.dumps(schema) else example_for_schema(schema)
    if RESOLUTION_NOTE_PROMPT[:200] in system_text(body):
        return NOTE
    return CHAT_REPLY


@pytest.fixture
async def console_db_url(database_url: str):
    """A database of its own (name contains "test"): `flowpilot try` migrates it like a first run."""
    name = f"flowpilot_console_test_{os.getpid()}"
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    server = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with server.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url
        async with server.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await server.dispose()


@pytest.fixture
async def fake_ai():
    fake = await FakeAnthropic(api_key=KEY).start()
    fake.responder = model
    yield fake
    await fake.stop()


class Terminal:
    """The console process with everything it printed so far."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.output = ""
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str]) -> "Terminal":
        proc = await asyncio.create_subprocess_exec(
            str(FLOWPILOT), "try", "--name", "erin", cwd=str(REPO), env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def _read(self) -> None:
        while chunk := await self.proc.stdout.read(4096):
            async with self._changed:
                self.output += chunk.decode()
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def expect(self, *texts: str, since: int = 0) -> str:
        """Wait until every text has been printed after `since`; the output from `since` on."""
        def seen() -> bool:
            return all(t in self.output[since:] for t in texts)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: seen() or self._reader.done()), STEP_TIMEOUT_S)
            except TimeoutError:
                pass
        missing = [t for t in texts if t not in self.output[since:]]
        if missing and self._reader.done():  # it exited: say why
            stderr = (await self.proc.stderr.read()).decode()
            raise AssertionError(f"the console exited ({self.proc.returncode}) before printing {missing}:\n"
                                 f"{self.output[since:]}\n--- stderr ---\n{stderr[-3000:]}")
        assert not missing, f"never printed {missing}; the console printed:\n{self.output[since:]}"
        return self.output[since:]

    async def type(self, line: str, *expected: str) -> str:
        since = len(self.output)
        self.proc.stdin.write((line + "\n").encode())
        await self.proc.stdin.drain()
        return await self.expect(*expected, since=since)

    async def finish(self) -> tuple[int, str]:
        code = await asyncio.wait_for(self.proc.wait(), STEP_TIMEOUT_S)
        await self._reader
        return code, (await self.proc.stderr.read()).decode()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()


def console_env(database_url: str, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    return {**keep, "DATABASE_URL": database_url, "FLOWPILOT_POLL_SECONDS": "0.5", **extra}


@pytest.fixture
async def terminals():
    started: list[Terminal] = []

    async def start(env: dict[str, str]) -> Terminal:
        started.append(await Terminal.start(env))
        return started[-1]

    yield start
    for terminal in started:
        await terminal.kill()


async def test_a_session_from_problem_to_resolved_with_the_ai(console_db_url, fake_ai, terminals):
    term = await terminals(console_env(console_db_url, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake_ai.url))
    banner = await term.expect("FlowPilot console — type a problem to start")
    assert "AI is off" not in banner

    out = await term.type("Printer queue stuck #48291",
                          "== Printer queue stuck · CW #48291 · active · owner erin ==",
                          "Let's narrow it down (console-marker-7).", "Q1. Does it happen for every user?",
                          "$ Get-Service Spooler")
    assert "[QUESTIONS]" not in out  # markers are parsed, never shown

    await term.type("/answer 1 Yes, every user on the floor",
                    "Q1. Does it happen for every user? [answered] — Yes, every user on the floor")
    await term.type("/note Spooler restarts do not hold",
                    "Added to What we know", "- Spooler restarts do not hold (user_note)")
    out = await term.type("/escalate stuck after two restarts",
                          "ESCALATION: Printer queue stuck", "Handed off by erin: stuck after two restarts",
                          "Summary: The print spooler stalls again after every restart.", "[Pick up]")
    assert "· escalated · owner erin ==" in out
    await term.type("/as sam")
    out = await term.type("/claim", "Claimed by sam", "@sam Handoff context from erin",
                          "Next: Reinstall the printer driver")
    assert "· owner erin · with sam ==" in out
    await term.type("/resolve", "Preview (resolution_note) → CW #48291", "## Root cause\nA corrupt printer driver.",
                    "[Confirm & post]")
    await term.type("/confirm", "Resolved locally", "· resolved · owner erin · with sam ==")
    await term.type("/quit")
    code, stderr = await term.finish()

    assert code == 0, stderr
    assert "Traceback" not in stderr
    answered = [r for r in fake_ai.requests if r.status == 200 and "every user on the floor" in json.dumps(r.body)]
    assert answered, "the answer to question 1 never reached the model"
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" or r.headers.get("x-api-key") == KEY
               for r in fake_ai.requests)
    assert any(RESOLUTION_NOTE_PROMPT[:200] in system_text(r.body) for r in fake_ai.requests)


async def test_without_an_api_key_the_ai_is_off_and_the_rest_still_works(console_db_url, fake_ai, terminals):
    # ANTHROPIC_BASE_URL still points at the fake: nothing may call it without a key.
    term = await terminals(console_env(console_db_url, ANTHROPIC_BASE_URL=fake_ai.url))
    await term.expect("AI is off: ANTHROPIC_API_KEY is not set")

    await term.type("Printer queue stuck #48291", "== Printer queue stuck · CW #48291 · active · owner erin ==",
                    "AI is not configured on this server")
    await term.type("/note Spooler restarts do not hold", "Added to What we know",
                    "- Spooler restarts do not hold (user_note)")
    await term.type("/escalate stuck after two restarts", "ESCALATION: Printer queue stuck",
                    "AI summary unavailable — deterministic snapshot below", "[Pick up]")
    await term.type("/as sam")
    await term.type("/claim", "Claimed by sam", "@sam Handoff context from erin",
                    "Known: Spooler restarts do not hold")
    await term.type("/resolve", "Drafted without AI", "## What we confirmed\n- Spooler restarts do not hold")
    await term.type("/confirm", "Resolved locally", "· resolved ·")
    await term.type("/quit")
    code, stderr = await term.finish()

    assert code == 0, stderr
    assert fake_ai.requests == []


async def test_forms_read_their_answers_from_the_same_input(console_db_url, fake_ai, terminals):
    fake_ai.responder = lambda body: ('Try this.\n[SUGGEST_FIX]\n{"title": "Restart the spooler", '
                                      '"description": "Restart it.", "confidence": 70}\n[/SUGGEST_FIX]')
    term = await terminals(console_env(console_db_url, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake_ai.url))
    await term.expect("type a problem to start")

    await term.type("Printer queue stuck", "Suggested fix (70%): Restart the spooler — proposed")
    await term.type("/applied", "Restart the spooler — verifying")
    await term.type("/escalate still broken", "-- Before escalating --", "What happened with the fix? [number]: ")
    # Piped answers are echoed, so the transcript shows what was chosen.
    out = await term.type("1", "Notes (required for partial): ")
    assert out.startswith("1\n")
    out = await term.type("it did not hold", "Restart the spooler — failed", "Failure: it did not hold",
                          "ESCALATION: Printer queue stuck")
    assert out.startswith("it did not hold\n")
    await term.type("/status", "Suggested fix: Restart the spooler (70%) — failed")
    await term.type("/quit")
    code, stderr = await term.finish()
    assert code == 0, stderr


async def test_end_of_input_ends_the_console_cleanly(console_db_url, terminals):
    term = await terminals(console_env(console_db_url))
    await term.expect("type a problem to start")
    await term.type("/help", "/as <name>         act as another person")

    term.proc.stdin.close()  # e.g. the end of a piped script without /quit
    code, stderr = await term.finish()

    assert code == 0, stderr


async def test_ctrl_c_leaves_at_once_without_a_traceback(console_db_url, terminals):
    term = await terminals(console_env(console_db_url))
    await term.expect("type a problem to start")

    term.proc.send_signal(signal.SIGINT)  # stdin stays open: waiting for a line must not hold the exit up
    code, stderr = await term.finish()

    assert code == 130
    assert "Traceback" not in stderr
