"""Slack ack latency at a fixed request rate: signed slash commands and Events API callbacks sent
open-loop (at their scheduled times, whatever the answers) to a running `flowpilot serve` process, then
the same load against a bare bolt AsyncApp that only acknowledges (the floor), served the same way
(aiohttp, its own process, this machine), and the ratio of the two.

FlowPilot's server has a fresh database, FakeSlack (started here) as its Web API and FakeAnthropic
(started here) as its model, so the sessions the load starts run their AI turns and post their cards in
the background while the acks are measured. The floor runs first, so none of that background work
overlaps its phase.

    python -m bench.ack [--rate 50] [--seconds 10] [--new-every 25]
    python -m bench.ack --serve-floor --port PORT   (the floor server; started by the benchmark itself)
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import emit, fresh_database, percentiles

REPO = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-ack-signing-secret-0001"
AI_KEY = "sk-bench-ack-key"
CHANNELS = [f"C0BENCH{n:02d}" for n in range(10)]  # sessions spread over channels, as in a real workspace
USERS = [f"U0BENCH{n:02d}" for n in range(20)]
SLACK_ACK_BUDGET_S = 3.0
STARTUP_TIMEOUT_S = 60
REPLY = ("Let's narrow it down.\n[QUESTIONS]\n[{\"text\": \"Does it happen for every user?\"}]\n[/QUESTIONS]\n"
         "[ACTIONS]\n[{\"label\": \"Check the spooler\", \"command\": \"Get-Service Spooler\"}]\n[/ACTIONS]")


def model_reply(body: dict[str, Any]) -> Any:
    """Chat turns get a marker reply; structured requests (summaries) an answer shaped by their schema."""
    from tests.fakes.anthropic import example_for_schema

    fmt = (body.get("output_config") or {}).get("format")
    if fmt:
        return example_for_schema(fmt["schema"])
    if (body.get("tool_choice") or {}).get("type") == "tool":
        return example_for_schema(body["tools"][0]["input_schema"])
    return REPLY


# --------------------------------------------------------------------------- the floor server


async def serve_floor(port: int) -> None:
    """A bolt AsyncApp whose listeners only ack, behind the same aiohttp route wrapper as FlowPilot's."""
    from aiohttp import web
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.mount import events_handler

    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    bolt = AsyncApp(signing_secret=os.environ["SLACK_SIGNING_SECRET"], client=client, name="floor")

    async def just_ack(ack: Any) -> None:
        await ack()

    bolt.command("/flowpilot")(just_ack)
    bolt.event("message")(just_ack)
    bolt.event("app_mention")(just_ack)

    app = web.Application()
    app.router.add_post("/slack/events", events_handler(bolt, None))
    app.router.add_get("/healthz", lambda _request: web.json_response({"status": "ok"}))
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def served(name: str, argv: list[str], env: dict[str, str], ready_url: str, logs: Path):
    """Start a server process, wait until `ready_url` answers 200, stop it with SIGTERM afterwards."""
    log_path = logs / f"{name}.log"
    with log_path.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=str(REPO), env=env, stdout=sink, stderr=sink)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(ready_url) as resp:
                        if resp.status == 200:
                            break
                if loop.time() > deadline:
                    raise RuntimeError(f"{name} not ready after {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}")
                await asyncio.sleep(0.1)  # polling a process we do not control, until its deadline
        yield
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


def base_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    return {**keep, **extra}


# --------------------------------------------------------------------------- load


@dataclass
class Phase:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"command": [], "event": []})
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    max_send_lag_s: float = 0.0
    wall_s: float = 0.0


def request_plan(rate: int, seconds: float, new_every: int) -> list[tuple[str, str]]:
    """(kind, what) per request: `new` commands start sessions, the rest are `help` commands and thread
    replies in threads that are not sessions (read, looked up, ignored), alternating."""
    plan = []
    for i in range(int(rate * seconds)):
        if new_every and i % new_every == 0:
            plan.append(("command", f"new Printer queue stuck on floor {i} #{48000 + i}"))
        elif i % 2 == 0:
            plan.append(("command", "help"))
        else:
            plan.append(("event", f"still failing after restart {i}"))
    return plan


def build_request(fake: Any, kind: str, what: str, i: int) -> tuple[str, str]:
    from tests.fakes.slack_signing import (
        FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, event_body, message_event, new_message_ts, slash_command_body,
    )

    channel, user = CHANNELS[i % len(CHANNELS)], USERS[i % len(USERS)]
    if kind == "command":
        body = slash_command_body(text=what, channel_id=channel, user_id=user, user_name=user.lower(),
                                  response_url=fake.new_response_url(channel=channel, user=user))
        return body, FORM_CONTENT_TYPE
    event = message_event(text=what, channel=channel, user=user, thread_ts=new_message_ts())
    return event_body(event), JSON_CONTENT_TYPE


