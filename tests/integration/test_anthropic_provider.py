"""AnthropicLanguageModel with the real anthropic SDK talking HTTP to FakeAnthropic."""
from __future__ import annotations

import io
import json
import logging
import time
from typing import AsyncIterator

import httpx2
import pytest
from PIL import Image
from pydantic import BaseModel

from adapters.anthropic import AnthropicLanguageModel, prepare_images
from core.errors import ModelNotConfigured, Retryable, UpstreamFailure
from core.ports import ChatMessage, ChatRequest, GenerateRequest, Usage
from tests.fakes.anthropic import FakeAnthropic, TextReply

API_KEY = "sk-test-not-a-real-key-1234"
MODELS = {
    "chat": "claude-sonnet-4-6",
    "fact_synthesis": "claude-haiku-4-5-20251001",
    "resolution_note": "claude-sonnet-4-6",
    "escalation_package": "claude-sonnet-4-6",
    "escalation_summary": "claude-sonnet-4-6",
    "status_update": "claude-sonnet-4-6",
    "audience_variant": "claude-haiku-4-5-20251001",
}
BASE_PROMPT = "You are FlowPilot, a troubleshooting copilot for <role>. " * 60
FORMAT_RULES = "Answer in short steps and use markers as <marker>. " * 20


class ListRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Usage]] = []

    def record(self, task: str, model: str, usage: Usage) -> None:
        self.calls.append((task, model, usage))


class ResolutionNote(BaseModel):
    summary: str
    steps: list[str]
    root_cause: str | None


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def recorder() -> ListRecorder:
    return ListRecorder()


@pytest.fixture
async def model(fake: FakeAnthropic, recorder: ListRecorder) -> AsyncIterator[AnthropicLanguageModel]:
    provider = AnthropicLanguageModel(api_key=API_KEY, base_url=fake.url, models=MODELS, timeout_s=5.0,
                                      recorder=recorder)
    yield provider
    await provider.aclose()


def png_bytes(width: int, height: int, color: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def chat_request(history: tuple[ChatMessage, ...] = (), user_text: str = "The VPN drops every hour.",
                 **kwargs: object) -> ChatRequest:
    return ChatRequest(task="chat", system=(BASE_PROMPT, FORMAT_RULES), history=history, user_text=user_text,
                       **kwargs)  # type: ignore[arg-type]


def breakpoints(body: dict) -> list[str]:
    """Where the request puts cache_control, as readable paths."""
    found = [f"system[{i}]" for i, block in enumerate(body.get("system", [])) if "cache_control" in block]
    for m, message in enumerate(body["messages"]):
        content = message["content"] if isinstance(message["content"], list) else []
        found += [f"messages[{m}][{b}]" for b, block in enumerate(content) if "cache_control" in block]
    return found


# ---------------------------------------------------------------------- chat
async def test_chat_turn_sends_cached_system_history_breakpoint_and_images_before_text(
        fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    fake.reply_text("Check the DHCP lease time first.")
    images = tuple(prepare_images([(png_bytes(2000, 1000), "image/png"), (png_bytes(300, 200), "image/png")]))
    history = (ChatMessage("user", "Client cannot reach the file share."),
               ChatMessage("assistant", "Is the VPN connected when it fails?"))

    reply = await model.chat(chat_request(history=history, images=images))

    assert reply.text == "Check the DHCP lease time first."
    assert reply.model == "claude-sonnet-4-6"
    body = fake.requests[0].body
    assert body["model"] == "claude-sonnet-4-6"
    assert body["system"] == [
        {"type": "text", "text": BASE_PROMPT},
        {"type": "text", "text": FORMAT_RULES, "cache_control": {"type": "ephemeral"}},
    ]
    assert breakpoints(body) == ["system[1]", "messages[1][0]"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"][0]["text"] == "Is the VPN connected when it fails?"
    new_turn = body["messages"][-1]["content"]
    assert [block["type"] for block in new_turn] == ["image", "image", "text"]
    assert new_turn[0]["source"]["media_type"] == "image/jpeg"
    assert new_turn[-1] == {"type": "text", "text": "The VPN drops every hour."}


async def test_first_turn_without_history_caches_only_the_system_prompt(
        fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    await model.chat(chat_request())

    body = fake.requests[0].body
    assert breakpoints(body) == ["system[1]"]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "The VPN drops every hour."}]}]


