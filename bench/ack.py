"""Slack ack latency at a fixed request rate: signed slash commands and Events API callbacks sent
open-loop (at their scheduled times, whatever the answers) to a running `flowpilot serve` process, and
in the same run the same load against a bare bolt AsyncApp that only acknowledges (the floor), served
the same way (bolt behind aiohttp in the same bolt mode, its own process, this machine); reported with
their ratio. FlowPilot records every request (one database transaction) before it answers, so the
ratio is the price of "nothing acknowledged is lost"; the floor records nothing.

FlowPilot's server has a fresh database, FakeSlack (started here) as its Web API and FakeAnthropic
(started here) as its model, so the sessions the load starts run their AI turns and post their cards in
the background while acks are measured. The two servers take turns in short rounds (floor, FlowPilot,
floor, ...), so both see the same background load of the machine.

    python -m bench.ack [--rate 50] [--seconds 10] [--new-every 25] [--rounds 5]
    python -m bench.ack --serve-floor --port PORT   (the floor server; started by the benchmark itself)
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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
QUESTION = "Does it happen for every user?"
REPLY = (f"Let's narrow it down.\n[QUESTIONS]\n[{{\"text\": \"{QUESTION}\"}}]\n[/QUESTIONS]\n"
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
    """A bolt AsyncApp whose listeners only ack, behind the same aiohttp route wrapper as FlowPilot's and
    in the same bolt mode (`process_before_response`: the response goes out when the listener returns,
    with no polling for the ack)."""
    from aiohttp import web
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.mount import events_handler

    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    bolt = AsyncApp(signing_secret=os.environ["SLACK_SIGNING_SECRET"], client=client, name="floor",
                    process_before_response=True)

    async def just_ack(ack: Any) -> None:
        await ack()

    bolt.command("/flowpilot")(just_ack)
    bolt.event("message")(just_ack)
    bolt.event("app_mention")(just_ack)

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/slack/events", events_handler(bolt, None))
    app.router.add_get("/healthz", healthz)
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


def base_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")}
    return {**keep, **extra}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


# --------------------------------------------------------------------------- load


@dataclass
class Phase:
    """Everything measured against one server, over all of its rounds."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"command": [], "event": []})
    statuses: dict[int, int] = field(default_factory=dict)
    failures: int = 0
    max_send_lag_s: float = 0.0
    wall_s: float = 0.0
    server_cpu_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        everything = self.latencies["command"] + self.latencies["event"]
        return {"all": percentiles(everything), "command": percentiles(self.latencies["command"]),
                "event": percentiles(self.latencies["event"]),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "failed_requests": self.failures,
                "over_slack_3s_budget": sum(1 for s in everything if s > SLACK_ACK_BUDGET_S),
                "max_send_lag_ms": round(self.max_send_lag_s * 1000, 1), "wall_s": round(self.wall_s, 2),
                "server_cpu_ms_per_request": round(self.server_cpu_s * 1000 / max(1, len(everything)), 2)}


def request_plan(rate: int, seconds: float, new_every: int) -> list[tuple[str, str]]:
    """(kind, text) per request: every `new_every`th is `new` (starts a session with an AI turn); the rest
    alternate `help` commands and thread replies in threads that are not sessions (looked up, ignored)."""
    plan = []
    for i in range(int(rate * seconds)):
        if new_every and i % new_every == 0:
            plan.append(("command", f"new Printer queue stuck on floor {i} #{48000 + i}"))
        elif i % 2 == 0:
            plan.append(("command", "help"))
        else:
            plan.append(("event", f"still failing after restart {i}"))
    return plan


def build_request(fake: Any, kind: str, text: str, i: int) -> tuple[str, str]:
    from tests.fakes.slack_signing import (
        FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, event_body, message_event, new_message_ts, slash_command_body,
    )

    channel, user = CHANNELS[i % len(CHANNELS)], USERS[i % len(USERS)]
    if kind == "command":
        body = slash_command_body(text=text, channel_id=channel, user_id=user, user_name=user.lower(),
                                  response_url=fake.new_response_url(channel=channel, user=user))
        return body, FORM_CONTENT_TYPE
    event = message_event(text=text, channel=channel, user=user, thread_ts=new_message_ts())
    return event_body(event), JSON_CONTENT_TYPE


async def run_load(http: aiohttp.ClientSession, url: str, fake: Any, plan: list[tuple[int, str, str]], rate: int,
                   phase: Phase) -> None:
    """Send `plan` ((index, kind, text)) at `rate` per second, open loop, recording into `phase`."""
    from tests.fakes.slack_signing import signed_headers

    async def send(i: int, kind: str, text: str) -> None:
        body, content_type = build_request(fake, kind, text, i)
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

    loop = asyncio.get_running_loop()
    tasks = []
    t0 = loop.time()
    for n, (i, kind, text) in enumerate(plan):
        due = t0 + n / rate
        await asyncio.sleep(max(0.0, due - loop.time()))  # open loop: the schedule, not the answers
        phase.max_send_lag_s = max(phase.max_send_lag_s, loop.time() - due)
        tasks.append(asyncio.create_task(send(i, kind, text)))
    await asyncio.gather(*tasks)
    phase.wall_s += loop.time() - t0


async def warm_up(http: aiohttp.ClientSession, url: str, fake: Any, *, with_session: bool) -> None:
    """First requests pay for connections, bolt's auth.test, profile lookups and (FlowPilot) the first AI
    turn's one-off costs: none of that is what is measured."""
    plan = [(n, "command" if n % 2 == 0 else "event", "help" if n % 2 == 0 else "warm-up") for n in range(20)]
    if with_session:
        plan[0] = (0, "command", "new Warm-up session #1")
    await run_load(http, url, fake, plan, 20, Phase())
    if with_session:  # the warm-up session's lane card is posted once its AI turn is done
        await fake.wait_for(lambda: any(QUESTION in json.dumps(m.get("blocks") or []) for m in fake.messages()),
                            timeout=60)


