"""Row-level security on every tenant table and the application role.

The app role has no BYPASSRLS and owns nothing, so RLS always applies to it; FORCE makes RLS
apply to the table owner as well. The tenant comes from a per-transaction setting
(`set_config('app.current_account_id', <id>, true)`); with none set, the policy compares with
the nil UUID and sees nothing (fail closed).

Revision ID: 0002
Revises: 0001
"""
from alembic import op

from storage.tables import TENANT_TABLES

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APP_ROLE = "flowpilot_app"
TENANT_EXPR = (
    "account_id = COALESCE(NULLIF(current_setting('app.current_account_id', true), ''),"
    " '00000000-0000-0000-0000-000000000000')::uuid"
)
INFRA_TABLES = ("accounts", "workspaces", "inbound_events", "jobs", "outbox", "conversation_refs")


def upgrade() -> None:
    op.execute(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN NOBYPASSRLS NOSUPERUSER;
          END IF;
        END $$;
        """
    )
    # Lets a non-superuser owner (the DATABASE_URL user) SET ROLE to the app role.
    op.execute(f"GRANT {APP_ROLE} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    for table in TENANT_TABLES + INFRA_TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} USING ({TENANT_EXPR}) WITH CHECK ({TENANT_EXPR})"
        )


def downgrade() -> None:
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for table in TENANT_TABLES + INFRA_TABLES:
        op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
    # The role is cluster-wide and may serve other databases (e.g. tests): it is kept.
