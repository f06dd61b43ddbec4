"""SQLAlchemy Core tables. Alembic migrations are the only way the schema changes; this module
mirrors them for queries. Tenant tables carry `account_id` and are under row-level security
(see migrations and storage/tenancy.py); infrastructure tables (accounts, workspaces, inbound
de-dupe, jobs, outbox, conversation references) are outside RLS because they are read before
the tenant is known or swept across tenants."""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

NOW = text("now()")
UUID_DEFAULT = text("gen_random_uuid()")


def _id() -> Column:
    return Column("id", UUID(as_uuid=True), primary_key=True, server_default=UUID_DEFAULT)


def _account() -> Column:
    return Column("account_id", UUID(as_uuid=True), ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)


def _created() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW)


def _session_fk() -> Column:
    return Column("session_id", UUID(as_uuid=True), ForeignKey("ai_sessions.id", ondelete="CASCADE"), nullable=False)


# ----------------------------------------------------------------------------- global / infra
accounts = Table(
    "accounts", metadata,
    _id(),
    Column("name", String(200), nullable=False),
    _created(),
)

workspaces = Table(
    "workspaces", metadata,
    _id(),
    _account(),
    Column("platform", String(16), nullable=False),
    Column("external_id", String(128), nullable=False),
    Column("name", String(200)),
    _created(),
    UniqueConstraint("platform", "external_id"),
)