async def server_side_ack(http: aiohttp.ClientSession, metrics_url: str) -> dict[str, Any]:
    """FlowPilot's own flowpilot_ack_seconds (middleware entry to response), mean per kind."""
    from prometheus_client.parser import text_string_to_metric_families

    async with http.get(metrics_url) as resp:
        text = await resp.text()
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("platform") == "slack" and sample.name == "flowpilot_ack_seconds_sum":
                sums[sample.labels["kind"]] = sample.value
            elif sample.labels.get("platform") == "slack" and sample.name == "flowpilot_ack_seconds_count":
                counts[sample.labels["kind"]] = sample.value
    return {kind: {"mean_ms": round(sums[kind] / counts[kind] * 1000, 3), "n": int(counts[kind])}
            for kind in sorted(counts) if counts[kind]}


async def count_sessions(url: str) -> int:
    from sqlalchemy import text

    from storage.db import Database

    db = Database.connect(url)
    try:
        async with db.admin.connect() as conn:
            return (await conn.execute(text("SELECT count(*) FROM ai_sessions"))).scalar_one()
    finally:
        await db.dispose()


def ratio(ours: dict[str, Any], floor: dict[str, Any], key: str) -> float | None:
    return round(ours["all"][key] / floor["all"][key], 2) if floor["all"].get(key) else None


async def main(rate: int, seconds: float, new_every: int, rounds: int, log_level: str) -> dict[str, Any]:
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
    plan = [(i, kind, text) for i, (kind, text) in enumerate(request_plan(rate, seconds, new_every))]
    chunk = -(-len(plan) // rounds)
    floor, ours = Phase(), Phase()
    logs = Path(tempfile.mkdtemp(prefix="flowpilot-bench-ack-"))
    load_before = os.getloadavg()[0]
    try:
        async with fresh_database("ack") as url:
            fp_port, floor_port = free_port(), free_port()
            fp_env = base_env(DATABASE_URL=url, HOST="127.0.0.1", PORT=str(fp_port), LOG_LEVEL=log_level,
                              FLOWPILOT_LOG_FORMAT="json", ANTHROPIC_API_KEY=AI_KEY, ANTHROPIC_BASE_URL=ai.url,
                              **slack_env)
            fp_url, floor_url = f"http://127.0.0.1:{fp_port}", f"http://127.0.0.1:{floor_port}"
            flowpilot = str(Path(sys.executable).parent / "flowpilot")
            connector = aiohttp.TCPConnector(limit=0)
            async with served("floor", [sys.executable, "-m", "bench.ack", "--serve-floor", "--port", str(floor_port)],
                              base_env(**slack_env), f"{floor_url}/healthz", logs) as floor_proc, \
                    served("flowpilot", [flowpilot, "serve"], fp_env, f"{fp_url}/readyz", logs) as fp_proc, \
                    aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
                await warm_up(http, f"{floor_url}/slack/events", fake, with_session=False)
                await warm_up(http, f"{fp_url}/slack/events", fake, with_session=True)
                for start in range(0, len(plan), chunk):  # the same slice of the plan to each, in turn
                    for proc, url_, phase in ((floor_proc, floor_url, floor), (fp_proc, fp_url, ours)):
                        cpu_before = cpu_seconds(proc.pid)
                        await run_load(http, f"{url_}/slack/events", fake, plan[start:start + chunk], rate, phase)
                        phase.server_cpu_s += cpu_seconds(proc.pid) - cpu_before
                server_side = await server_side_ack(http, f"{fp_url}/metrics")
                model_calls = len([r for r in ai.requests if r.status == 200])
            sessions = await count_sessions(url)
    finally:
        await ai.stop()
        await fake.stop()
    ours_summary, floor_summary = ours.summary(), floor.summary()
    ours_summary["server_side_ack_mean_incl_warm_up"] = server_side
    return emit("ack", {
        "rate_per_s": rate, "seconds_per_server": seconds, "rounds": rounds, "requests_per_server": len(plan),
        "mix": {"new_commands": sum(1 for _, _, t in plan if t.startswith("new ")),
                "help_commands": sum(1 for _, _, t in plan if t == "help"),
                "thread_reply_events": sum(1 for _, k, _ in plan if k == "event")},
        "flowpilot": ours_summary, "floor_bare_bolt": floor_summary,
        "ratio_p50": ratio(ours_summary, floor_summary, "p50_ms"),
        "ratio_p90": ratio(ours_summary, floor_summary, "p90_ms"),
        "ratio_p99": ratio(ours_summary, floor_summary, "p99_ms"),
        "background": {"sessions_started": sessions, "model_calls": model_calls},
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_before": round(load_before, 2),
                    "loadavg_1m_after": round(os.getloadavg()[0], 2)},
    })


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=50, help="requests per second")
    p.add_argument("--seconds", type=float, default=10.0, help="load time per server")
    p.add_argument("--new-every", type=int, default=25, help="every Nth request is `new` (starts a session); 0: none")
    p.add_argument("--rounds", type=int, default=5, help="alternations between the floor and FlowPilot")
    p.add_argument("--log-level", default="INFO", help="the FlowPilot server's LOG_LEVEL")
    p.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.serve_floor:
        asyncio.run(serve_floor(a.port))
    else:
        asyncio.run(main(a.rate, a.seconds, a.new_every, max(1, a.rounds), a.log_level))