async def run_load(url: str, fake: Any, plan: list[tuple[str, str]], rate: int) -> Phase:
    from tests.fakes.slack_signing import signed_headers

    phase = Phase()
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
        async def send(i: int, kind: str, what: str) -> None:
            body, content_type = build_request(fake, kind, what, i)
            headers = signed_headers(body, SIGNING_SECRET, content_type=content_type)
            started = time.perf_counter()
            try:
                async with http.post(url, data=body.encode(), headers=headers) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                phase.failures += 1
                return
            phase.latencies[kind].append(time.perf_counter() - started)
            phase.statuses[status] = phase.statuses.get(status, 0) + 1

        tasks = []
        t0 = loop.time()
        for i, (kind, what) in enumerate(plan):
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - loop.time()))  # open loop: the schedule, not the answers
            phase.max_send_lag_s = max(phase.max_send_lag_s, loop.time() - due)
            tasks.append(asyncio.create_task(send(i, kind, what)))
        await asyncio.gather(*tasks)
        phase.wall_s = loop.time() - t0
    return phase


async def warm_up(url: str, fake: Any) -> None:
    """First requests pay for connections, bolt's auth.test and profile lookups: not what is measured."""
    await run_load(url, fake, [("command", "help"), ("event", "warm-up")] * 5, rate=20)


def summarize(phase: Phase) -> dict[str, Any]:
    everything = phase.latencies["command"] + phase.latencies["event"]
    return {"all": percentiles(everything), "command": percentiles(phase.latencies["command"]),
            "event": percentiles(phase.latencies["event"]),
            "statuses": {str(k): v for k, v in sorted(phase.statuses.items())}, "failed_requests": phase.failures,
            "over_slack_3s_budget": sum(1 for s in everything if s > SLACK_ACK_BUDGET_S),
            "max_send_lag_ms": round(phase.max_send_lag_s * 1000, 1), "wall_s": round(phase.wall_s, 2)}


def ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    return round(a["all"][key] / b["all"][key], 2) if b["all"].get(key) else None


async def count_sessions(url: str) -> int:
    from sqlalchemy import text

    from storage.db import Database

    db = Database.connect(url)
    try:
        async with db.admin.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM ai_sessions"))).scalar_one()
    finally:
        await db.dispose()


async def main(rate: int, seconds: float, new_every: int, log_level: str) -> dict[str, Any]:
    from tests.fakes.anthropic import FakeAnthropic
    from tests.fakes.slack import FakeSlack

    fake = await FakeSlack().start()
    for n, channel in enumerate(CHANNELS):
        fake.add_channel(channel, f"msp-support-{n}")
    for n, user in enumerate(USERS):
        fake.add_user(user, name=user.lower(), real_name=f"Engineer {n}", email=f"eng{n}@example.com")
    ai = await FakeAnthropic(api_key=AI_KEY).start()
    ai.responder = model_reply
    slack_env = dict(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN=fake.token, SLACK_API_URL=fake.api_url)
    plan = request_plan(rate, seconds, new_every)
    logs = Path(tempfile.mkdtemp(prefix="flowpilot-bench-ack-"))
    try:
        async with fresh_database("ack") as url:
            fp_port, floor_port = free_port(), free_port()
            fp_env = base_env(DATABASE_URL=url, HOST="127.0.0.1", PORT=str(fp_port), LOG_LEVEL=log_level,
                              FLOWPILOT_LOG_FORMAT="json", ANTHROPIC_API_KEY=AI_KEY, ANTHROPIC_BASE_URL=ai.url,
                              **slack_env)
            floor_env = base_env(**slack_env)
            fp_url, floor_url = f"http://127.0.0.1:{fp_port}", f"http://127.0.0.1:{floor_port}"
            flowpilot = str(Path(sys.executable).parent / "flowpilot")
            async with served("floor", [sys.executable, "-m", "bench.ack", "--serve-floor", "--port", str(floor_port)],
                              floor_env, f"{floor_url}/healthz", logs), \
                    served("flowpilot", [flowpilot, "serve"], fp_env, f"{fp_url}/readyz", logs):
                await warm_up(f"{floor_url}/slack/events", fake)
                floor = summarize(await run_load(f"{floor_url}/slack/events", fake, plan, rate))
                await warm_up(f"{fp_url}/slack/events", fake)
                ours = summarize(await run_load(f"{fp_url}/slack/events", fake, plan, rate))
                ai_calls = len([r for r in ai.requests if r.status == 200])
            sessions = await count_sessions(url)
    finally:
        await ai.stop()
        await fake.stop()
    return emit("ack", {
        "rate_per_s": rate, "seconds": seconds, "requests_per_phase": len(plan),
        "mix": {"new_commands": sum(1 for k, w in plan if w.startswith("new ")),
                "help_commands": sum(1 for k, w in plan if w == "help"),
                "thread_reply_events": sum(1 for k, _ in plan if k == "event")},
        "flowpilot": ours, "floor_bare_bolt": floor,
        "ratio_p50": ratio(ours, floor, "p50_ms"), "ratio_p90": ratio(ours, floor, "p90_ms"),
        "ratio_p99": ratio(ours, floor, "p99_ms"),
        "background": {"sessions_started": sessions, "model_calls": ai_calls},
        "cpus": os.cpu_count(),
    })


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=50, help="requests per second")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    p.add_argument("--new-every", type=int, default=25, help="every Nth request is `new` (starts a session); 0: none")
    p.add_argument("--log-level", default="INFO", help="the FlowPilot server's LOG_LEVEL")
    p.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve_floor:
        asyncio.run(serve_floor(a.port))
    else:
        asyncio.run(main(a.rate, a.seconds, a.new_every, a.log_level))
