"""Run `flowpilot serve` as real subprocesses against fakes started in the test process.

- `fresh_database()`: a fresh database on the embedded test server (its name contains "test"),
  dropped afterwards. `serve` migrates it on start.
- `ServeProcess`: one `flowpilot serve` with a clean environment (no API keys or tokens leak in
  from the machine running the tests), its log in a file, readiness polled on /readyz, and the
  two ways it can end: `kill()` (SIGKILL, nothing runs on the way out) and `stop()` (SIGTERM).
- `SlackCaller`: signs requests exactly as Slack does and POSTs them to /slack/events, recording
  what each one got (status, seconds) so a test knows which requests were *accepted* (HTTP 200).
- `PrivatePostgres`: an embedded Postgres in its own data directory, to stop and start.
- `teams_env` / `TeamsCaller`: Teams for `serve` (FakeOpenIdIssuer tokens, FakeBotConnector replies).
"""
from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from storage.db import normalise_url
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.fakes.teams import teams_channel_message
from tests.fakes.slack_signing import (
    DEFAULT_USER_ID, FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, app_mention_event, block_action_body, event_body,
    message_event, new_event_id, new_trigger_id, signed_headers, slash_command_body,
)
from tests.harness import FAKE_KEY

REPO = Path(__file__).resolve().parents[2]
FLOWPILOT = Path(sys.executable).parent / "flowpilot"
SIGNING_SECRET = "0b3f6a2ad5e94f7c9e1d2c3b4a596877"
READY_TIMEOUT_S = 60.0
TOKEN = re.compile(r"msg-\d+-\d+")  # tests put one in each message; the fake model echoes it back
_names = itertools.count(1)

# Fast recovery and fast retries for tests; FLOWPILOT_JOB_LEASE_SECONDS=3 so a killed process's
# claims are taken over within seconds.
FAST_WORKERS = dict(FLOWPILOT_JOB_LEASE_SECONDS="3", FLOWPILOT_POLL_SECONDS="0.5",
                    FLOWPILOT_BACKOFF_BASE_SECONDS="0.05", FLOWPILOT_BACKOFF_CAP_SECONDS="0.5",
                    FLOWPILOT_WORKERS="2", AI_REQUEST_TIMEOUT_SECONDS="10")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- databases
@contextlib.asynccontextmanager
async def fresh_database(label: str) -> AsyncIterator[str]:
    """A fresh database named flowpilot_<label>_test_<pid>_<n> on the embedded test server."""
    from storage.embedded import drop_and_create, drop_database
    from tests.conftest import TEST_PG_DIR

    name = f"flowpilot_{label}_test_{os.getpid()}_{next(_names)}"
    assert "test" in name
    url = await asyncio.to_thread(drop_and_create, TEST_PG_DIR, name)
    try:
        yield url
    finally:
        await asyncio.to_thread(drop_database, TEST_PG_DIR, name)


def admin_engine(database_url: str) -> AsyncEngine:
    """Table-owner access for assertions (reads across tenants, bypassing RLS)."""
    return create_async_engine(normalise_url(database_url), pool_size=2, max_overflow=2, pool_pre_ping=True)


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll an async (or plain) check until it returns something truthy, within a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while True:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(every)


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of an Anthropic Messages request body."""
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else "\n".join(b.get("text", "") for b in content
                                                              if b.get("type") == "text")


# ----------------------------------------------------------------------------- environment
def serve_env(database_url: str, *, port: int, slack: FakeSlack | None = None, ai: FakeAnthropic | None = None,
              **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "PYTHONPATH")}
    env = {**keep, "DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port),
           "LOG_LEVEL": "WARNING", "FLOWPILOT_LOG_FORMAT": "text", **FAST_WORKERS}
    if slack is not None:
        env.update(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN=slack.token, SLACK_API_URL=slack.api_url)
    if ai is not None:
        env.update(ANTHROPIC_API_KEY=FAKE_KEY, ANTHROPIC_BASE_URL=ai.url)
    env.update({k: str(v) for k, v in extra.items()})
    return env


# ----------------------------------------------------------------------------- processes
@dataclass
class ServeProcess:
    name: str
    env: dict[str, str]
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    ready: bool = False  # answered /readyz since it started

    @property
    def alive(self) -> bool:
        return self.ready and self.proc is not None and self.proc.returncode is None

    @property
    def port(self) -> int:
        return int(self.env["PORT"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> "ServeProcess":
        sink = self.log_path.open("ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                str(FLOWPILOT), "serve", cwd=str(REPO), env=self.env, stdout=sink, stderr=sink)
        finally:
            sink.close()  # the child has its own copy of the descriptor
        return self

    async def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Seconds until /readyz answered 200 (the server migrated and started its workers)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                assert self.proc is not None and self.proc.returncode is None, \
                    f"{self.name} exited early:\n{self.log_tail()}"
                try:
                    async with http.get(f"{self.base_url}/readyz") as resp:
                        if resp.status == 200:
                            self.ready = True
                            return loop.time() - started
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                assert loop.time() - started < timeout, f"{self.name} never became ready:\n{self.log_tail()}"
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """kill -9: no shutdown hook, no lease release, no flush. Whatever was in flight is cut."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=20)
        except asyncio.TimeoutError:
            self.kill()
            await self.proc.wait()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"


