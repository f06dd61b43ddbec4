"""Let the schema owner read escalation rows across tenants, for fleet-wide aggregates only.

`/metrics` exports time-to-claim and time-to-first-action percentiles computed in SQL over all
accounts by the owner (admin) connection. FORCE ROW LEVEL SECURITY hides every row from the owner
too, so this adds a SELECT-only policy for the role that ran the migration. The application role
(`flowpilot_app`) is unaffected and still sees only its tenant's rows.

Revision ID: 0004
Revises: 0003
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE POLICY owner_reads_aggregates ON session_handoffs FOR SELECT TO CURRENT_USER USING (true)")


def downgrade() -> None:
    op.execute("DROP POLICY IF EXISTS owner_reads_aggregates ON session_handoffs")
