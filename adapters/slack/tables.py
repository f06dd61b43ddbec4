"""The Slack installation and OAuth-state tables, built with slack_sdk's own table builders so the
store's queries match, and created by our Alembic migration (0003) instead of `create_tables()`.

Installations are looked up before the tenant is known, so they sit outside row-level security
and are read and written only through the admin engine (the app role gets no grant on them).
The token columns are widened to TEXT: an encrypted token (FLOWPILOT_SECRET_KEY) is longer than
the builders' String(200)."""
from __future__ import annotations

import sqlalchemy as sa
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

INSTALLATIONS_TABLE = "slack_installations"
BOTS_TABLE = "slack_bots"
OAUTH_STATES_TABLE = "slack_oauth_states"
TOKEN_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")


def build_slack_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    installations = AsyncSQLAlchemyInstallationStore.build_installations_table(metadata, INSTALLATIONS_TABLE)
    bots = AsyncSQLAlchemyInstallationStore.build_bots_table(metadata, BOTS_TABLE)
    states = AsyncSQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, OAUTH_STATES_TABLE)
    for table in (installations, bots):
        for name in TOKEN_COLUMNS:
            if name in table.c:
                table.c[name].type = sa.Text()
    return {INSTALLATIONS_TABLE: installations, BOTS_TABLE: bots, OAUTH_STATES_TABLE: states}
