"""Ports: the Protocols core needs from the outside world. Adapters and storage implement them."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel


# --------------------------------------------------------------------------- language model
@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "user" | "assistant"
    content: str


@dataclass(frozen=True)
class ImageInput:
    media_type: str  # "image/jpeg" | "image/png" | ...
    data_b64: str  # already downscaled to <= 1568 px on the longest side


@dataclass(frozen=True)
class ChatRequest:
    """One free-text chat turn.

    `system` blocks are static and byte-stable (cached); `history` is the stored, stripped
    conversation (the last message carries the history cache breakpoint); `user_text` is the
    new, uncached user message: volatile per-turn context, the engineer's text and the format
    reminder. `images` go ahead of the text and are never stored."""

    task: str
    system: tuple[str, ...]
    history: tuple[ChatMessage, ...]
    user_text: str
    images: tuple[ImageInput, ...] = ()
    max_tokens: int = 2048


@dataclass(frozen=True)
class ChatReply:
    text: str
    usage: Usage = Usage()
    model: str = ""


@dataclass(frozen=True)
class GenerateRequest:
    """A one-shot generation. With `schema` the output is schema-enforced and returned as
    `GenerateReply.data` (validated by the pydantic model); without it, text."""

    task: str
    system: str
    user_text: str
    max_tokens: int = 1024
    schema: type[BaseModel] | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class GenerateReply:
    text: str | None = None
    data: BaseModel | None = None
    usage: Usage = Usage()
    model: str = ""


class LanguageModel(Protocol):
    """Raises core.errors.Retryable for transient failures (overload, rate limit, timeout,
    connection) and core.errors.UpstreamFailure for permanent ones; ModelNotConfigured when
    no API key is set."""

    @property
    def configured(self) -> bool: ...

    async def chat(self, request: ChatRequest) -> ChatReply: ...

    async def generate(self, request: GenerateRequest) -> GenerateReply: ...


class UsageRecorder(Protocol):
    def record(self, task: str, model: str, usage: Usage) -> None: ...


# --------------------------------------------------------------------------- ticket system (PSA)
NOTE_RESOLUTION = "resolution"
NOTE_INTERNAL = "internal_analysis"
NOTE_DESCRIPTION = "description"


@dataclass(frozen=True)
class PsaCredentials:
    site_url: str
    company_id: str
    public_key: str = field(repr=False)
    private_key: str = field(repr=False)


@dataclass(frozen=True)
class Ticket:
    id: str
    summary: str
    status_id: int | None
    status_name: str | None
    company: str | None = None
    contact: str | None = None
    board: str | None = None
    priority: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class TicketContext:
    ticket: Ticket
    recent_notes: tuple[str, ...] = ()
    configurations: tuple[str, ...] = ()


@dataclass(frozen=True)
class PSANote:
    id: str
    text: str
    note_type: str
    created_at: datetime | None = None


class TicketSystem(Protocol):
    """One PSA connection. Errors surface as core.errors.UpstreamFailure carrying the PSA's
    message (or Retryable for 429/5xx/timeouts)."""

    async def check_connection(self) -> None: ...

    async def get_ticket(self, ticket_id: str) -> Ticket: ...

    async def get_ticket_context(self, ticket_id: str) -> TicketContext: ...

    async def post_note(self, ticket_id: str, text: str, note_type: str) -> PSANote: ...

    async def update_ticket_status(self, ticket_id: str, status_id: int) -> None: ...


class TicketSystemFactory(Protocol):
    def __call__(self, credentials: PsaCredentials) -> TicketSystem: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


# --------------------------------------------------------------------------- delivery
@dataclass(frozen=True)
class Destination:
    """Where a message goes. `thread_id` replies in a known thread; `root_card_key` replies in
    the thread started by one of our own cards (resolved at delivery, once it exists); neither
    posts a new top-level message. `user_id` (platform user id) makes it a DM."""

    platform: str
    workspace_id: str
    channel_id: str | None = None
    thread_id: str | None = None
    root_card_key: str | None = None
    user_id: str | None = None
    binds_session: str | None = None  # this post starts the session's thread: bind it on delivery

    def as_dict(self) -> dict[str, str | None]:
        return {k: getattr(self, k) for k in ("platform", "workspace_id", "channel_id", "thread_id",
                                              "root_card_key", "user_id", "binds_session")}

    def lane_key(self) -> str:
        return ":".join(str(x or "-") for x in (self.platform, self.workspace_id, self.channel_id or self.user_id,
                                               self.thread_id or self.root_card_key))


# --------------------------------------------------------------------------- unit of work
class UnitOfWork(Protocol):
    """One tenant transaction (RLS set to `account_id`). Repositories return core dataclasses;
    `enqueue` and `send` write job and outbox rows in the same transaction."""

    account_id: Any
    people: Any
    sessions: Any
    messages: Any
    lane: Any
    facts: Any
    fixes: Any
    handoffs: Any
    settings: Any
    steps: Any
    routes: Any
    previews: Any
    psa: Any
    refs: Any

    async def enqueue(self, kind: str, payload: dict[str, Any], *, lane_key: str | None = None,
                      dedupe_key: str | None = None, delay_s: float = 0.0) -> int | None: ...

    async def send(self, destination: Destination, view: BaseModel, *, op: str = "post",
                   card_key: str | None = None, lane_key: str | None = None,
                   dedupe_key: str | None = None) -> None: ...

    async def claim_inbound(self, platform: str, workspace_id: str, event_id: str) -> bool: ...

    async def now(self) -> datetime: ...


# --------------------------------------------------------------------------- jobs and stores
class UnitFactory(Protocol):
    """Opens a tenant unit of work: `async with units(account_id) as uow`."""

    def __call__(self, account_id: Any) -> Any: ...


class JobContext(Protocol):
    """What a job handler gets from the worker. `complete(uow)` marks the job done inside the
    handler's own final transaction, so its effects and its completion commit together."""

    job_id: int
    kind: str
    account_id: Any
    payload: dict[str, Any]
    attempts: int
    max_attempts: int

    def unit(self) -> Any: ...

    async def complete(self, uow: UnitOfWork) -> None: ...


class TicketContextProvider(Protocol):
    async def __call__(self, account_id: Any, session: Any) -> TicketContext | None: ...


class ChannelSender(Protocol):
    """Delivers views on one platform. `post` returns a message reference (a dict the sender
    understands, including `thread_id` for replies in the thread it starts); `update` edits the
    referenced message. Raise core.errors.DeliveryFailed on failure."""

    async def post(self, destination: dict[str, Any], view: Any) -> dict[str, Any]: ...

    async def update(self, ref: dict[str, Any], view: Any) -> dict[str, Any]: ...


class PsaGateway(Protocol):
    """Turns stored PSA connections into TicketSystems (decrypting credentials) and seals new
    credentials for storage. `env_credentials` are a single-tenant deployment's ConnectWise
    settings from the environment, if any."""

    def system_for(self, connection: dict[str, Any]) -> TicketSystem: ...

    def system_for_credentials(self, credentials: PsaCredentials) -> TicketSystem: ...

    def seal(self, credentials: PsaCredentials) -> str: ...

    def env_credentials(self) -> PsaCredentials | None: ...

    def env_status_ids(self) -> dict[str, int]: ...
