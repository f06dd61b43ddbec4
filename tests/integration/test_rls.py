"""Tenant isolation by row-level security, with two tenants."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.model import Person, Role, Session
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
