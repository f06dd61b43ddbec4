"""Builds a TicketSystem per stored PSA connection (credentials are per team, resolved per job)."""
from __future__ import annotations

import aiohttp

from core.ports import PsaCredentials, TicketSystem, TicketSystemFactory

from .client import DEFAULT_API_PATH, DEFAULT_API_VERSION, ConnectWiseTicketSystem


def make_ticket_system_factory(
    session: aiohttp.ClientSession,
    client_id: str,
    *,
    api_version: str = DEFAULT_API_VERSION,
    timeout_s: float = 20,
    api_path: str = DEFAULT_API_PATH,
) -> TicketSystemFactory:
    """The returned callable never raises at wiring time, so a server without CW_CLIENT_ID still
    starts; using a connection then fails with an UpstreamFailure that says what is missing."""

    def build(credentials: PsaCredentials) -> TicketSystem:
        return ConnectWiseTicketSystem(
            credentials, client_id, session, api_version, timeout_s, api_path=api_path
        )

    return build
