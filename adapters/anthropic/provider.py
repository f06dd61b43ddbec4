"""LanguageModel over the anthropic SDK: prompt caching, structured output, error mapping, usage log."""
from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping

import anthropic
import httpx2
import pydantic
from anthropic.types import Message

from core.errors import InvalidInput, ModelNotConfigured, Retryable, UpstreamFailure
from core.ports import ChatReply, ChatRequest, GenerateReply, GenerateRequest, ImageInput, Usage, UsageRecorder

from .images import MAX_IMAGES

log = logging.getLogger(__name__)

TASKS = ("chat", "fact_synthesis", "resolution_note", "escalation_package", "escalation_summary",
         "status_update", "audience_variant")
RETRY_AFTER_CAP_S = 60.0
_EPHEMERAL = {"type": "ephemeral"}
_API_MESSAGE_MAX = 300


class AnthropicLanguageModel:
    """The one `LanguageModel` of the process, holding one long-lived `AsyncAnthropic`.

    Retries: the SDK client is built with `max_retries=0`. Its own retry loop honours `retry-after` with
    no practical cap (millions of seconds), so a single 429 could park a worker for as long as the API
    says. Transient failures instead surface at once as `core.errors.Retryable`, with the `retry-after`
    hint capped at 60 s, and the job layer retries with its own bounded backoff.

    Timeouts: every call runs under `asyncio.timeout(...)` (the SDK timeout only bounds single socket
    phases), so a call never outlives `timeout_s` (or `GenerateRequest.timeout_s`).

    Caching (DOMAIN §9.2): chat puts `cache_control` on the last system block (the whole static system
    prefix) and on the last history message; the new user message stays uncached. `generate` wraps its
    constant system prompt in one cached block.

    Structured output uses `messages.parse(output_format=Model)`, i.e. the API's native
    `output_config.format = json_schema` with constrained decoding, rather than a forced tool: the SDK
    builds the strict schema and validates the answer with the same pydantic model, no fake tool name
    leaks into the prompt, and the configured Sonnet 4.6 / Haiku 4.5 models support it.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        models: Mapping[str, str],
        timeout_s: float = 60.0,
        recorder: UsageRecorder | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._models = dict(models)
        self._timeout_s = timeout_s
        self._recorder = recorder
        self._client: anthropic.AsyncAnthropic | None = None
        if api_key:
            self._client = anthropic.AsyncAnthropic(
                api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0, http_client=http_client
            )

    @property
    def configured(self) -> bool:
        return self._client is not None

    async def aclose(self) -> None:
        """Close the SDK client and its connection pool (including an `http_client` passed in)."""
        if self._client is not None:
            await self._client.close()

    # ------------------------------------------------------------------ LanguageModel
    async def chat(self, request: ChatRequest) -> ChatReply:
        client, model = self._client_and_model(request.task)
        system = chat_system_blocks(request.system)
        messages = chat_messages(request)
        message = await self._call(
            request.task, model, self._timeout_s,
            lambda: client.messages.create(
                model=model, max_tokens=request.max_tokens, messages=messages,
                timeout=self._timeout_s, **({"system": system} if system else {}),
            ),
        )
        return ChatReply(text=_text_of(message), usage=_usage_of(message), model=message.model or model)

    async def generate(self, request: GenerateRequest) -> GenerateReply:
        client, model = self._client_and_model(request.task)
        if not request.user_text.strip():
            raise InvalidInput("A generation request needs non-empty user text.", field="user_text")
        timeout_s = request.timeout_s or self._timeout_s
        common: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": "user", "content": [{"type": "text", "text": request.user_text}]}],
            "timeout": timeout_s,
        }
        if request.system.strip():
            common["system"] = [{"type": "text", "text": request.system, "cache_control": dict(_EPHEMERAL)}]

        if request.schema is None:
            message = await self._call(request.task, model, timeout_s,
                                       lambda: client.messages.create(**common))
            return GenerateReply(text=_text_of(message), usage=_usage_of(message), model=message.model or model)

        schema = request.schema
        parsed = await self._call(request.task, model, timeout_s,
                                  lambda: client.messages.parse(**common, output_format=schema))
        data = parsed.parsed_output
        if data is None:
            raise UpstreamFailure(f"The model returned no {schema.__name__} (stop reason: {parsed.stop_reason}).")
        return GenerateReply(data=data, usage=_usage_of(parsed), model=parsed.model or model)

    # ------------------------------------------------------------------ plumbing
    def _client_and_model(self, task: str) -> tuple[anthropic.AsyncAnthropic, str]:
        if self._client is None:
            raise ModelNotConfigured(
                "AI features are off: no Anthropic API key is configured. Set ANTHROPIC_API_KEY to turn them on."
            )
        model = self._models.get(task)
        if not model:
            raise ModelNotConfigured(f"No model is configured for the '{task}' task.")
        return self._client, model

    async def _call(self, task: str, model: str, timeout_s: float,
                    send: Callable[[], Awaitable[Message]]) -> Any:
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_s):
                message = await send()
        except TimeoutError:
            error: Exception = Retryable(f"The model did not answer within {timeout_s:g} s.")
            self._log_failure(task, model, started, error, status=None, request_id=None)
            raise error from None
        except anthropic.APIStatusError as exc:
            error = map_status_error(exc)
            self._log_failure(task, model, started, error, status=exc.status_code, request_id=exc.request_id)
            raise error from exc
        except anthropic.APIConnectionError as exc:  # includes APITimeoutError
            what = "timed out" if isinstance(exc, anthropic.APITimeoutError) else "could not be reached"
            error = Retryable(f"The Anthropic API {what}.")
            self._log_failure(task, model, started, error, status=None, request_id=None)
            raise error from exc
        except pydantic.ValidationError as exc:  # messages.parse: the answer did not fit the schema
            error = UpstreamFailure("The model's answer did not match the expected structure "
                                    "(it may have been cut off by max_tokens).")
            self._log_failure(task, model, started, error, status=None, request_id=None)
            raise error from exc
        except anthropic.AnthropicError as exc:
            error = UpstreamFailure(f"The Anthropic API call failed: {type(exc).__name__}.")
            self._log_failure(task, model, started, error, status=None, request_id=None)
            raise error from exc

        if message.stop_reason == "refusal":
            error = UpstreamFailure("The model declined to answer this request.")
            self._log_failure(task, model, started, error, status=200,
                              request_id=getattr(message, "_request_id", None))
            raise error
        self._after_success(task, message, model, started)
        return message

    def _after_success(self, task: str, message: Message, requested_model: str, started: float) -> None:
        model = message.model or requested_model
        usage = _usage_of(message)
        if self._recorder is not None:
            try:
                self._recorder.record(task, model, usage)
            except Exception:  # usage accounting must never fail a paid-for answer
                log.warning("anthropic.usage_record_failed", exc_info=True)
        _log_event(logging.INFO, "anthropic.call", task=task, model=model,
                   input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                   cache_read_input_tokens=usage.cache_read_input_tokens,
                   cache_creation_input_tokens=usage.cache_creation_input_tokens,
                   latency_ms=round((time.monotonic() - started) * 1000), stop_reason=message.stop_reason,
                   request_id=getattr(message, "_request_id", None))
        if usage.cache_read_input_tokens > 0 or usage.cache_creation_input_tokens > 0:
            _log_event(logging.INFO, "anthropic.cache", task=task, model=model,
                       cache_read_input_tokens=usage.cache_read_input_tokens,
                       cache_creation_input_tokens=usage.cache_creation_input_tokens,
                       input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)

    @staticmethod
    def _log_failure(task: str, model: str, started: float, error: Exception, *,
                     status: int | None, request_id: str | None) -> None:
        _log_event(logging.WARNING, "anthropic.call_failed", task=task, model=model, status=status,
                   error=type(error).__name__, reason=str(error)[:200], request_id=request_id,
                   latency_ms=round((time.monotonic() - started) * 1000))


# ---------------------------------------------------------------------- request building (pure)
def chat_system_blocks(system: tuple[str, ...]) -> list[dict[str, Any]]:
    """Static system blocks; the last one carries the breakpoint, so the whole system prefix is cached.

    Blank blocks are dropped (the API rejects empty text blocks); the result is byte-stable for equal
    input, which is what keeps the cache warm across turns."""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text} for text in system if text.strip()]
    if blocks:
        blocks[-1]["cache_control"] = dict(_EPHEMERAL)
    return blocks


def chat_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """History (breakpoint on the last message), then the new user turn: images first, then the text.

    Every message is a list of text blocks, with or without the marker, so a message renders the same
    bytes whether or not it is currently the last one in history. Blank history messages are dropped
    (the API rejects empty text); consecutive same-role turns that this may create are accepted by the
    API."""
    messages: list[dict[str, Any]] = [
        {"role": item.role, "content": [{"type": "text", "text": item.content}]}
        for item in request.history if item.content.strip()
    ]
    if messages:
        messages[-1]["content"][-1]["cache_control"] = dict(_EPHEMERAL)
    turn: list[dict[str, Any]] = [_image_block(image) for image in request.images[:MAX_IMAGES]]
    if request.user_text.strip():
        turn.append({"type": "text", "text": request.user_text})
    if not turn:
        raise InvalidInput("A chat turn needs text or an image.", field="user_text")
    messages.append({"role": "user", "content": turn})
    return messages


def _image_block(image: ImageInput) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": image.data_b64}}


# ---------------------------------------------------------------------- response and error mapping
def _text_of(message: Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def _usage_of(message: Message) -> Usage:
    usage = message.usage
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
    )


def map_status_error(exc: anthropic.APIStatusError) -> Exception:
    """429, 408 and every 5xx (529 overloaded included) are transient; other statuses are permanent."""
    status = exc.status_code
    detail = (exc.api_message or exc.type or "no details")[:_API_MESSAGE_MAX]
    if status in (408, 429) or status >= 500:
        what = {408: "timed out", 429: "rate limit reached", 529: "overloaded"}.get(status, "server error")
        return Retryable(f"Anthropic API {what} ({status}): {detail}",
                         retry_after=retry_after_seconds(exc.response.headers))
    hint = " Check ANTHROPIC_API_KEY." if status in (401, 403) else ""
    return UpstreamFailure(f"Anthropic API error {status}: {detail}.{hint}", status=status,
                           request_id=exc.request_id)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms`, else `retry-after` (seconds or an HTTP date), capped at 60 s."""
    seconds: float | None = None
    try:
        if headers.get("retry-after-ms"):
            seconds = float(headers["retry-after-ms"]) / 1000
        elif headers.get("retry-after"):
            raw = headers["retry-after"]
            try:
                seconds = float(raw)
            except ValueError:
                when = email.utils.parsedate_to_datetime(raw)
                seconds = (when - datetime.now(timezone.utc)).total_seconds()
    except (TypeError, ValueError):
        return None
    if seconds is None or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_CAP_S)


def _log_event(level: int, event: str, **fields: Any) -> None:
    """One structured line: the event name as message, fields as record attributes for JSON formatters
    and as key=value text for plain ones. Telemetry problems are swallowed (DOMAIN §9.4)."""
    try:
        text = " ".join(f"{key}={value}" for key, value in fields.items())
        log.log(level, "%s %s", event, text, extra={"event": event, **fields})
    except Exception:
        pass