async def test_second_turn_reuses_byte_identical_system_and_reads_the_cache(
        fake: FakeAnthropic, model: AnthropicLanguageModel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="adapters.anthropic")
    fake.reply_text("Which VPN client version is installed?")
    fake.reply_text("Update the client to the latest version.")

    first = await model.chat(chat_request(user_text="The VPN drops every hour."))
    history = (ChatMessage("user", "The VPN drops every hour."), ChatMessage("assistant", first.text))
    second = await model.chat(chat_request(history=history, user_text="Version 5.1 on all laptops."))

    turn1, turn2 = (json.dumps(r.body["system"], sort_keys=False).encode() for r in fake.requests)
    assert turn1 == turn2
    assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens > 0
    assert second.usage.cache_read_input_tokens >= first.usage.cache_creation_input_tokens
    cache_events = [r for r in caplog.records if getattr(r, "event", None) == "anthropic.cache"]
    assert len(cache_events) == 2
    assert cache_events[1].cache_read_input_tokens == second.usage.cache_read_input_tokens
    assert {"model", "cache_read_input_tokens", "cache_creation_input_tokens", "input_tokens",
            "output_tokens"} <= vars(cache_events[1]).keys()


async def test_a_changed_system_prompt_misses_the_cache(fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    await model.chat(chat_request())
    changed = ChatRequest(task="chat", system=(BASE_PROMPT, FORMAT_RULES + " Now: 12:01."), history=(),
                          user_text="The VPN drops every hour.")

    second = await model.chat(changed)

    assert second.usage.cache_read_input_tokens == 0
    assert second.usage.cache_creation_input_tokens > 0


async def test_usage_is_recorded_per_task(fake: FakeAnthropic, model: AnthropicLanguageModel,
                                          recorder: ListRecorder) -> None:
    chat = await model.chat(chat_request())
    note = await model.generate(GenerateRequest(task="fact_synthesis", system="Summarise as a fact.",
                                                user_text="The printer queue was stuck.", max_tokens=200))

    assert [(task, model_id) for task, model_id, _ in recorder.calls] == [
        ("chat", "claude-sonnet-4-6"), ("fact_synthesis", "claude-haiku-4-5-20251001")]
    assert recorder.calls[0][2] == chat.usage
    assert recorder.calls[1][2] == note.usage
    assert note.usage.output_tokens > 0


# ---------------------------------------------------------------------- generate
async def test_structured_generate_returns_a_validated_pydantic_model(
        fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    fake.reply_json({"summary": "Stale DNS cache", "steps": ["Flush DNS", "Renew lease"], "root_cause": None})

    reply = await model.generate(GenerateRequest(task="resolution_note", system="Write a resolution note.",
                                                 user_text="<bundle>", max_tokens=1200, schema=ResolutionNote))

    assert isinstance(reply.data, ResolutionNote)
    assert reply.data.steps == ["Flush DNS", "Renew lease"]
    body = fake.requests[0].body
    assert body["system"] == [{"type": "text", "text": "Write a resolution note.",
                               "cache_control": {"type": "ephemeral"}}]
    assert body["output_config"]["format"]["type"] == "json_schema"
    assert body["output_config"]["format"]["schema"]["additionalProperties"] is False
    assert body["max_tokens"] == 1200


async def test_structured_answer_that_does_not_fit_the_schema_is_an_upstream_failure(
        fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    fake.reply_text('{"summary": "cut off', stop_reason="max_tokens")

    with pytest.raises(UpstreamFailure, match="did not match the expected structure"):
        await model.generate(GenerateRequest(task="resolution_note", system="s", user_text="<bundle>",
                                             schema=ResolutionNote))


async def test_plain_generate_returns_text(fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    fake.reply_text("Ticket update: the fix is verified.")

    reply = await model.generate(GenerateRequest(task="status_update", system="Write an update.", user_text="x"))

    assert reply.text == "Ticket update: the fix is verified." and reply.data is None


# ---------------------------------------------------------------------- failures
async def test_overloaded_is_retryable_and_the_sdk_does_not_retry_by_itself(
        fake: FakeAnthropic, model: AnthropicLanguageModel, recorder: ListRecorder) -> None:
    fake.fail(529)
    fake.reply_text("would be the SDK's own retry")

    with pytest.raises(Retryable, match="overloaded") as caught:
        await model.chat(chat_request())

    assert len(fake.requests) == 1 and fake.pending == 1
    assert caught.value.retry_after is None
    assert recorder.calls == []


async def test_rate_limit_carries_the_retry_after_hint(fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    fake.fail(429, retry_after=7)

    with pytest.raises(Retryable) as caught:
        await model.generate(GenerateRequest(task="escalation_summary", system="s", user_text="u"))

    assert caught.value.retry_after == 7


async def test_a_huge_retry_after_is_capped_at_a_minute(fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    fake.fail(429, retry_after=86400)

    with pytest.raises(Retryable) as caught:
        await model.chat(chat_request())

    assert caught.value.retry_after == 60


async def test_slow_answer_beyond_the_timeout_is_retryable(fake: FakeAnthropic, recorder: ListRecorder) -> None:
    provider = AnthropicLanguageModel(api_key=API_KEY, base_url=fake.url, models=MODELS, timeout_s=0.3,
                                      recorder=recorder)
    fake.delay(30)
    fake.reply_text("too late")
    started = time.monotonic()
    try:
        with pytest.raises(Retryable, match="did not answer within|timed out"):
            await provider.chat(chat_request())
    finally:
        await provider.aclose()

    assert time.monotonic() - started < 5
    assert recorder.calls == []


async def test_generate_honours_its_own_timeout(fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    fake.delay(30)

    with pytest.raises(Retryable):
        await model.generate(GenerateRequest(task="fact_synthesis", system="s", user_text="u", timeout_s=0.3))


async def test_bad_request_is_an_upstream_failure_with_status_and_api_message(
        fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    fake.fail(400, message="messages.0.content: prompt is too long")

    with pytest.raises(UpstreamFailure) as caught:
        await model.chat(chat_request())

    assert not isinstance(caught.value, Retryable)
    assert "400" in str(caught.value) and "prompt is too long" in str(caught.value)


async def test_wrong_api_key_is_an_upstream_failure_naming_the_setting(fake: FakeAnthropic) -> None:
    provider = AnthropicLanguageModel(api_key="sk-wrong", base_url=fake.url, models=MODELS, timeout_s=5)
    try:
        with pytest.raises(UpstreamFailure, match="401.*ANTHROPIC_API_KEY"):
            await provider.chat(chat_request())
    finally:
        await provider.aclose()


async def test_outage_and_unreachable_api_are_retryable(fake: FakeAnthropic, model: AnthropicLanguageModel) -> None:
    fake.down()
    with pytest.raises(Retryable, match="503"):
        await model.chat(chat_request())
    fake.up()
    assert (await model.chat(chat_request())).text == "Fake reply."

    closed = FakeAnthropic()
    await closed.start()
    dead_url = closed.url
    await closed.stop()
    provider = AnthropicLanguageModel(api_key=API_KEY, base_url=dead_url, models=MODELS, timeout_s=5)
    try:
        with pytest.raises(Retryable, match="could not be reached"):
            await provider.chat(chat_request())
    finally:
        await provider.aclose()


async def test_without_api_key_calls_fail_clearly_and_nothing_is_sent(fake: FakeAnthropic) -> None:
    provider = AnthropicLanguageModel(api_key=None, base_url=fake.url, models=MODELS, timeout_s=5)

    assert provider.configured is False
    with pytest.raises(ModelNotConfigured, match="ANTHROPIC_API_KEY"):
        await provider.chat(chat_request())
    with pytest.raises(ModelNotConfigured, match="ANTHROPIC_API_KEY"):
        await provider.generate(GenerateRequest(task="resolution_note", system="s", user_text="u"))
    assert fake.requests == []
    await provider.aclose()


async def test_the_api_key_never_reaches_the_logs(fake: FakeAnthropic, model: AnthropicLanguageModel,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail(400, message="bad")
    with pytest.raises(UpstreamFailure):
        await model.chat(chat_request())
    await model.chat(chat_request())

    assert any(getattr(r, "event", None) == "anthropic.call" for r in caplog.records)
    assert API_KEY not in caplog.text


# ---------------------------------------------------------------------- the fake itself
async def test_fake_rejects_a_request_without_an_api_key_with_the_api_error_shape(fake: FakeAnthropic) -> None:
    async with httpx2.AsyncClient() as client:
        body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        response = await client.post(f"{fake.url}/v1/messages", headers={"anthropic-version": "2023-06-01"},
                                     json=body)

    assert response.status_code == 401
    assert response.headers["request-id"].startswith("req_")
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "authentication_error"


async def test_fake_responder_scripts_long_runs_and_forces_tool_use(fake: FakeAnthropic) -> None:
    import anthropic

    fake.responder = lambda body: TextReply(f"echo {len(body['messages'])}")
    client = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=fake.url, max_retries=0)
    try:
        answers = [await client.messages.create(model="m", max_tokens=20,
                                                messages=[{"role": "user", "content": f"turn {i}"}])
                   for i in range(3)]
        fake.reply_json({"city": "Oslo"})
        forced = await client.messages.create(
            model="m", max_tokens=20, messages=[{"role": "user", "content": "where?"}],
            tools=[{"name": "emit", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            tool_choice={"type": "tool", "name": "emit"})
    finally:
        await client.close()

    assert [a.content[0].text for a in answers] == ["echo 1"] * 3
    assert forced.stop_reason == "tool_use"
    assert forced.content[0].type == "tool_use" and forced.content[0].input == {"city": "Oslo"}
