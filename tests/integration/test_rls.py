"""Tenant isolation by row-level security, with two tenants."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.model import ChatThread, Person, Platform, Role, Session
from storage.tables import TENANT_TABLES


async def _tenant_with_session(store, name: str):
    account = await store.ensure_workspace("slack", f"T-{name}", name)
    async with store.unit(account) as uow:
        person = Person(id=uuid.uuid4(), account_id=account, display_name=f"{name} eng", role=Role.ENGINEER)
        await uow.people.add(person)
        session = Session(id=uuid.uuid4(), account_id=account, user_id=person.id, title=f"{name} problem")
        await uow.sessions.add(session)
    return account, person, session


async def test_reads_of_another_tenant_return_nothing(store):
    a, a_person, a_session = await _tenant_with_session(store, "alpha")
    b, b_person, b_session = await _tenant_with_session(store, "beta")
    async with store.unit(a) as uow:
        assert await uow.sessions.get(a_session.id) is not None
        assert await uow.sessions.get(b_session.id) is None
        assert await uow.people.get(b_person.id) is None
        count = (await uow.conn.execute(text("SELECT count(*) FROM ai_sessions"))).scalar_one()
        assert count == 1


async def test_writes_into_another_tenant_fail(store):
    a, _, _ = await _tenant_with_session(store, "alpha")
    b, b_person, b_session = await _tenant_with_session(store, "beta")
    with pytest.raises(DBAPIError, match="row-level security"):
        async with store.unit(a) as uow:
            await uow.conn.execute(
                text("INSERT INTO people (account_id, display_name) VALUES (:b, 'intruder')"), dict(b=b))
    async with store.unit(a) as uow:  # an UPDATE of B's row matches nothing
        res = await uow.conn.execute(text("UPDATE ai_sessions SET title = 'hijacked' WHERE id = :id"),
                                     dict(id=b_session.id))
        assert res.rowcount == 0
    async with store.unit(b) as uow:
        assert (await uow.sessions.get(b_session.id)).title == "beta problem"


async def test_no_tenant_sees_nothing(store, db):
    await _tenant_with_session(store, "alpha")
    async with db.no_tenant() as conn:
        for table in TENANT_TABLES:
            count = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            assert count == 0, table


async def test_app_role_cannot_bypass_rls(db):
    async with db.no_tenant() as conn:
        row = (await conn.execute(text(
            "SELECT current_user, r.rolbypassrls, r.rolsuper FROM pg_roles r WHERE r.rolname = current_user"
        ))).one()
    assert row[0] == "flowpilot_app" and row[1] is False and row[2] is False


async def test_every_tenant_table_forces_rls(db):
    async with db.admin.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(:t)"),
            dict(t=list(TENANT_TABLES)))).all()
    assert {r.relname for r in rows} == set(TENANT_TABLES)
    assert all(r.relrowsecurity and r.relforcerowsecurity for r in rows)


async def test_unit_without_tenant_fails_closed(store):
    with pytest.raises(RuntimeError, match="tenant not set"):
        async with store.unit(None):
            pass


async def _populate(store, account, person, session) -> dict:
    """One row in every tenant table of this account (raw SQL in the tenant's own transaction)."""
    ids = {"message": uuid.uuid4(), "item": uuid.uuid4(), "fact": uuid.uuid4(), "fix": uuid.uuid4(),
           "handoff": uuid.uuid4(), "psa": uuid.uuid4(), "job": 424242}
    statements = [
        "INSERT INTO identities (account_id, person_id, platform, workspace_id, external_user_id) "
        "VALUES (:a, :p, 'slack', 'T-beta', 'U-beta')",
        "UPDATE people SET email = 'beta@example.com' WHERE id = :p",
        "INSERT INTO chat_threads (session_id, account_id, platform, workspace_id, channel_id, thread_id) "
        "VALUES (:s, :a, 'slack', 'T-beta', 'C-beta', '111.222')",
        "INSERT INTO session_messages (id, account_id, session_id, role, content, author_id, turn_job_id) "
        "VALUES (:message, :a, :s, 'user', 'beta secret', :p, :job)",
        "INSERT INTO ai_session_steps (account_id, session_id, step_type) VALUES (:a, :s, 'action')",
        "INSERT INTO session_branches (account_id, session_id, label) VALUES (:a, :s, 'option A')",
        "INSERT INTO lane_items (id, account_id, session_id, kind, text) VALUES (:item, :a, :s, 'question', 'Q?')",
        "INSERT INTO session_facts (id, account_id, session_id, text, source_type, created_by) "
        "VALUES (:fact, :a, :s, 'beta fact', 'user_note', :p)",
        "INSERT INTO session_suggested_fixes (id, account_id, session_id, title, description, confidence_pct) "
        "VALUES (:fix, :a, :s, 'beta fix', 'd', 50)",
        "INSERT INTO session_handoffs (id, account_id, session_id, handed_off_by) VALUES (:handoff, :a, :s, :p)",
        "INSERT INTO artifact_previews (kind, session_id, state_version, account_id, markdown) "
        "VALUES ('resolution_note', :s, 0, :a, 'beta note')",
        "INSERT INTO account_settings (account_id, preferences) VALUES (:a, '{\"cw_resolved_status_id\": 7}')",
        "INSERT INTO escalation_routes (account_id, platform, workspace_id, channel_id) "
        "VALUES (:a, 'slack', 'T-beta', 'C-seniors')",
        "INSERT INTO psa_connections (id, account_id, site_url, company_id, credentials_encrypted, is_active) "
        "VALUES (:psa, :a, 'https://cw.beta.example', 'beta', 'x', true)",
        "INSERT INTO psa_activity_log (account_id, session_id, kind, state_version, ticket_id) "
        "VALUES (:a, :s, 'resolution_note', 0, '48291')",
        "INSERT INTO message_refs (card_key, account_id, platform, ref) VALUES ('header:beta', :a, 'slack', '{}')",
    ]
    async with store.unit(account) as uow:
        for sql in statements:
            await uow.conn.execute(text(sql), dict(a=account, p=person.id, s=session.id, **ids))
    return ids


async def test_every_repository_read_returns_nothing_for_the_other_tenants_ids(store, db):
    a, a_person, a_session = await _tenant_with_session(store, "alpha")
    b, b_person, b_session = await _tenant_with_session(store, "beta")
    ids = await _populate(store, b, b_person, b_session)
    async with db.admin.connect() as conn:  # every tenant table really holds a row of B's
        for table in TENANT_TABLES:
            n = (await conn.execute(text(f"SELECT count(*) FROM {table} WHERE account_id = :b"),
                                    dict(b=b))).scalar_one()
            assert n >= 1, table

    s = b_session.id
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    async with store.unit(a) as uow:
        empty = {
            "people.get": await uow.people.get(b_person.id),
            "people.by_identity": await uow.people.by_identity("slack", "T-beta", "U-beta"),
            "people.by_email": await uow.people.by_email("beta@example.com"),
            "people.by_name": await uow.people.by_name("beta eng"),
            "people.identities_of": await uow.people.identities_of(b_person.id),
            "sessions.get": await uow.sessions.get(s),
            "sessions.get(lock)": await uow.sessions.get(s, lock=True),
            "sessions.by_thread": await uow.sessions.by_thread(
                ChatThread(Platform.SLACK, "T-beta", "C-beta", "111.222")),
            "sessions.count_steps": await uow.sessions.count_steps(s),
            "messages.history": await uow.messages.history(s),
            "messages.count": await uow.messages.count(s, "user"),
            "messages.get": await uow.messages.get(ids["message"]),
            "messages.reply_for_job": await uow.messages.reply_for_job(ids["job"]),
            "messages.user_messages_since": await uow.messages.user_messages_since(s, epoch, [b_person.id]),
            "lane.active": await uow.lane.active(s),
            "lane.all": await uow.lane.all(s),
            "lane.get": await uow.lane.get(ids["item"], lock=True),
            "facts.live": await uow.facts.live(s),
            "facts.get": await uow.facts.get(ids["fact"], lock=True),
            "fixes.get": await uow.fixes.get(ids["fix"], lock=True),
            "fixes.active": await uow.fixes.active(s),
            "fixes.all": await uow.fixes.all(s),
            "handoffs.get": await uow.handoffs.get(ids["handoff"]),
            "handoffs.latest_for_session": await uow.handoffs.latest_for_session(s),
            "handoffs.open_queue": await uow.handoffs.open_queue(None),
            "settings.preferences": await uow.settings.preferences(),
            "routes.all": await uow.routes.all(),
            "previews.get": await uow.previews.get("resolution_note", s, 0),
            "psa.active_connection": await uow.psa.active_connection(),
            "psa.connection": await uow.psa.connection(ids["psa"]),
            "psa.logged": await uow.psa.logged(s, "resolution_note", 0),
            "refs.get": await uow.refs.get("header:beta"),
        }
        leaked = {name: value for name, value in empty.items() if value not in (None, [], {}, 0)}
        assert leaked == {}
        assert b_person.id not in {p.id for p in await uow.people.with_role_at_least(Role.VIEWER)}
        assert (await uow.handoffs.claim_metrics(30))["escalations"] == 0
        # writes aimed at B's rows match nothing
        assert await uow.fixes.supersede_active(s) == []
        assert await uow.handoffs.try_claim(ids["handoff"], a_person.id) is None
        await uow.people.set_role(b_person.id, Role.ADMIN)
        await uow.handoffs.mark_first_action(s, b_person.id)
    async with store.unit(b) as uow:
        assert (await uow.fixes.get(ids["fix"])).superseded_at is None
        assert (await uow.handoffs.get(ids["handoff"])).claimed_by is None
        assert (await uow.people.get(b_person.id)).role == Role.ENGINEER
        assert (await uow.psa.active_connection())["id"] == ids["psa"]


async def test_only_the_migration_owner_reads_handoffs_across_tenants_and_only_handoffs(db):
    """Migration 0004: a SELECT-only policy for the owner on session_handoffs (fleet metrics); the
    app role is still confined, and no other table gets such a policy."""
    async with db.admin.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT tablename, cmd FROM pg_policies WHERE policyname = 'owner_reads_aggregates'"))).all()
        app_roles = (await conn.execute(text(
            "SELECT roles FROM pg_policies WHERE policyname = 'owner_reads_aggregates'"))).scalar_one()
    assert [(r.tablename, r.cmd) for r in rows] == [("session_handoffs", "SELECT")]
    assert "flowpilot_app" not in app_roles