@contextlib.asynccontextmanager
async def serving(log_dir: Path, *envs: dict[str, str]) -> AsyncIterator[list[ServeProcess]]:
    """Start one `serve` per environment (in parallel) and wait until all are ready; stop them all
    afterwards, whatever state they are in."""
    procs = [ServeProcess(f"serve-{i + 1}", env, log_dir / f"serve-{i + 1}.log") for i, env in enumerate(envs)]
    try:
        for p in procs:
            await p.start()
        await asyncio.gather(*(p.wait_ready() for p in procs))
        yield procs
    finally:
        for p in procs:
            await p.stop()


# ----------------------------------------------------------------------------- signed requests
@dataclass
class Sent:
    """One request as "Slack" sent it and what it got back."""

    kind: str
    body: str
    content_type: str
    status: int | None  # None: the connection failed (the process was gone)
    seconds: float
    text: str = ""

    @property
    def accepted(self) -> bool:
        return self.status == 200


@dataclass
class SlackCaller:
    """Slack's side of /slack/events for one workspace: signs bodies and posts them."""

    http: aiohttp.ClientSession
    team_id: str = "T0FPTEAM1"
    secret: str = SIGNING_SECRET
    bot_user_id: str = "U0FPBOT01"
    sent: list[Sent] = field(default_factory=list)

    async def post(self, base_url: str, body: str, content_type: str, kind: str, retry_num: int | None = None,
                   timeout: float = 10.0) -> Sent:
        headers = signed_headers(body, self.secret, content_type=content_type, retry_num=retry_num)
        started = time.perf_counter()
        try:
            async with self.http.post(f"{base_url}/slack/events", data=body.encode(), headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                result = Sent(kind, body, content_type, resp.status, time.perf_counter() - started, await resp.text())
        except (aiohttp.ClientError, asyncio.TimeoutError):
            result = Sent(kind, body, content_type, None, time.perf_counter() - started)
        self.sent.append(result)
        return result

    async def retry(self, base_url: str, sent: Sent, retry_num: int = 1) -> Sent:
        """Deliver the same bytes again, as Slack does after a failure (events carry X-Slack-Retry-Num)."""
        return await self.post(base_url, sent.body, sent.content_type, sent.kind,
                               retry_num=retry_num if sent.content_type == JSON_CONTENT_TYPE else None)

    def command_body(self, text: str, *, user_id: str = DEFAULT_USER_ID, channel_id: str = "C0FPCHAN1",
                     channel_name: str = "msp-support", response_url: str | None = None) -> str:
        return slash_command_body(text=text, team_id=self.team_id, user_id=user_id, channel_id=channel_id,
                                  channel_name=channel_name, response_url=response_url, trigger_id=new_trigger_id())

    async def command(self, base_url: str, text: str, **kw: Any) -> Sent:
        return await self.post(base_url, self.command_body(text, **kw), FORM_CONTENT_TYPE, "command")

    def reply_body(self, channel: str, thread_ts: str, text: str, *, user: str = DEFAULT_USER_ID) -> str:
        event = message_event(text=text, channel=channel, thread_ts=thread_ts, user=user, team=self.team_id)
        return event_body(event, team_id=self.team_id, event_id=new_event_id(), bot_user_id=self.bot_user_id)

    async def reply(self, base_url: str, channel: str, thread_ts: str, text: str, **kw: Any) -> Sent:
        return await self.post(base_url, self.reply_body(channel, thread_ts, text, **kw), JSON_CONTENT_TYPE, "reply")

    def mention_body(self, channel: str, text: str, *, thread_ts: str | None = None, user: str = DEFAULT_USER_ID) -> str:
        event = app_mention_event(text=text, channel=channel, thread_ts=thread_ts, user=user, team=self.team_id,
                                  bot_user_id=self.bot_user_id)
        return event_body(event, team_id=self.team_id, event_id=new_event_id(), bot_user_id=self.bot_user_id)

    async def mention(self, base_url: str, channel: str, text: str, **kw: Any) -> Sent:
        return await self.post(base_url, self.mention_body(channel, text, **kw), JSON_CONTENT_TYPE, "mention")

    def click_body(self, message: dict[str, Any], element: dict[str, Any], *, user_id: str = DEFAULT_USER_ID) -> str:
        return block_action_body(action_id=element["action_id"], value=element["value"],
                                 button_text=element["text"]["text"], message=message, channel_id=message["channel"],
                                 user_id=user_id, team_id=self.team_id, trigger_id=new_trigger_id())

    async def click(self, base_url: str, message: dict[str, Any], element: dict[str, Any], **kw: Any) -> Sent:
        return await self.post(base_url, self.click_body(message, element, **kw), FORM_CONTENT_TYPE, "click")


# ----------------------------------------------------------------------------- a private Postgres
class PrivatePostgres:
    """An embedded Postgres in its own data directory, for tests that stop and start the database.
    Never the shared test server: other test runs use that one."""

    def __init__(self, database: str = "flowpilot_restart_test") -> None:
        assert "test" in database
        self.database = database
        self.root: Path | None = None
        self.server: Any = None

    @property
    def pgdata(self) -> Path:
        assert self.root is not None
        return self.root / "pgdata"

    @property
    def url(self) -> str:
        from storage.embedded import socket_url

        return socket_url(self.pgdata, self.database)

    def _start_new(self) -> None:
        import tempfile

        import pgserver

        self.root = Path(tempfile.mkdtemp(prefix="fp-pgr-"))  # short: the socket path has a length limit
        self.server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        self.server.psql(f'CREATE DATABASE "{self.database}";')

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", *args], pgdata=self.pgdata, user=self.server.system_user, timeout=30)

    async def start_new(self) -> "PrivatePostgres":
        await asyncio.to_thread(self._start_new)
        return self

    async def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects everyone and shuts down cleanly; `immediate` is a crash."""
        await asyncio.to_thread(self._pg_ctl, "-m", mode, "stop")

    async def start(self) -> None:
        await asyncio.to_thread(self.server.ensure_postgres_running)

    async def destroy(self) -> None:
        import shutil

        if self.server is not None:
            try:
                await self.stop("immediate")
            except Exception:
                pass  # already stopped
            import atexit

            atexit.unregister(self.server._cleanup)  # its bookkeeping lives in the directory removed below
        if self.root is not None:
            await asyncio.to_thread(shutil.rmtree, self.root, True)


# ----------------------------------------------------------------------------- Teams
TEAMS_APP_ID = "5f3c2a1e-7b9d-4c8e-a6f0-2d4b6e8a0c13"
TEAMS_PASSWORD = "fake-client-secret"
TEAMS_TENANT = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d"


def teams_env(issuer: Any, connector: Any) -> dict[str, str]:
    """Settings that point `serve` at FakeOpenIdIssuer (channel tokens) and FakeBotConnector."""
    return dict(MICROSOFT_APP_ID=TEAMS_APP_ID, MICROSOFT_APP_PASSWORD=TEAMS_PASSWORD,
                MICROSOFT_APP_TENANT_ID=TEAMS_TENANT, TEAMS_OPENID_METADATA_URL=issuer.metadata_url,
                TEAMS_TOKEN_ISSUER=issuer.issuer, TEAMS_TOKEN_ENDPOINT=connector.token_url(TEAMS_TENANT))


class TeamsCaller:
    """Teams' side of /api/messages: activities with a channel token from the fake issuer. A refused
    activity is redelivered with the same id, as Teams does."""

    def __init__(self, http: aiohttp.ClientSession, issuer: Any, connector: Any, channel: str) -> None:
        self.http, self.issuer, self.connector, self.channel = http, issuer, connector, channel
        self.during_outage: list[tuple[int, float, dict]] = []
        self._ids = iter(range(1_780_000_000_001, 1_789_999_999_999))

    async def post(self, base_url: str, text_: str | None = None, activity: dict | None = None
                   ) -> tuple[int | None, float, dict]:
        """(HTTP status or None when the process was gone, seconds, the activity as sent)."""
        activity = activity or teams_channel_message(
            service_url=self.connector.service_url, app_id=TEAMS_APP_ID, tenant_id=TEAMS_TENANT, text=text_,
            channel_id=self.channel, message_id=str(next(self._ids)))
        headers = {"Content-Type": "application/json",
                   "Authorization": self.issuer.authorization(TEAMS_APP_ID, self.connector.service_url)}
        started = time.perf_counter()
        try:
            async with self.http.post(f"{base_url}/api/messages", data=json.dumps(activity), headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=20)) as resp:
                await resp.read()
                return resp.status, time.perf_counter() - started, activity
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None, time.perf_counter() - started, activity

    async def redeliver(self, base_url: str) -> list[str]:
        tokens = []
        for _, _, activity in self.during_outage:
            status, _, _ = await self.post(base_url, activity=activity)
            assert status == 201, status
            tokens += TOKEN.findall(activity["text"])
        return tokens

    def carrying(self, needle: str) -> list[Any]:
        """The messages FlowPilot posted in Teams whose current version contains `needle`."""
        return [a for a in self.connector.activities() if needle in json.dumps(a.body, ensure_ascii=False)]

    def texts(self) -> str:
        return json.dumps([a.body for a in self.connector.activities()], ensure_ascii=False)[-3000:]


