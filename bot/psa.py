"""core.ports.PsaGateway over ConnectWise and the secret box (credentials encrypted at rest)."""
from __future__ import annotations

import logging
from typing import Any

import aiohttp

from adapters.connectwise import make_ticket_system_factory
from bot.settings import Settings
from core.ports import PsaCredentials, TicketContext, TicketSystem
from storage.secrets import SecretBox

log = logging.getLogger(__name__)


class ConnectWiseGateway:
    def __init__(self, settings: Settings, http: aiohttp.ClientSession) -> None:
        self._settings = settings
        key = settings.secret_key.get_secret_value() if settings.secret_key else None
        self._box = SecretBox(key) if key else None
        self._factory = make_ticket_system_factory(http, settings.cw_client_id or "",
                                                   api_version=settings.cw_api_version)

    def _require_box(self) -> SecretBox:
        if self._box is None:
            raise RuntimeError("FLOWPILOT_SECRET_KEY is not set: PSA credentials can't be stored encrypted.")
        return self._box

    def seal(self, credentials: PsaCredentials) -> str:
        return self._require_box().encrypt_json({"public_key": credentials.public_key,
                                                 "private_key": credentials.private_key})

    def system_for(self, connection: dict[str, Any]) -> TicketSystem:
        secret = self._require_box().decrypt_json(connection["credentials_encrypted"])
        return self._factory(PsaCredentials(site_url=connection["site_url"], company_id=connection["company_id"],
                                            public_key=secret["public_key"], private_key=secret["private_key"]))

    def system_for_credentials(self, credentials: PsaCredentials) -> TicketSystem:
        return self._factory(credentials)

    def env_credentials(self) -> PsaCredentials | None:
        s = self._settings
        if not (s.cw_site_url and s.cw_company_id and s.cw_public_key and s.cw_private_key and self._box):
            return None
        return PsaCredentials(site_url=s.cw_site_url, company_id=s.cw_company_id,
                              public_key=s.cw_public_key.get_secret_value(),
                              private_key=s.cw_private_key.get_secret_value())

    def env_status_ids(self) -> dict[str, int]:
        out = {}
        if self._settings.cw_resolved_status_id is not None:
            out["cw_resolved_status_id"] = self._settings.cw_resolved_status_id
        if self._settings.cw_escalated_status_id is not None:
            out["cw_escalated_status_id"] = self._settings.cw_escalated_status_id
        return out

    @property
    def enabled(self) -> bool:
        return self._box is not None


def ticket_context_provider(store, gateway: ConnectWiseGateway):
    """For AI turns: the linked ticket's context, or None (never fails a turn)."""

    async def provide(account_id, session) -> TicketContext | None:
        if not session.psa_connection_id or not gateway.enabled:
            return None
        try:
            async with store.unit(account_id) as uow:
                connection = await uow.psa.connection(session.psa_connection_id)
            if connection is None or not connection["is_active"]:
                return None
            return await gateway.system_for(connection).get_ticket_context(session.psa_ticket_id)
        except Exception as exc:
            log.warning("ticket context unavailable", extra={"session_id": str(session.id), "error": repr(exc)})
            return None

    return provide
