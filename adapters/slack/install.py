"""OAuth distribution: the installation store on our database (tokens encrypted at rest when
FLOWPILOT_SECRET_KEY is set), the OAuth state store, and what an install means for FlowPilot:
the workspace gets (or keeps) its account and the installer becomes an admin."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.slack.tables import (
    BOTS_TABLE, INSTALLATIONS_TABLE, OAUTH_STATES_TABLE, TOKEN_COLUMNS, build_slack_tables,
)
from storage.secrets import SecretBox

log = logging.getLogger(__name__)

ENCRYPTED_PREFIX = "fp-enc:v1:"
STATE_EXPIRATION_S = 600


class TokenCipher:
    """Token ↔ stored text. Without a key tokens are stored as Slack gave them (documented);
    with one they are Fernet-encrypted and marked, so plain legacy rows still read."""

    def __init__(self, box: SecretBox | None) -> None:
        self.box = box

    def seal(self, token: str | None) -> str | None:
        if token is None or self.box is None or token.startswith(ENCRYPTED_PREFIX):
            return token
        return ENCRYPTED_PREFIX + self.box.encrypt_json({"t": token})

    def open(self, stored: str | None) -> str | None:
        if stored is None or not stored.startswith(ENCRYPTED_PREFIX):
            return stored
        if self.box is None:
            raise RuntimeError("A Slack token in the database is encrypted but FLOWPILOT_SECRET_KEY is not set.")
        return str(self.box.decrypt_json(stored[len(ENCRYPTED_PREFIX):])["t"])


def _apply(obj: Any, fn: Callable[[str | None], str | None]) -> Any:
    for name in TOKEN_COLUMNS:
        if hasattr(obj, name):
            setattr(obj, name, fn(getattr(obj, name)))
    return obj


class EncryptingInstallationStore(AsyncSQLAlchemyInstallationStore):
    """slack_sdk's store with tokens sealed on the way in and opened on the way out. The objects
    handed to us are copied first: bolt keeps using the Installation after saving it."""

    def __init__(self, client_id: str, engine: AsyncEngine, cipher: TokenCipher) -> None:
        super().__init__(client_id=client_id, engine=engine, bots_table_name=BOTS_TABLE,
                         installations_table_name=INSTALLATIONS_TABLE)
        # Same tables as the migration (TEXT token columns), so nothing is cut to String(200).
        tables = build_slack_tables(sa.MetaData())
        self.installations, self.bots = tables[INSTALLATIONS_TABLE], tables[BOTS_TABLE]
        self.cipher = cipher

    async def async_save(self, installation: Installation) -> None:
        sealed = _apply(Installation(**installation.to_dict_for_copying()), self.cipher.seal)
        await super().async_save(sealed)

    async def async_save_bot(self, bot: Bot) -> None:
        await super().async_save_bot(_apply(Bot(**bot.to_dict_for_copying()), self.cipher.seal))

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        bot = await super().async_find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                           is_enterprise_install=is_enterprise_install)
        return _apply(bot, self.cipher.open) if bot is not None else None

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None,
                                      is_enterprise_install: bool | None = False) -> Installation | None:
        found = await super().async_find_installation(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id,
                                                      is_enterprise_install=is_enterprise_install)
        return _apply(found, self.cipher.open) if found is not None else None


def build_stores(client_id: str, engine: AsyncEngine, secret_key: str | None
                 ) -> tuple[EncryptingInstallationStore, AsyncSQLAlchemyOAuthStateStore]:
    cipher = TokenCipher(SecretBox(secret_key) if secret_key else None)
    if cipher.box is None:
        log.warning("FLOWPILOT_SECRET_KEY is not set: Slack bot tokens are stored unencrypted")
    installations = EncryptingInstallationStore(client_id, engine, cipher)
    states = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRATION_S, engine=engine,
                                            table_name=OAUTH_STATES_TABLE)
    return installations, states


OnInstall = Callable[[Installation], Awaitable[None]]


def build_oauth_settings(client_id: str, client_secret: str, scopes: tuple[str, ...],
                         installations: EncryptingInstallationStore, states: AsyncSQLAlchemyOAuthStateStore,
                         on_install: OnInstall) -> AsyncOAuthSettings:
    settings = AsyncOAuthSettings(client_id=client_id, client_secret=client_secret, scopes=list(scopes),
                                  installation_store=installations, installation_store_bot_only=True,
                                  state_store=states,
                                  install_path="/slack/install", redirect_uri_path="/slack/oauth_redirect")

    async def success(args: AsyncSuccessArgs) -> BoltResponse:
        try:
            await on_install(args.installation)
        except Exception as exc:  # the tokens are saved; say plainly that FlowPilot's side failed
            log.exception("slack install: account setup failed", extra={"team_id": args.installation.team_id})
            return await args.default.failure(AsyncFailureArgs(
                request=args.request, reason="account_setup_failed", error=exc, suggested_status_code=500,
                settings=args.settings, default=args.default))
        return await args.default.success(args)

    async def failure(args: AsyncFailureArgs) -> BoltResponse:
        log.warning("slack install failed", extra={"reason": args.reason})
        return await args.default.failure(args)

    settings.callback_options = AsyncCallbackOptions(success=success, failure=failure)
    return settings
