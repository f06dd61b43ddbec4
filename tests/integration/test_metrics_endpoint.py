"""`GET /metrics` after real traffic: signed Slack requests through the real aiohttp app (bolt inside,
real workers and Postgres, FakeSlack and FakeAnthropic), read back the way Prometheus scrapes it."""
from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.slack_signing import JSON_CONTENT_TYPE
from tests.integration.slack_fixtures import has_button, slack_bot

REPLY = """Let's narrow it down.
[QUESTIONS]
[{"text": "Does it happen for every user?"}]
[/QUESTIONS]"""

Samples = dict[tuple[str, frozenset], float]


async def scrape(bot) -> Samples:
    resp = await bot.http.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    families = text_string_to_metric_families(await resp.text())
    return {(s.name, frozenset(s.labels.items())): s.value for family in families for s in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (sample, got), value in samples.items() if sample == name and wanted <= got)


@pytest.fixture
async def bot(db, database_url):
    async with slack_bot(database_url) as bot:
        yield bot


async def test_metrics_show_slack_ack_latency_and_model_tokens_after_a_session_starts(bot):
    # The registry is per process: compare with what earlier tests already counted.
    before = await scrape(bot)
    bot.ai.reply_text(REPLY)

    resp = await bot.command("new Printer queue stuck #48291")
    assert resp.status == 200
    header = (await bot.fake.wait_for(lambda: bot.roots()))[0]
    await bot.fake.wait_for(lambda: any(has_button(m, "answer") for m in bot.thread(header["ts"])), timeout=20)
    resp = await bot.reply_in_thread(header["ts"], "Only on the second floor")
    assert resp.status == 200
    after = await scrape(bot)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    # Exactly one ack observation per request: the command, then the thread reply (an Events API message).
    assert grew("flowpilot_ack_seconds_count", platform="slack", kind="command") == 1
    assert grew("flowpilot_ack_seconds_count", platform="slack", kind="event:message") == 1
    assert grew("flowpilot_ack_seconds_count", platform="slack") == 2
    assert grew("flowpilot_ack_seconds_sum", platform="slack", kind="command") > 0
    # The ack came well inside Slack's 3 seconds (its histogram bucket says so).
    assert grew("flowpilot_ack_seconds_bucket", platform="slack", kind="command", le="3.0") == 1
    assert grew("flowpilot_inbound_total", platform="slack", kind="command", result="200") == 1
    # The session's first AI turn was billed and counted.
    assert grew("flowpilot_model_calls_total", task="chat") >= 1
    assert grew("flowpilot_model_tokens_total", task="chat", kind="input") > 0
    assert grew("flowpilot_model_tokens_total", task="chat", kind="output") > 0


async def test_a_forged_slack_request_is_counted_without_trusting_its_body(bot):
    before = await scrape(bot)
    body = '{"type": "event_callback", "event": {"type": "made_up_event_%s"}}'

    for n in range(3):
        resp = await bot.post_signed(body % n, JSON_CONTENT_TYPE, secret="not-the-signing-secret")
        assert resp.status == 401
    after = await scrape(bot)

    grew = (total(after, "flowpilot_ack_seconds_count", platform="slack", kind="unauthenticated")
            - total(before, "flowpilot_ack_seconds_count", platform="slack", kind="unauthenticated"))
    assert grew == 3
    assert not any("made_up_event" in str(labels) for _, labels in after)
