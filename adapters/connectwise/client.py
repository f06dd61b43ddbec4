"""TicketSystem over the ConnectWise Manage REST API (aiohttp).

Every failure becomes core.errors.UpstreamFailure (permanent: credentials, missing ticket, CW
validation) or core.errors.Retryable (transient: 429, 5xx, timeouts, connection errors). This
client never verifies a status change itself; the core re-fetches with get_ticket."""
from __future__ import annotations

import asyncio
import base64
import json as jsonlib
import logging
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from core.errors import InvalidInput, Retryable, UpstreamFailure
from core.ports import PsaCredentials, PSANote, Ticket, TicketContext

from . import mapping

logger = logging.getLogger(__name__)

DEFAULT_API_PATH = "/v4_6_release/apis/3.0"
DEFAULT_API_VERSION = "2025.16"
RECENT_NOTES_LIMIT = 5
_PROVIDER = "connectwise"


def build_base_url(site_url: str, api_path: str = DEFAULT_API_PATH) -> str:
    """`{site_url}{api_path}`. A bare host gets https; a site URL that already ends with the API
    path (pasted from CW docs) is not doubled."""
    site = site_url.strip().rstrip("/")
    if "://" not in site:
        site = f"https://{site}"
    path = "/" + api_path.strip().strip("/") if api_path.strip().strip("/") else ""
    if path and site.lower().endswith(path.lower()):
        return site
    return site + path


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class ConnectWiseTicketSystem:
    """One ConnectWise connection (one MSP's API member). Cheap to build per unit of work; the
    aiohttp session is shared and owned by the caller."""

    def __init__(
        self,
        credentials: PsaCredentials,
        client_id: str,
        session: aiohttp.ClientSession,
        api_version: str = DEFAULT_API_VERSION,
        timeout_s: float = 20,
        *,
        api_path: str = DEFAULT_API_PATH,
    ) -> None:
        _require_complete(credentials, client_id)
        self._base_url = build_base_url(credentials.site_url, api_path)
        self._session = session
        self._timeout_s = float(timeout_s)
        token = base64.b64encode(
            f"{credentials.company_id.strip()}+{credentials.public_key.strip()}:{credentials.private_key.strip()}".encode()
        ).decode("ascii")
        # The only place the secret lives on this object; never logged, never in repr.
        self._headers = {
            "Authorization": f"Basic {token}",
            "clientId": client_id.strip(),
            "Accept": f"application/vnd.connectwise.com+json; version={api_version}",
        }

    def __repr__(self) -> str:
        return f"ConnectWiseTicketSystem(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        return self._base_url

    # ------------------------------------------------------------------ TicketSystem
    async def check_connection(self) -> None:
        body = await self._request("GET", "/system/info", action="reach the ConnectWise API")
        if not isinstance(body, dict):
            raise UpstreamFailure(
                f"{self._base_url} did not answer like the ConnectWise API; check the site URL.",
                provider=_PROVIDER,
            )

    async def get_ticket(self, ticket_id: str) -> Ticket:
        number = mapping.ticket_path_id(ticket_id)
        body = await self._request(
            "GET", f"/service/tickets/{number}", action=f"read ticket #{number}", ticket=number
        )
        try:
            return mapping.ticket_from_json(body, number)
        except ValueError:
            raise UpstreamFailure(
                f"ConnectWise returned an unreadable answer for ticket #{number}.", provider=_PROVIDER
            ) from None

    async def get_ticket_context(self, ticket_id: str) -> TicketContext:
        """The ticket plus its five most recent notes (oldest first, so they read as a
        conversation) and its configurations. The ticket itself must load; notes and
        configurations are enrichment, so a failure there (often a security role without
        configuration access) is logged and yields an empty tuple instead of failing the turn."""
        ticket = await self.get_ticket(ticket_id)
        notes, configurations = await asyncio.gather(
            self._optional(self._recent_notes(ticket.id), "recent notes", ticket.id),
            self._optional(self._configurations(ticket.id), "configurations", ticket.id),
        )
        return TicketContext(ticket=ticket, recent_notes=notes, configurations=configurations)

    async def post_note(self, ticket_id: str, text: str, note_type: str) -> PSANote:
        number = mapping.ticket_path_id(ticket_id)
        payload: dict[str, Any] = {"text": text, **mapping.note_flags(note_type)}
        body = await self._request(
            "POST",
            f"/service/tickets/{number}/notes",
            json=payload,
            action=f"post a note to ticket #{number}",
            ticket=number,
        )
        try:
            return mapping.note_from_json(body, text, note_type)
        except ValueError:
            raise UpstreamFailure(
                f"ConnectWise accepted the note for ticket #{number} but returned no note id.",
                provider=_PROVIDER,
            ) from None

    async def update_ticket_status(self, ticket_id: str, status_id: int) -> None:
        number = mapping.ticket_path_id(ticket_id)
        if not isinstance(status_id, int) or isinstance(status_id, bool):
            raise InvalidInput(f"'{status_id}' is not a ConnectWise status id.", field="status_id")
        patch = [{"op": "replace", "path": "status", "value": {"id": status_id}}]
        await self._request(
            "PATCH",
            f"/service/tickets/{number}",
            json=patch,
            action=f"change the status of ticket #{number}",
            ticket=number,
        )

    # ------------------------------------------------------------------ helpers
    async def _recent_notes(self, number: str) -> tuple[str, ...]:
        body = await self._request(
            "GET",
            f"/service/tickets/{number}/notes",
            params={"orderBy": "id desc", "pageSize": str(RECENT_NOTES_LIMIT)},
            action=f"read the notes of ticket #{number}",
            ticket=number,
        )
        rows = body if isinstance(body, list) else []
        lines = [line for line in map(mapping.note_line, rows) if line]
        return tuple(reversed(lines[:RECENT_NOTES_LIMIT]))

    async def _configurations(self, number: str) -> tuple[str, ...]:
        body = await self._request(
            "GET",
            f"/service/tickets/{number}/configurations",
            action=f"read the configurations of ticket #{number}",
            ticket=number,
        )
        rows = body if isinstance(body, list) else []
        return tuple(line for line in map(mapping.configuration_line, rows) if line)

    async def _optional(self, call: Awaitable[tuple[str, ...]], what: str, number: str) -> tuple[str, ...]:
        try:
            return await call
        except (UpstreamFailure, Retryable) as exc:
            logger.warning(
                "connectwise.optional_data_unavailable",
                extra={"ticket_id": number, "what": what, "error": str(exc)},
            )
            return ()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        action: str,
        ticket: str | None = None,
        params: dict[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        url = self._base_url + path
        started = time.monotonic()
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                json=json,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                # A redirect usually means a wrong site URL (a login page); following it could
                # send the Authorization header somewhere else.
                allow_redirects=False,
            ) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                text = await response.text()
        except aiohttp.InvalidURL:
            raise UpstreamFailure(
                "The ConnectWise site URL of this connection is not a valid URL.", provider=_PROVIDER
            ) from None
        except TimeoutError:
            raise Retryable(
                f"ConnectWise did not answer within {self._timeout_s:g} s while trying to {action}."
            ) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise Retryable(
                f"Could not reach ConnectWise at {urlsplit(url).netloc} while trying to {action} "
                f"({type(exc).__name__})."
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamFailure(
                f"ConnectWise request failed while trying to {action} ({type(exc).__name__}).",
                provider=_PROVIDER,
            ) from None
        logger.debug(
            "connectwise.request",
            extra={
                "method": method,
                "path": path,
                "status": status,
                "elapsed_ms": round((time.monotonic() - started) * 1000),
            },
        )
        if 200 <= status < 300:
            return self._json_or_fail(text, action)
        raise self._error_for(status, text, action=action, ticket=ticket, retry_after=retry_after)

    def _json_or_fail(self, text: str, action: str) -> Any:
        if not text.strip():
            return None
        try:
            return jsonlib.loads(text)
        except ValueError:
            raise UpstreamFailure(
                f"ConnectWise answered with something that is not JSON while trying to {action}; "
                "check the site URL.",
                provider=_PROVIDER,
            ) from None

    def _error_for(
        self, status: int, text: str, *, action: str, ticket: str | None, retry_after: float | None
    ) -> Exception:
        detail = mapping.cw_error_detail(_loads_or_none(text))
        suffix = f" ConnectWise said: {detail}" if detail else ""
        if status == 429:
            return Retryable(
                f"ConnectWise rate limit reached (HTTP 429) while trying to {action}.", retry_after
            )
        if status >= 500 or status == 408:
            return Retryable(
                f"ConnectWise is unavailable (HTTP {status}) while trying to {action}.", retry_after
            )
        if status == 401:
            return UpstreamFailure(
                "ConnectWise rejected the credentials (HTTP 401): check the company id, public key "
                "and private key of this PSA connection." + suffix,
                provider=_PROVIDER,
                http_status=status,
            )
        if status == 403:
            return UpstreamFailure(
                f"ConnectWise rejected the credentials for this action (HTTP 403): the API member's "
                f"security role does not allow it to {action}." + suffix,
                provider=_PROVIDER,
                http_status=status,
            )
        if status == 404:
            message = (
                f"Ticket #{ticket} not found in ConnectWise."
                if ticket
                else f"The ConnectWise API was not found at {self._base_url} (HTTP 404); check the site URL."
            )
            return UpstreamFailure(message, provider=_PROVIDER, http_status=status)
        if 300 <= status < 400:
            return UpstreamFailure(
                f"ConnectWise redirected the request (HTTP {status}) while trying to {action}; "
                "check the site URL of this connection.",
                provider=_PROVIDER,
                http_status=status,
            )
        reason = detail or f"HTTP {status}"
        return UpstreamFailure(
            f"ConnectWise could not {action}: {reason}", provider=_PROVIDER, http_status=status
        )


def _loads_or_none(text: str) -> Any:
    try:
        return jsonlib.loads(text) if text.strip() else None
    except ValueError:
        return None


def _require_complete(credentials: PsaCredentials, client_id: str) -> None:
    """A half-configured connection fails with a message naming the missing part (never its value)."""
    missing = [
        label
        for label, value in (
            ("site URL", credentials.site_url),
            ("company id", credentials.company_id),
            ("public key", credentials.public_key),
            ("private key", credentials.private_key),
        )
        if not (value or "").strip()
    ]
    if missing:
        raise UpstreamFailure(
            f"The ConnectWise connection is incomplete: missing {', '.join(missing)}.", provider=_PROVIDER
        )
    if not (client_id or "").strip():
        raise UpstreamFailure(
            "ConnectWise is not configured on this server: no client id (CW_CLIENT_ID).", provider=_PROVIDER
        )