inbound_events = Table(
    "inbound_events", metadata,
    Column("platform", String(16), nullable=False),
    Column("workspace_id", String(128), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    PrimaryKeyConstraint("platform", "workspace_id", "event_id"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("account_id", UUID(as_uuid=True)),
    Column("kind", String(64), nullable=False),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="6"),
    Column("run_after", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("lease_until", DateTime(timezone=True)),
    Column("locked_by", String(128)),
    Column("lane_key", String(255)),
    Column("dedupe_key", String(255), unique=True),
    Column("last_error", Text),
    _created(),
    Column("finished_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('pending','running','done','failed')", name="status"),
)
Index("ix_jobs_due", jobs.c.run_after, postgresql_where=text("status = 'pending'"))
Index("ix_jobs_lane", jobs.c.lane_key, jobs.c.id, postgresql_where=text("status IN ('pending','running')"))

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("account_id", UUID(as_uuid=True), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("destination", JSONB, nullable=False),
    Column("op", String(16), nullable=False),
    Column("card_key", String(255)),
    Column("view", JSONB, nullable=False),
    Column("lane_key", String(255), nullable=False),
    Column("dedupe_key", String(255), unique=True),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("lease_until", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("message_ref", JSONB),
    _created(),
    Column("delivered_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('pending','sending','delivered','failed')", name="status"),
    CheckConstraint("op IN ('post','upsert','delete')", name="op"),
)
Index("ix_outbox_due", outbox.c.next_attempt_at, postgresql_where=text("status = 'pending'"))
Index("ix_outbox_lane", outbox.c.lane_key, outbox.c.id, postgresql_where=text("status IN ('pending','sending')"))

# Teams conversation references, captured on install and on every inbound activity.
conversation_refs = Table(
    "conversation_refs", metadata,
    Column("platform", String(16), nullable=False),
    Column("conversation_id", String(512), nullable=False),
    Column("account_id", UUID(as_uuid=True), nullable=False),
    Column("reference", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    PrimaryKeyConstraint("platform", "conversation_id"),
)

# ----------------------------------------------------------------------------- tenant tables
people = Table(
    "people", metadata,
    _id(),
    _account(),
    Column("display_name", String(200), nullable=False),
    Column("email", String(320)),
    Column("role", String(16), nullable=False, server_default="engineer"),
    _created(),
    CheckConstraint("role IN ('viewer','engineer','senior','admin')", name="role"),
)

identities = Table(
    "identities", metadata,
    _id(),
    _account(),
    Column("person_id", UUID(as_uuid=True), ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("workspace_id", String(128), nullable=False),
    Column("external_user_id", String(255), nullable=False),
    _created(),
    UniqueConstraint("platform", "workspace_id", "external_user_id"),
)

ai_sessions = Table(
    "ai_sessions", metadata,
    _id(),
    _account(),
    Column("user_id", UUID(as_uuid=True), ForeignKey("people.id"), nullable=False),
    Column("escalated_to_id", UUID(as_uuid=True), ForeignKey("people.id")),
    Column("intake_type", String(20), nullable=False, server_default="free_text"),
    Column("intake_content", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("title", String(300)),
    Column("problem_summary", Text),
    Column("problem_domain", String(100)),
    Column("status", String(30), nullable=False, server_default="active"),
    Column("psa_ticket_id", String(64)),
    Column("psa_connection_id", UUID(as_uuid=True), ForeignKey("psa_connections.id", ondelete="SET NULL")),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution_summary", String(500)),
    Column("escalation_reason", String(500)),
    Column("resolution_note_markdown", Text),
    Column("resolution_note_posted_at", DateTime(timezone=True)),
    Column("resolution_note_external_id", String(128)),
    Column("escalation_package_markdown", Text),
    Column("escalation_package_posted_at", DateTime(timezone=True)),
    Column("escalation_package_external_id", String(128)),
    Column("escalation_package", JSONB),
    Column("state_version", Integer, nullable=False, server_default="0"),
    Column("is_branching", Boolean, nullable=False, server_default=text("false")),
    Column("active_branch_id", UUID(as_uuid=True)),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint(
        "status IN ('active','paused','requesting_escalation','escalated','resolved','abandoned')",
        name="status",
    ),
)
Index("ix_ai_sessions_account_id", ai_sessions.c.account_id)

chat_threads = Table(
    "chat_threads", metadata,
    Column("session_id", UUID(as_uuid=True), ForeignKey("ai_sessions.id", ondelete="CASCADE"), primary_key=True),
    _account(),
    Column("platform", String(16), nullable=False),
    Column("workspace_id", String(128), nullable=False),
    Column("channel_id", String(255), nullable=False),
    Column("thread_id", String(512), nullable=False),
    _created(),
    UniqueConstraint("platform", "workspace_id", "channel_id", "thread_id"),
)

session_messages = Table(
    "session_messages", metadata,
    _id(),
    _account(),
    _session_fk(),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("author_id", UUID(as_uuid=True), ForeignKey("people.id")),
    Column("turn_job_id", BigInteger, unique=True),
    _created(),
    CheckConstraint("role IN ('user','assistant')", name="role"),
)
Index("ix_session_messages_session", session_messages.c.session_id, session_messages.c.created_at)

ai_session_steps = Table(
    "ai_session_steps", metadata,
    _id(),
    _account(),
    _session_fk(),
    Column("branch_id", UUID(as_uuid=True)),
    Column("step_order", Integer, nullable=False, server_default="0"),
    Column("step_type", String(32), nullable=False),
    Column("actor_id", UUID(as_uuid=True), ForeignKey("people.id")),
    Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _created(),
)
Index("ix_ai_session_steps_session", ai_session_steps.c.session_id)

session_branches = Table(
    "session_branches", metadata,
    _id(),
    _account(),
    _session_fk(),
    Column("fork_reason", Text),
    Column("label", String(200), nullable=False),
    Column("description", Text),
    _created(),
)

lane_items = Table(
    "lane_items", metadata,
    _id(),
    _account(),
    _session_fk(),
    Column("kind", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("context", Text),
    Column("command", Text),
    Column("description", Text),
    Column("action_type", String(64)),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("response", Text),
    Column("responded_by", UUID(as_uuid=True), ForeignKey("people.id")),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    CheckConstraint("kind IN ('question','check')", name="kind"),
    CheckConstraint("status IN ('open','answered','skipped','done','failed')", name="status"),
)
Index("ix_lane_items_session", lane_items.c.session_id, postgresql_where=text("active"))

session_facts = Table(
    "session_facts", metadata,
    _id(),
    _session_fk(),
    _account(),
    Column("text", Text, nullable=False),
    Column("source_type", String(32), nullable=False),
    Column("source_ref", UUID(as_uuid=True)),  # polymorphic, no FK (DOMAIN §2.4)
    Column("source_summary", Text),
    Column("created_by", UUID(as_uuid=True), ForeignKey("people.id"), nullable=False),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("deleted_at", DateTime(timezone=True)),
    CheckConstraint("source_type IN ('question','diagnostic_check','user_note','ai_synthesis')", name="source_type"),
    CheckConstraint("char_length(text) BETWEEN 1 AND 2000", name="text_len"),
    CheckConstraint("source_summary IS NULL OR char_length(source_summary) <= 200", name="summary_len"),
    CheckConstraint(
        "source_ref IS NULL OR source_type IN ('question','diagnostic_check')", name="ref_only_for_lane"
    ),
)
Index("ix_session_facts_live", session_facts.c.session_id, postgresql_where=text("deleted_at IS NULL"))
Index("ix_session_facts_account_id", session_facts.c.account_id)

FIX_STATUSES = "'proposed','applied_success','applied_failed','applied_partial','applied_pending','dismissed'"

session_suggested_fixes = Table(
    "session_suggested_fixes", metadata,
    _id(),
    _session_fk(),
    _account(),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("confidence_pct", Integer, nullable=False),
    Column("script_template_id", UUID(as_uuid=True)),
    Column("ai_drafted_script", Text),
    Column("ai_drafted_parameters", JSONB),
    Column("user_decision", String(32)),
    Column("status", String(20), nullable=False, server_default="proposed"),
    Column("applied_at", DateTime(timezone=True)),
    Column("verified_at", DateTime(timezone=True)),
    Column("partial_notes", Text),
    Column("failure_reason", Text),
    Column("pending_reason", Text),
    Column("ai_outcome_proposal", JSONB),
    Column("superseded_at", DateTime(timezone=True)),
    _created(),
    CheckConstraint("confidence_pct BETWEEN 0 AND 100", name="confidence"),
    CheckConstraint(
        "user_decision IS NULL OR user_decision IN ('one_off','draft_template','build_template','dismissed')",
        name="user_decision",
    ),
    CheckConstraint(f"status IN ({FIX_STATUSES})", name="status"),
)
Index("ix_fixes_active", session_suggested_fixes.c.session_id, postgresql_where=text("superseded_at IS NULL"))

session_handoffs = Table(
    "session_handoffs", metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),  # assigned before flush (DOMAIN §2.6)
    _account(),
    _session_fk(),
    Column("intent", String(16), nullable=False, server_default="escalate"),
    Column("handed_off_by", UUID(as_uuid=True), ForeignKey("people.id"), nullable=False),
    Column("target_user_id", UUID(as_uuid=True), ForeignKey("people.id")),
    Column("reason", String(500)),
    Column("claimed_by", UUID(as_uuid=True), ForeignKey("people.id")),
    Column("claimed_at", DateTime(timezone=True)),
    Column("first_action_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("snapshot", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("summary_status", String(16), nullable=False, server_default="pending"),
    Column("summary_prose", Text),
    Column("what_we_know", JSONB),
    Column("likely_cause", Text),
    Column("suggested_steps", JSONB),
    Column("confidence", String(16)),
    Column("audience_variants", JSONB, nullable=False,
           server_default=text("'{\"client_update\": null, \"email_draft\": null}'::jsonb")),
    Column("reping_count", Integer, nullable=False, server_default="0"),
    Column("next_reping_at", DateTime(timezone=True)),
    _created(),
    CheckConstraint("intent IN ('escalate','handoff')", name="intent"),
    CheckConstraint("summary_status IN ('pending','ready','failed')", name="summary_status"),
    CheckConstraint("confidence IS NULL OR confidence IN ('low','medium','high')", name="confidence"),
)
Index("ix_handoffs_unclaimed", session_handoffs.c.account_id, session_handoffs.c.created_at,
      postgresql_where=text("claimed_by IS NULL AND closed_at IS NULL"))

artifact_previews = Table(
    "artifact_previews", metadata,
    Column("kind", String(32), nullable=False),
    _session_fk(),
    Column("state_version", Integer, nullable=False),
    _account(),
    Column("markdown", Text, nullable=False),
    Column("target_ticket_ref", String(64)),
    Column("fallback", Boolean, nullable=False, server_default=text("false")),
    _created(),
    PrimaryKeyConstraint("kind", "session_id", "state_version"),
    CheckConstraint("kind IN ('resolution_note','escalation_package','status_update')", name="kind"),
)

account_settings = Table(
    "account_settings", metadata,
    Column("account_id", UUID(as_uuid=True), ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("preferences", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _created(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

escalation_routes = Table(
    "escalation_routes", metadata,
    _id(),
    _account(),
    Column("platform", String(16), nullable=False),
    Column("workspace_id", String(128), nullable=False),
    Column("channel_id", String(512), nullable=False),
    Column("channel_name", String(200)),
    Column("created_by", UUID(as_uuid=True), ForeignKey("people.id")),
    _created(),
    UniqueConstraint("account_id", "platform", "channel_id"),
)

psa_connections = Table(
    "psa_connections", metadata,
    _id(),
    _account(),
    Column("provider", String(32), nullable=False, server_default="connectwise"),
    Column("site_url", String(300), nullable=False),
    Column("company_id", String(100), nullable=False),
    Column("credentials_encrypted", Text, nullable=False),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    _created(),
)

psa_activity_log = Table(
    "psa_activity_log", metadata,
    _id(),
    _account(),
    _session_fk(),
    Column("kind", String(32), nullable=False),
    Column("state_version", Integer, nullable=False),
    Column("ticket_id", String(64), nullable=False),
    Column("external_id", String(128)),
    _created(),
    UniqueConstraint("session_id", "kind", "state_version"),
)

# References to the bot's own messages, so a later "update card X" edits the same message.
message_refs = Table(
    "message_refs", metadata,
    Column("card_key", String(255), primary_key=True),
    _account(),
    Column("platform", String(16), nullable=False),
    Column("ref", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
)

TENANT_TABLES = (
    "people", "identities", "ai_sessions", "chat_threads", "session_messages", "ai_session_steps",
    "session_branches", "lane_items", "session_facts", "session_suggested_fixes", "session_handoffs",
    "artifact_previews", "account_settings", "escalation_routes", "psa_connections",
    "psa_activity_log", "message_refs",
)
