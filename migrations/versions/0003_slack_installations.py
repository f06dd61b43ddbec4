"""Slack installation store and OAuth state tables (slack_sdk's AsyncSQLAlchemy stores).

The tables come from slack_sdk's own builders (adapters/slack/tables.py) so the stores' queries
match them; Alembic creates and drops them instead of the stores' `create_tables()`. They live
outside row-level security (installations are looked up before the tenant is known) and the app
role gets no grant: only the admin engine reads them, which keeps bot tokens away from tenant code.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

from adapters.slack.tables import build_slack_tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata = sa.MetaData()
    build_slack_tables(metadata)
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata = sa.MetaData()
    build_slack_tables(metadata)
    metadata.drop_all(op.get_bind())
