"""The five error categories of the domain; each becomes one clear chat reply."""
from __future__ import annotations


class FlowPilotError(Exception):
    """Base class. `category` is the wire name the chat layer maps to a reply style."""

    category = "error"

    def __init__(self, message: str, **detail: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:  # what a chat user reads
        return self.message


class NotFound(FlowPilotError):
    """Missing, soft-deleted, or another tenant's row (never leak existence)."""

    category = "not_found"


class Forbidden(FlowPilotError):
    """A role or ownership rule denies the action; the message states the rule."""

    category = "forbidden"


class Conflict(FlowPilotError):
    """The current state does not allow the operation; the message says what to do next."""

    category = "conflict"


class InvalidInput(FlowPilotError):
    """An argument is missing, blank, too long or malformed. `field` names the input if known."""

    category = "invalid_input"

    def __init__(self, message: str, field: str | None = None, **detail: object) -> None:
        super().__init__(message, **detail)
        self.field = field


class UpstreamFailure(FlowPilotError):
    """The model or the PSA failed. Shown visibly in the thread; never silent success."""

    category = "upstream_failure"


class Retryable(Exception):
    """Raised by job handlers for a transient failure: the job is retried with backoff.

    `retry_after` (seconds) is a hint from the upstream (for example Retry-After)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ModelNotConfigured(UpstreamFailure):
    """No ANTHROPIC_API_KEY: everything that needs no model keeps working."""


class DeliveryFailed(Exception):
    """A channel sender could not deliver. `permanent` failures are not retried (e.g. the
    channel is gone); others are retried with backoff honouring `retry_after`."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.status = status
