"""Logs never carry secrets, in either format, and lines logged inside a job name that job.

Operators ship these logs to third-party log stores; a Slack bot token, a Bot Framework bearer token or
an Anthropic key in a log line is a leaked credential."""
from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from bot import logs

SLACK_BOT_TOKEN = "xoxb-1111111111-2222222222-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_REFRESH_TOKEN = "xoxe-1-My0xLTEyMzQ1Njc4OTAtYWJjZGVm"
SLACK_APP_TOKEN = "xapp-1-A0FPAPP01-3333333333-0123456789abcdef"
TEAMS_JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJhdWQiOiJmbG93cGlsb3QiLCJpc3MiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz"
ANTHROPIC_KEY = "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed-AAAA"
DB_PASSWORD = "hunter2-db-pass"
CW_PRIVATE_KEY = "cw-private-9f8e7d6c"
SECRETS = (SLACK_BOT_TOKEN, SLACK_REFRESH_TOKEN, SLACK_APP_TOKEN, TEAMS_JWT, ANTHROPIC_KEY, DB_PASSWORD,
           CW_PRIVATE_KEY, "c2lnbmF0dXJlLWJ5dGVz", "Zx9Yw8Vu7Ts6")


def capture(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    """A logger of its own writing through the production formatter (the root logger is left alone)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if fmt == "json" else logs.TextFormatter())
    logger = logging.getLogger(f"flowpilot.test.redaction.{fmt}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream


def log_everything_secret(logger: logging.Logger) -> None:
    try:
        raise RuntimeError(f"Slack said invalid_auth for {SLACK_BOT_TOKEN}")
    except RuntimeError:
        logger.exception(
            "calling chat.postMessage with %s (refresh %s)", SLACK_BOT_TOKEN, SLACK_REFRESH_TOKEN,
            extra={
                "headers": {"Authorization": f"Bearer {TEAMS_JWT}", "Content-Type": "application/json",
                            "x-api-key": ANTHROPIC_KEY},
                "api_key": ANTHROPIC_KEY,
                "error": f"401 from connector: Authorization: Bearer {TEAMS_JWT}; key {ANTHROPIC_KEY}",
                "jwt_seen": TEAMS_JWT,
                "url": f"postgresql://flowpilot:{DB_PASSWORD}@db.internal:5432/flowpilot",
                "app_token": SLACK_APP_TOKEN,
                "cw_private_key": CW_PRIVATE_KEY,
                "channel": "C0FPCHAN1",
            },
        )


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_tokens_bearer_headers_and_api_keys_are_redacted(fmt):
    logger, stream = capture(fmt)

    log_everything_secret(logger)

    out = stream.getvalue()
    leaked = [secret for secret in SECRETS if secret in out]
    assert not leaked, f"secrets in the {fmt} log line: {leaked}\n{out}"
    assert out.count("[REDACTED]") >= 8
    # What helps debugging stays: the method, the channel, the header names, where the database is.
    for kept in ("chat.postMessage", "C0FPCHAN1", "Content-Type", "application/json",
                 "postgresql://flowpilot:[REDACTED]@db.internal:5432/flowpilot", "invalid_auth"):
        assert kept in out, kept


def test_json_lines_are_json_with_the_redacted_fields_in_place():
    logger, stream = capture("json")

    log_everything_secret(logger)

    line = json.loads(stream.getvalue())
    assert line["level"] == "error" and line["logger"] == "flowpilot.test.redaction.json"
    assert line["msg"] == "calling chat.postMessage with [REDACTED] (refresh [REDACTED])"
    assert line["headers"] == {"Authorization": "[REDACTED]", "Content-Type": "application/json",
                               "x-api-key": "[REDACTED]"}
    assert line["api_key"] == line["app_token"] == line["cw_private_key"] == line["jwt_seen"] == "[REDACTED]"
    assert "RuntimeError: Slack said invalid_auth for [REDACTED]" in line["exc"]


def test_text_format_redacts_secret_fields_by_name_too():
    # A secret with no recognisable shape is only caught by its field name.
    logger, stream = capture("text")

    logger.warning("psa connect", extra={"private_key": "plain", "client_secret": "opaque", "company": "contoso"})

    out = stream.getvalue()
    assert "plain" not in out and "opaque" not in out
    assert "private_key=[REDACTED]" in out and "company=contoso" in out


def test_lines_logged_inside_a_job_context_carry_its_ids():
    logger, stream = capture("json")

    with logs.context(job_id=41, job_kind="turn", session_id="5b0e-session", handoff_id=None):
        logger.info("model call failed")
        logger.info("explicit wins", extra={"job_id": 7})
    logger.info("outside")

    inside, explicit, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (inside["job_id"], inside["job_kind"], inside["session_id"]) == (41, "turn", "5b0e-session")
    assert "handoff_id" not in inside
    assert explicit["job_id"] == 7 and explicit["session_id"] == "5b0e-session"
    assert not {"job_id", "job_kind", "session_id"} & set(outside)


async def test_job_contexts_of_concurrent_tasks_do_not_mix():
    logger, stream = capture("json")
    both_inside = asyncio.Barrier(2)

    async def job(job_id: int) -> None:
        with logs.context(job_id=job_id, session_id=f"session-{job_id}"):
            await both_inside.wait()  # both contexts are open at the same time
            logger.info("working")

    await asyncio.gather(job(1), job(2))

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted((line["job_id"], line["session_id"]) for line in lines) == [(1, "session-1"), (2, "session-2")]
