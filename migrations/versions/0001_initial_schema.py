"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 00:56:49.174648
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    op.create_table('conversation_refs',
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('conversation_id', sa.String(length=512), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('reference', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'conversation_id', name=op.f('pk_conversation_refs'))
    )
    op.create_table('inbound_events',
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('workspace_id', sa.String(length=128), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('platform', 'workspace_id', 'event_id', name=op.f('pk_inbound_events'))
    )
    op.create_table('jobs',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=True),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('max_attempts', sa.Integer(), server_default='6', nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('locked_by', sa.String(length=128), nullable=True),
    sa.Column('lane_key', sa.String(length=255), nullable=True),
    sa.Column('dedupe_key', sa.String(length=255), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending','running','done','failed')", name=op.f('ck_jobs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_jobs_dedupe_key'))
    )
    op.create_index('ix_jobs_due', 'jobs', ['run_after'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_jobs_lane', 'jobs', ['lane_key', 'id'], unique=False, postgresql_where=sa.text("status IN ('pending','running')"))
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('destination', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('op', sa.String(length=16), nullable=False),
    sa.Column('card_key', sa.String(length=255), nullable=True),
    sa.Column('view', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('lane_key', sa.String(length=255), nullable=False),
    sa.Column('dedupe_key', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('message_ref', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("op IN ('post','upsert','delete')", name=op.f('ck_outbox_op')),
    sa.CheckConstraint("status IN ('pending','sending','delivered','failed')", name=op.f('ck_outbox_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_dedupe_key'))
    )
    op.create_index('ix_outbox_due', 'outbox', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_outbox_lane', 'outbox', ['lane_key', 'id'], unique=False, postgresql_where=sa.text("status IN ('pending','sending')"))
    op.create_table('account_settings',
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('preferences', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_settings_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_account_settings'))
    )
    op.create_table('message_refs',
    sa.Column('card_key', sa.String(length=255), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('ref', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_message_refs_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('card_key', name=op.f('pk_message_refs'))
    )
    op.create_table('people',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('role', sa.String(length=16), server_default='engineer', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('viewer','engineer','senior','admin')", name=op.f('ck_people_role')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_people_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people'))
    )
    op.create_table('psa_connections',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('provider', sa.String(length=32), server_default='connectwise', nullable=False),
    sa.Column('site_url', sa.String(length=300), nullable=False),
    sa.Column('company_id', sa.String(length=100), nullable=False),
    sa.Column('credentials_encrypted', sa.Text(), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_psa_connections_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psa_connections'))
    )
    op.create_table('workspaces',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_workspaces_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workspaces')),
    sa.UniqueConstraint('platform', 'external_id', name=op.f('uq_workspaces_platform_external_id'))
    )
    op.create_table('ai_sessions',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('escalated_to_id', sa.UUID(), nullable=True),
    sa.Column('intake_type', sa.String(length=20), server_default='free_text', nullable=False),
    sa.Column('intake_content', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=True),
    sa.Column('problem_summary', sa.Text(), nullable=True),
    sa.Column('problem_domain', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=30), server_default='active', nullable=False),
    sa.Column('psa_ticket_id', sa.String(length=64), nullable=True),
    sa.Column('psa_connection_id', sa.UUID(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_summary', sa.String(length=500), nullable=True),
    sa.Column('escalation_reason', sa.String(length=500), nullable=True),
    sa.Column('resolution_note_markdown', sa.Text(), nullable=True),
    sa.Column('resolution_note_posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution_note_external_id', sa.String(length=128), nullable=True),
    sa.Column('escalation_package_markdown', sa.Text(), nullable=True),
    sa.Column('escalation_package_posted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalation_package_external_id', sa.String(length=128), nullable=True),
    sa.Column('escalation_package', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('state_version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('is_branching', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('active_branch_id', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('active','paused','requesting_escalation','escalated','resolved','abandoned')", name=op.f('ck_ai_sessions_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_ai_sessions_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['escalated_to_id'], ['people.id'], name=op.f('fk_ai_sessions_escalated_to_id_people')),
    sa.ForeignKeyConstraint(['psa_connection_id'], ['psa_connections.id'], name=op.f('fk_ai_sessions_psa_connection_id_psa_connections'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['people.id'], name=op.f('fk_ai_sessions_user_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_sessions'))
    )
    op.create_index('ix_ai_sessions_account_id', 'ai_sessions', ['account_id'], unique=False)
    op.create_table('escalation_routes',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('workspace_id', sa.String(length=128), nullable=False),
    sa.Column('channel_id', sa.String(length=512), nullable=False),
    sa.Column('channel_name', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_escalation_routes_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['people.id'], name=op.f('fk_escalation_routes_created_by_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_routes')),
    sa.UniqueConstraint('account_id', 'platform', 'channel_id', name=op.f('uq_escalation_routes_account_id_platform_channel_id'))
    )
    op.create_table('identities',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('person_id', sa.UUID(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('workspace_id', sa.String(length=128), nullable=False),
    sa.Column('external_user_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_identities_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_identities_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_identities')),
    sa.UniqueConstraint('platform', 'workspace_id', 'external_user_id', name=op.f('uq_identities_platform_workspace_id_external_user_id'))
    )
    op.create_table('ai_session_steps',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('branch_id', sa.UUID(), nullable=True),
    sa.Column('step_order', sa.Integer(), server_default='0', nullable=False),
    sa.Column('step_type', sa.String(length=32), nullable=False),
    sa.Column('actor_id', sa.UUID(), nullable=True),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_ai_session_steps_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['actor_id'], ['people.id'], name=op.f('fk_ai_session_steps_actor_id_people')),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_ai_session_steps_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_session_steps'))
    )
    op.create_index('ix_ai_session_steps_session', 'ai_session_steps', ['session_id'], unique=False)
    op.create_table('artifact_previews',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('state_version', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('markdown', sa.Text(), nullable=False),
    sa.Column('target_ticket_ref', sa.String(length=64), nullable=True),
    sa.Column('fallback', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('resolution_note','escalation_package','status_update')", name=op.f('ck_artifact_previews_kind')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_artifact_previews_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_artifact_previews_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('kind', 'session_id', 'state_version', name=op.f('pk_artifact_previews'))
    )
    op.create_table('chat_threads',
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('workspace_id', sa.String(length=128), nullable=False),
    sa.Column('channel_id', sa.String(length=255), nullable=False),
    sa.Column('thread_id', sa.String(length=512), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_chat_threads_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_chat_threads_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('session_id', name=op.f('pk_chat_threads')),
    sa.UniqueConstraint('platform', 'workspace_id', 'channel_id', 'thread_id', name=op.f('uq_chat_threads_platform_workspace_id_channel_id_thread_id'))
    )
    op.create_table('lane_items',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('context', sa.Text(), nullable=True),
    sa.Column('command', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('action_type', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='open', nullable=False),
    sa.Column('response', sa.Text(), nullable=True),
    sa.Column('responded_by', sa.UUID(), nullable=True),
    sa.Column('position', sa.Integer(), server_default='0', nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('question','check')", name=op.f('ck_lane_items_kind')),
    sa.CheckConstraint("status IN ('open','answered','skipped','done','failed')", name=op.f('ck_lane_items_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_lane_items_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['responded_by'], ['people.id'], name=op.f('fk_lane_items_responded_by_people')),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_lane_items_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lane_items'))
    )
    op.create_index('ix_lane_items_session', 'lane_items', ['session_id'], unique=False, postgresql_where=sa.text('active'))
    op.create_table('psa_activity_log',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state_version', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_psa_activity_log_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_psa_activity_log_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_psa_activity_log')),
    sa.UniqueConstraint('session_id', 'kind', 'state_version', name=op.f('uq_psa_activity_log_session_id_kind_state_version'))
    )
    op.create_table('session_branches',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('fork_reason', sa.Text(), nullable=True),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_session_branches_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_session_branches_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_branches'))
    )
    op.create_table('session_facts',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('source_type', sa.String(length=32), nullable=False),
    sa.Column('source_ref', sa.UUID(), nullable=True),
    sa.Column('source_summary', sa.Text(), nullable=True),
    sa.Column('created_by', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("source_ref IS NULL OR source_type IN ('question','diagnostic_check')", name=op.f('ck_session_facts_ref_only_for_lane')),
    sa.CheckConstraint("source_type IN ('question','diagnostic_check','user_note','ai_synthesis')", name=op.f('ck_session_facts_source_type')),
    sa.CheckConstraint('char_length(text) BETWEEN 1 AND 2000', name=op.f('ck_session_facts_text_len')),
    sa.CheckConstraint('source_summary IS NULL OR char_length(source_summary) <= 200', name=op.f('ck_session_facts_summary_len')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_session_facts_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['people.id'], name=op.f('fk_session_facts_created_by_people')),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_session_facts_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_facts'))
    )
    op.create_index('ix_session_facts_account_id', 'session_facts', ['account_id'], unique=False)
    op.create_index('ix_session_facts_live', 'session_facts', ['session_id'], unique=False, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('session_handoffs',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('intent', sa.String(length=16), server_default='escalate', nullable=False),
    sa.Column('handed_off_by', sa.UUID(), nullable=False),
    sa.Column('target_user_id', sa.UUID(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('claimed_by', sa.UUID(), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_action_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('snapshot', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('summary_status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('summary_prose', sa.Text(), nullable=True),
    sa.Column('what_we_know', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('likely_cause', sa.Text(), nullable=True),
    sa.Column('suggested_steps', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('confidence', sa.String(length=16), nullable=True),
    sa.Column('audience_variants', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text('\'{"client_update": null, "email_draft": null}\'::jsonb'), nullable=False),
    sa.Column('reping_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_reping_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("confidence IS NULL OR confidence IN ('low','medium','high')", name=op.f('ck_session_handoffs_confidence')),
    sa.CheckConstraint("intent IN ('escalate','handoff')", name=op.f('ck_session_handoffs_intent')),
    sa.CheckConstraint("summary_status IN ('pending','ready','failed')", name=op.f('ck_session_handoffs_summary_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_session_handoffs_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['claimed_by'], ['people.id'], name=op.f('fk_session_handoffs_claimed_by_people')),
    sa.ForeignKeyConstraint(['handed_off_by'], ['people.id'], name=op.f('fk_session_handoffs_handed_off_by_people')),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_session_handoffs_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_user_id'], ['people.id'], name=op.f('fk_session_handoffs_target_user_id_people')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_handoffs'))
    )
    op.create_index('ix_handoffs_unclaimed', 'session_handoffs', ['account_id', 'created_at'], unique=False, postgresql_where=sa.text('claimed_by IS NULL AND closed_at IS NULL'))
    op.create_table('session_messages',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('author_id', sa.UUID(), nullable=True),
    sa.Column('turn_job_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('user','assistant')", name=op.f('ck_session_messages_role')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_session_messages_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['author_id'], ['people.id'], name=op.f('fk_session_messages_author_id_people')),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_session_messages_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_messages')),
    sa.UniqueConstraint('turn_job_id', name=op.f('uq_session_messages_turn_job_id'))
    )
    op.create_index('ix_session_messages_session', 'session_messages', ['session_id', 'created_at'], unique=False)
    op.create_table('session_suggested_fixes',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('account_id', sa.UUID(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('confidence_pct', sa.Integer(), nullable=False),
    sa.Column('script_template_id', sa.UUID(), nullable=True),
    sa.Column('ai_drafted_script', sa.Text(), nullable=True),
    sa.Column('ai_drafted_parameters', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('user_decision', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=20), server_default='proposed', nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('partial_notes', sa.Text(), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('pending_reason', sa.Text(), nullable=True),
    sa.Column('ai_outcome_proposal', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('proposed','applied_success','applied_failed','applied_partial','applied_pending','dismissed')", name=op.f('ck_session_suggested_fixes_status')),
    sa.CheckConstraint("user_decision IS NULL OR user_decision IN ('one_off','draft_template','build_template','dismissed')", name=op.f('ck_session_suggested_fixes_user_decision')),
    sa.CheckConstraint('confidence_pct BETWEEN 0 AND 100', name=op.f('ck_session_suggested_fixes_confidence')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_session_suggested_fixes_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['ai_sessions.id'], name=op.f('fk_session_suggested_fixes_session_id_ai_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_session_suggested_fixes'))
    )
    op.create_index('ix_fixes_active', 'session_suggested_fixes', ['session_id'], unique=False, postgresql_where=sa.text('superseded_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_fixes_active', table_name='session_suggested_fixes', postgresql_where=sa.text('superseded_at IS NULL'))
    op.drop_table('session_suggested_fixes')
    op.drop_index('ix_session_messages_session', table_name='session_messages')
    op.drop_table('session_messages')
    op.drop_index('ix_handoffs_unclaimed', table_name='session_handoffs', postgresql_where=sa.text('claimed_by IS NULL AND closed_at IS NULL'))
    op.drop_table('session_handoffs')
    op.drop_index('ix_session_facts_live', table_name='session_facts', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_session_facts_account_id', table_name='session_facts')
    op.drop_table('session_facts')
    op.drop_table('session_branches')
    op.drop_table('psa_activity_log')
    op.drop_index('ix_lane_items_session', table_name='lane_items', postgresql_where=sa.text('active'))
    op.drop_table('lane_items')
    op.drop_table('chat_threads')
    op.drop_table('artifact_previews')
    op.drop_index('ix_ai_session_steps_session', table_name='ai_session_steps')
    op.drop_table('ai_session_steps')
    op.drop_table('identities')
    op.drop_table('escalation_routes')
    op.drop_index('ix_ai_sessions_account_id', table_name='ai_sessions')
    op.drop_table('ai_sessions')
    op.drop_table('workspaces')
    op.drop_table('psa_connections')
    op.drop_table('people')
    op.drop_table('message_refs')
    op.drop_table('account_settings')
    op.drop_index('ix_outbox_lane', table_name='outbox', postgresql_where=sa.text("status IN ('pending','sending')"))
    op.drop_index('ix_outbox_due', table_name='outbox', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('outbox')
    op.drop_index('ix_jobs_lane', table_name='jobs', postgresql_where=sa.text("status IN ('pending','running')"))
    op.drop_index('ix_jobs_due', table_name='jobs', postgresql_where=sa.text("status = 'pending'"))
    op.drop_table('jobs')
    op.drop_table('inbound_events')
    op.drop_table('conversation_refs')
    op.drop_table('accounts')
