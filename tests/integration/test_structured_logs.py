"""The JSON log lines of real traffic say which request, job and session they belong to, so one Slack
click or one failing AI turn can be followed through the logs."""
from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from bot import logs
from core.turns import TURN_JOB
from tests.fakes.slack_signing import FORM_CONTENT_TYPE, signed_headers, slash_command_body
from tests.harness import console_inbound, running
from tests.harness import test_settings as make_settings
from tests.integration.slack_fixtures import SIGNING_SECRET, slack_bot


class JsonLines:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def json_logs():
    """The production JSON formatter on the root logger, at INFO, for the duration of one test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield JsonLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_lines_logged_while_handling_a_slack_request_carry_its_request_id(db, database_url, json_logs):
    async with slack_bot(database_url) as bot:
        body = slash_command_body(text="note the spooler restarts do not hold",
                                  response_url=bot.fake.new_response_url(channel=bot.channel))
        headers = {**signed_headers(body, SIGNING_SECRET, content_type=FORM_CONTENT_TYPE),
                   "X-Request-Id": "trace-7f3a"}
        resp = await bot.http.post("/slack/events", data=body.encode(), headers=headers)
        assert resp.status == 200 and resp.headers["X-Request-Id"] == "trace-7f3a"
        (_, _, reply), = await bot.copilot.wait_calls(1)
        assert reply.error is not None  # `note` outside a session thread is refused (and logged)

        anonymous = await bot.http.get("/healthz")
        generated = anonymous.headers["X-Request-Id"]

    traced = [line for line in json_logs.all() if line.get("request_id") == "trace-7f3a"]
    assert any(line["msg"] == "request refused" and line["logger"] == "core.copilot" for line in traced), traced
    assert len(generated) == 16 and generated != "trace-7f3a"


async def test_lines_logged_by_a_job_carry_the_job_and_session_ids(db, database_url, json_logs):
    # Without a key the AI turn ends in the explained "AI is off" path: a job that runs and logs.
    async with running(database_url, settings=make_settings(ANTHROPIC_API_KEY=None)) as h:
        started = await h.copilot.command(console_inbound(), "new Printer queue stuck")
        assert started.ok, started.error
        await h.console.wait_for(lambda: any("not configured" in t for t in h.console.texts()), timeout=20)

    turn_lines = [line for line in json_logs.all() if line.get("job_kind") == TURN_JOB]
    assert any(line["msg"] == "job done" for line in turn_lines), [line["msg"] for line in json_logs.all()]
    assert all(line["session_id"] == started.session_id and isinstance(line["job_id"], int) for line in turn_lines)
