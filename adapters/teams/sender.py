"""Proactive Bot Connector operations for workers (reply, new channel thread, update, typing).

Everything crossing this module's boundary is plain data: conversation references and activities are
the Bot Framework wire dicts (`ConversationReference.serialize()` / `Activity` JSON), ids are strings.

botbuilder never retries (PLATFORMS §2.9), so each operation is retried here on 429/412/502/503/504
and connection failures with exponential backoff and jitter, waiting at least `Retry-After`. After
the budget, or when the server asks for a longer wait than we hold a worker for, a `TeamsDeliveryError`
tells the outbox when to try again (`retry_after`) or that retrying cannot help (`permanent`).
A retried 502/504 may have been delivered already; Teams gives no idempotency key for sends.

SDK facts this relies on (botbuilder-core 4.17.1 source):
* `continue_conversation` needs `bot_app_id` ("Invalid app_id" otherwise) and runs our callback
  through `run_pipeline`, which hands exceptions to `adapter.on_turn_error` when one is set and does
  not re-raise. Callbacks therefore capture their own exceptions and we re-raise them here.
* The continuation activity gets a fresh uuid as its id and `send_activities` uses that as
  `replyToId`, so every proactive send would be a reply to a message that does not exist. `_continue`
  gives the continuation activity the reference's `activityId` instead: the send replies to the
  message the reference points at, or (no `activityId`) posts to the conversation. Teams threads by the
  conversation id (`…;messageid=<root>`) either way.
* `create_conversation` invents a uuid activity id when the service omits `activityId`; Teams puts the
  root message id in the new conversation id, which is preferred here.
"""
from __future__ import annotations

import asyncio
import copy
import email.utils
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

import requests
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationParameters,
    ConversationReference,
)
from msrest.exceptions import ClientRequestError, HttpOperationError

from .auth import OutboundTokenError, credentials_factory_of

log = logging.getLogger(__name__)

T = TypeVar("T")
TEAMS_CHANNEL = "msteams"
RETRY_IN_PROCESS = frozenset({412, 429, 502, 503, 504})
NOT_PERMANENT_4XX = frozenset({408, 412, 429})


class TeamsDeliveryError(Exception):
    """A Bot Connector operation failed for good (`permanent`) or for now (retry after `retry_after` s).

    `status` is the HTTP status (None for connection failures/timeouts); `code` the Bot Connector
    error code when the body carried one (e.g. `MessageWritesBlocked`, `ConversationNotFound`)."""

    def __init__(self, status: int | None, retry_after: float | None, permanent: bool,
                 message: str = "", code: str | None = None) -> None:
        super().__init__(message or f"Teams delivery failed (status={status}, permanent={permanent})")
        self.status = status
        self.retry_after = retry_after
        self.permanent = permanent
        self.code = code


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4  # including the first
    base_delay_s: float = 0.5  # first backoff; doubles per attempt
    max_delay_s: float = 10.0  # longest single wait held in-process; a longer Retry-After goes to the outbox


Sleep = Callable[[float], Awaitable[Any]]


