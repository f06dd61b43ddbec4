"""`flowpilot try`: a FlowPilot session in the terminal, through the same core, jobs, outbox and
views as Slack and Teams. Everyone typing here is an admin (it is your own terminal), so `/as`
can switch to a senior who claims the escalation."""
from __future__ import annotations

import asyncio
import getpass
import sys
import threading
from typing import Any, TextIO

from adapters.console.render import render
from adapters.console.sender import ConsoleSender
from core.commands import USAGE, Actor, Inbound, Reply, Where
from core.model import Platform
from core.views import Action, FormView

WORKSPACE = "console"
CHANNEL = "terminal"

HELP = """\
Type a problem to start a session, then talk to FlowPilot. Commands:
  /answer N <text>   answer question N          /output N <text>  paste output of check N
  /done N | /skip N  mark check done / skip Q   /note <text>      add to What we know
  /applied | /worked | /failed [why] | /partial <notes> | /pending <reason>   fix outcome
  /escalate [reason] /claim   /resolve   /confirm   /update   /status   /queue   /seniors
  /as <name>         act as another person      /new <problem>    start another session
  /help  /quit"""


class LineReader:
    """Lines typed at the terminal (or piped in), read by a daemon thread. A default-executor thread
    blocked in readline() would hold up asyncio.run's shutdown, so Ctrl-C would wait for Enter.
    One reader serves the main loop and the forms, so no line is read twice or lost in between."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        self._eof = False
        try:
            self.interactive = stream.isatty()
        except (AttributeError, ValueError):
            self.interactive = False
        threading.Thread(target=self._pump, name="console-stdin", daemon=True).start()

    def _pump(self) -> None:
        while True:
            try:
                line = self._stream.readline()
            except (OSError, ValueError):  # stdin closed under us: same as end of input
                line = ""
            try:
                self._loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except RuntimeError:  # the loop is gone: the console has ended
                return
            if not line:
                return

    async def readline(self) -> str:
        """The next line with its newline, or "" at end of input (and on every call after it)."""
        if self._eof:
            return ""
        line = await self._lines.get()
        self._eof = not line
        return line


class Console:
    def __init__(self, copilot, sender: ConsoleSender, store, out: TextIO, idle,
                 lines: LineReader | None = None) -> None:
        self.copilot = copilot
        self.sender = sender
        self.store = store
        self.out = out
        self.idle = idle
        self.lines = lines
        self.user = getpass.getuser() or "you"
        self.thread: str | None = None
        self.session_id: str | None = None

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def inbound(self) -> Inbound:
        self.copilot.bootstrap_admins = frozenset({*self.copilot.bootstrap_admins, self.user})
        return Inbound(actor=Actor(Platform.CONSOLE, WORKSPACE, self.user, self.user),
                       where=Where(Platform.CONSOLE, WORKSPACE, CHANNEL, self.thread))

    def show(self, reply: Reply) -> None:
        if reply.error is not None:
            self.say(f"! {reply.error}")
        elif reply.text:
            self.say(f"> {reply.text}")
        if reply.card is not None and getattr(reply.card, "type", "") == "list":
            self.say(render(reply.card))
        if reply.session_id and not self.session_id:
            self.session_id = reply.session_id

    # ------------------------------------------------------------------ helpers over the latest cards
    def _latest(self, type_: str, session_only: bool = True):
        views = [v for v in self.sender.views(type_)
                 if not session_only or getattr(v, "session_id", None) in (None, self.session_id)]
        return views[-1] if views else None

    def _button(self, view, action: Action):
        for b in getattr(view, "buttons", []) if view else []:
            if b.action == action:
                return b
        return None

    async def click(self, view, action: Action, text: str | None = None) -> None:
        button = self._button(view, action)
        if button is None:
            self.say(f"! Nothing to {action.value.replace('_', ' ')} right now.")
            return
        await self.act(action, button.value, text)

    async def act(self, action: Action, value: dict, text: str | None = None, fields: dict | None = None) -> None:
        reply = await self.copilot.action(self.inbound(), action.value, value, text=text, fields=fields)
        self.show(reply)
        if reply.form is not None:
            await self.fill(reply.form)

    async def fill(self, form: FormView) -> None:
        self.say(f"-- {form.title} --" + (f"\n{form.intro}" if form.intro else ""))
        fields = {}
        for f in form.fields:
            if f.kind == "choice":
                for n, (_, label) in enumerate(f.options, 1):
                    self.say(f"  {n}. {label}")
                answer = (await self.read(f"{f.label} [number]: ")).strip()
                idx = int(answer) - 1 if answer.isdigit() else -1
                fields[f.name] = f.options[idx][0] if 0 <= idx < len(f.options) else (f.initial or "")
            else:
                fields[f.name] = await self.read(f"{f.label}: ")
        await self.act(form.action, form.value, fields=fields)

    async def read(self, prompt: str) -> str:
        self.out.write(prompt)
        self.out.flush()
        if self.lines is None:
            self.lines = LineReader(sys.stdin)
        answer = (await self.lines.readline()).rstrip("\n")
        if not self.lines.interactive:  # piped input is not echoed by a terminal: keep the transcript readable
            self.out.write(answer + "\n")
            self.out.flush()
        return answer

    def _item(self, kind: str, n: str):
        lane = self._latest("lane")
        items = (lane.questions if kind == "q" else lane.checks) if lane else []
        if not n.isdigit() or not 1 <= int(n) <= len(items):
            self.say(f"! No {'question' if kind == 'q' else 'check'} {n} in the latest lane.")
            return None
        return items[int(n) - 1]

    # ------------------------------------------------------------------ one line of input
    async def handle(self, line: str) -> bool:
        line = line.strip()
        if not line:
            return True
        if not line.startswith("/"):
            if self.thread is None:
                await self.start(line)
            else:
                self.show(await self.copilot.message(self.inbound(), line))
            return True
        cmd, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        fix = self._latest("fix")
        if cmd in ("quit", "exit"):
            return False
        if cmd == "help":
            self.say(HELP)
        elif cmd == "as":
            self.user = rest or self.user
            self.say(f"> You are now {self.user}.")
        elif cmd == "new":
            await self.start(rest)
        elif cmd in ("answer", "a", "output", "o"):
            n, _, text = rest.partition(" ")
            item = self._item("q" if cmd in ("answer", "a") else "c", n)
            if item is not None:
                action = Action.ANSWER if cmd in ("answer", "a") else Action.PASTE_OUTPUT
                await self.click(item, action, text)
        elif cmd in ("done", "skip"):
            item = self._item("c" if cmd == "done" else "q", rest)
            if item is not None:
                await self.click(item, Action.CHECK_DONE if cmd == "done" else Action.SKIP)
        elif cmd == "note":
            self.show(await self.copilot.command(self.inbound(), f"note {rest}"))
        elif cmd in ("applied", "worked", "failed", "partial", "pending"):
            action = {"applied": Action.FIX_APPLIED, "worked": Action.FIX_WORKED, "failed": Action.FIX_FAILED,
                      "partial": Action.FIX_PARTIAL, "pending": Action.FIX_PENDING}[cmd]
            await self.click(fix, action, rest or None)
        elif cmd == "claim":
            card = self._latest("escalation", session_only=False)
            await self.click(card, Action.CLAIM)
        elif cmd == "confirm":
            await self.click(self._latest("preview"), Action.PREVIEW_CONFIRM)
        elif cmd == "seniors":
            self.show(await self.copilot.command(self.inbound(), "seniors here"))
        elif cmd in ("escalate", "resolve", "update", "status", "queue", "metrics", "pause", "close", "role"):
            reply = await self.copilot.command(self.inbound(), f"{cmd} {rest}".strip())
            self.show(reply)
            if reply.form is not None:
                await self.fill(reply.form)
        else:
            self.say(f"! Unknown command /{cmd}. Type /help.")
        return True

    async def start(self, problem: str) -> None:
        self.thread = None
        self.session_id = None
        before = len(self.sender.order)
        reply = await self.copilot.command(self.inbound(), f"new {problem}")
        self.show(reply)
        if reply.ok:
            header = await self.sender.wait_for(lambda: [m for m in self.sender.order[before:]
                                                         if self.sender.messages[m].view.type == "header"])
            self.thread = header[0]


async def run_console(settings, name: str | None = None, stdin: TextIO | None = None,
                      stdout: TextIO | None = None) -> int:
    from bot.wiring import build, resolve_database_url
    from storage import migrate

    out = stdout or sys.stdout
    url = resolve_database_url(settings)
    await migrate.upgrade(url)
    sender = ConsoleSender(echo=lambda text: print(text, file=out, flush=True))
    comps = await build(settings, url, senders={"console": sender})
    await comps.runtime.start()
    lines = LineReader(stdin or sys.stdin)
    console = Console(comps.copilot, sender, comps.store, out, idle=lambda: _idle(comps), lines=lines)
    if name:
        console.user = name
    try:
        # The terminal is the senior channel too, so escalation cards show up here.
        await comps.copilot.command(console.inbound(), "seniors here")
        print("FlowPilot console — type a problem to start, /help for commands, /quit to leave.", file=out,
              flush=True)
        if not comps.llm.configured:
            print("AI is off: ANTHROPIC_API_KEY is not set. Notes, fix outcomes, escalate, claim and resolve (with a "
                  "deterministic note) still work.", file=out, flush=True)
        while True:
            line = await lines.readline()
            if not line:
                break
            if not line.strip().startswith("/as") and line.strip():
                print(f"{console.user}> {line.strip()}", file=out, flush=True)
            if not await console.handle(line):
                break
            await _idle(comps)
        await _idle(comps)  # show what the last input started before leaving (not on Ctrl-C)
    finally:
        await comps.close()
    return 0


async def _idle(comps: Any, timeout: float = 120.0) -> None:
    """Wait until the work this input started has run and been delivered (bounded)."""
    from sqlalchemy import text

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with comps.db.no_tenant() as conn:
            busy = (await conn.execute(text(
                "SELECT (SELECT count(*) FROM jobs WHERE status IN ('pending','running') AND run_after <= now() "
                "AND kind <> 'escalation_reping') + (SELECT count(*) FROM outbox WHERE status IN ('pending','sending') "
                "AND next_attempt_at <= now() + interval '2 seconds')"))).scalar_one()
        if not busy:
            return
        await asyncio.sleep(0.1)  # polling the queue the user is waiting on; bounded by the deadline