class TeamsSender:
    def __init__(self, adapter: CloudAdapter, app_id: str, *, retry: RetryPolicy | None = None,
                 sleep: Sleep = asyncio.sleep, rng: random.Random | None = None) -> None:
        if not app_id:
            raise ValueError("TeamsSender needs the bot's app id (CloudAdapter proactive calls require it)")
        self._adapter = adapter
        self._app_id = app_id
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()

    # ---- operations
    async def reply_in_conversation(self, reference: dict, activity: dict) -> str:
        """Post `activity` into the referenced conversation/thread; returns the new activity id."""
        ref, outgoing = _reference(reference), _activity(activity)

        async def send(turn_context: TurnContext) -> str:
            response = await turn_context.send_activity(copy.deepcopy(outgoing))
            if response is None or not response.id:
                raise TeamsDeliveryError(None, None, False, "Bot Connector returned no activity id")
            return response.id

        return await self._with_retries("reply", lambda: self._continue(ref, send))

    async def update_activity(self, reference: dict, activity_id: str, activity: dict) -> None:
        """Replace the bot's own activity `activity_id` (e.g. a card) in the referenced conversation."""
        ref, outgoing = _reference(reference), _activity(activity)

        async def update(turn_context: TurnContext) -> None:
            replacement = copy.deepcopy(outgoing)
            replacement.id = activity_id
            replacement.type = replacement.type or ActivityTypes.message
            await turn_context.update_activity(replacement)

        await self._with_retries("update", lambda: self._continue(ref, update))

    async def send_typing(self, reference: dict) -> bool:
        """Best effort, one attempt: a late typing indicator is worse than none."""
        ref = _reference(reference)

        async def typing(turn_context: TurnContext) -> None:
            await turn_context.send_activity(Activity(type=ActivityTypes.typing))

        try:
            await self._attempt(lambda: self._continue(ref, typing))
            return True
        except TeamsDeliveryError as error:
            log.info("teams: typing indicator not delivered: %s", error)
            return False

    async def create_channel_thread(self, service_url: str, tenant_id: str, channel_id: str,
                                    activity: dict) -> tuple[dict, str]:
        """Start a new thread in a Teams channel; returns (thread reference dict, root activity id)."""
        if not (service_url and tenant_id and channel_id):
            raise ValueError("service_url, tenant_id and channel_id are all required to start a channel thread")
        outgoing = _activity(activity)
        outgoing.type = outgoing.type or ActivityTypes.message

        async def create() -> tuple[dict, str]:
            captured: dict[str, Any] = {}

            async def on_created(turn_context: TurnContext) -> None:
                created = turn_context.activity
                captured["reference"] = TurnContext.get_conversation_reference(created)
                captured["activity_id"] = _thread_root_id(created.conversation.id) or created.id

            parameters = ConversationParameters(
                is_group=True,
                bot=ChannelAccount(id=f"28:{self._app_id}"),
                channel_data={"channel": {"id": channel_id}, "tenant": {"id": tenant_id}},
                activity=copy.deepcopy(outgoing),
                tenant_id=tenant_id,
            )
            await self._adapter.create_conversation(
                self._app_id, on_created, parameters, channel_id=TEAMS_CHANNEL, service_url=service_url
            )
            reference: ConversationReference = captured["reference"]
            reference.activity_id = captured["activity_id"]
            return reference.serialize(), captured["activity_id"]

        return await self._with_retries("create_thread", create)

    # ---- plumbing
    async def _continue(self, reference: ConversationReference,
                        work: Callable[[TurnContext], Awaitable[T]]) -> T:
        outcome: dict[str, Any] = {}

        async def callback(turn_context: TurnContext) -> None:
            turn_context.activity.id = reference.activity_id  # see module doc: no phantom replyToId
            try:
                outcome["value"] = await work(turn_context)
            except Exception as error:  # re-raised below; on_turn_error would swallow it
                outcome["error"] = error

        await self._adapter.continue_conversation(reference, callback, bot_app_id=self._app_id)
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    async def _attempt(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (HttpOperationError, ClientRequestError, OutboundTokenError, requests.RequestException,
                asyncio.TimeoutError) as error:
            raise _as_delivery_error(error) from error

    async def _with_retries(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        attempt, refreshed_token = 0, False
        while True:
            attempt += 1
            try:
                return await self._attempt(call)
            except TeamsDeliveryError as error:
                if error.status == 401 and not refreshed_token and attempt < self._retry.max_attempts:
                    refreshed_token = True  # maybe a revoked or stale token: fetch a new one, once
                    self._forget_tokens()
                    continue
                if not _retry_in_process(error) or attempt >= self._retry.max_attempts:
                    raise
                delay = self._delay(attempt, error.retry_after)
                if delay is None:  # the server wants a longer pause than a worker should hold
                    raise
                log.warning("teams: %s failed (status=%s, attempt %d/%d); retrying in %.2fs",
                            operation, error.status, attempt, self._retry.max_attempts, delay)
                await self._sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float | None:
        policy = self._retry
        if retry_after is not None:
            if retry_after > policy.max_delay_s:
                return None
            return retry_after + self._rng.uniform(0, policy.base_delay_s)
        ceiling = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def _forget_tokens(self) -> None:
        factory = credentials_factory_of(self._adapter)
        if factory is not None:
            factory.invalidate()


def _retry_in_process(error: TeamsDeliveryError) -> bool:
    return not error.permanent and (error.status is None or error.status in RETRY_IN_PROCESS)


def _as_delivery_error(error: BaseException) -> TeamsDeliveryError:
    if isinstance(error, HttpOperationError) and getattr(error, "response", None) is not None:
        status = int(error.response.status_code)
        retry_after = _parse_retry_after(error.response.headers.get("Retry-After"))
        permanent = (400 <= status < 500 and status not in NOT_PERMANENT_4XX) or status == 501
        return TeamsDeliveryError(status, retry_after, permanent, f"Bot Connector answered HTTP {status}",
                                  _error_code(error))
    if isinstance(error, OutboundTokenError):
        return TeamsDeliveryError(error.status, error.retry_after, error.permanent, f"no Bot Connector token: {error}")
    return TeamsDeliveryError(None, None, False, f"Bot Connector unreachable: {error}")


def _error_code(error: HttpOperationError) -> str | None:
    try:
        return error.error.error.code or None
    except AttributeError:
        return None


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # HTTP-date form
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _thread_root_id(conversation_id: str | None) -> str | None:
    marker = ";messageid="
    if conversation_id and marker in conversation_id:
        return conversation_id.split(marker, 1)[1] or None
    return None


def _reference(reference: dict) -> ConversationReference:
    if not isinstance(reference, dict):
        raise TypeError("conversation reference must be a dict (ConversationReference.serialize())")
    parsed = ConversationReference.deserialize(reference)
    if not parsed.service_url or parsed.conversation is None or not parsed.conversation.id:
        raise ValueError("conversation reference needs serviceUrl and conversation.id")
    parsed.channel_id = parsed.channel_id or TEAMS_CHANNEL
    return parsed


def _activity(activity: dict) -> Activity:
    if not isinstance(activity, dict):
        raise TypeError("activity must be a dict in Bot Framework wire format")
    return Activity.deserialize(activity)
