"""`psa connect` and credential hygiene (DOMAIN §7.1–§7.2): only admins connect ConnectWise, new
credentials are tested against ConnectWise before they are activated, they are stored encrypted,
and no key ever reaches a log record or a database column in clear text."""
from __future__ import annotations

import base64
import logging
import uuid

import pytest
from sqlalchemy import text

from core.model import SessionStatus
from storage.secrets import SecretBox, SecretKeyError, generate_key
from storage.tables import metadata
from tests.fakes.connectwise import FakeConnectWise
from tests.harness import console_inbound, running
from tests.harness import test_settings as make_settings

ADMIN = "U-admin"
TICKET = 48291
PUBLIC_KEY = "pubKey-Zq81xLkTm3"
PRIVATE_KEY = "privKey-9vR2mWq7sEcReT"
WRONG_PRIVATE_KEY = "privKey-WRONG-4Hk2pQx"
RESOLVED_ID, ESCALATED_ID = 17, 23
NOTE = ("## Problem\nThe printer was offline.\n\n## What we confirmed\n- Spooler stuck.\n\n## Root cause\nA stuck job."
        "\n\n## Resolution\nCleared the queue.")


def admin(**kw):
    return console_inbound(user=ADMIN, name="Ada Admin", **kw)


def form_fields(cw: FakeConnectWise, private_key: str, **extra: str) -> dict[str, str]:
    return {"site_url": cw.url, "company_id": cw.company_id, "public_key": cw.public_key,
            "private_key": private_key, **extra}


def secrets_in(value: str) -> list[str]:
    """Every way the credentials could leak: the keys themselves and the Basic auth token."""
    found = [s for s in (PUBLIC_KEY, PRIVATE_KEY, WRONG_PRIVATE_KEY) if s in value]
    for private in (PRIVATE_KEY, WRONG_PRIVATE_KEY):
        token = base64.b64encode(f"flowpilot_test+{PUBLIC_KEY}:{private}".encode()).decode()
        if token in value:
            found.append("basic-auth token")
    return found


async def connections(db) -> list[dict]:
    async with db.admin.begin() as conn:
        return [dict(r._mapping) for r in (await conn.execute(text("SELECT * FROM psa_connections"))).all()]


async def preferences(db) -> dict:
    async with db.admin.begin() as conn:
        rows = (await conn.execute(text("SELECT preferences FROM account_settings"))).all()
    merged: dict = {}
    for row in rows:
        merged.update(row[0] or {})
    return merged


async def all_rows_as_text(db) -> str:
    async with db.admin.begin() as conn:
        parts = []
        for table in metadata.sorted_tables:
            rows = (await conn.execute(text(f"SELECT t::text FROM {table.name} t"))).all()
            parts.extend(r[0] for r in rows)
    return "\n".join(parts)


async def test_engineers_cannot_connect_the_psa(db, database_url):
    key = generate_key()
    async with FakeConnectWise(public_key=PUBLIC_KEY, private_key=PRIVATE_KEY) as cw, \
            running(database_url, settings=make_settings(FLOWPILOT_SECRET_KEY=key, CW_CLIENT_ID=cw.client_id,
                                                         FLOWPILOT_ADMINS=ADMIN)) as h:
        shown = await h.copilot.command(console_inbound(), "psa connect")
        assert shown.error is not None and shown.error.category == "forbidden"
        assert "Only admins" in str(shown.error) and shown.form is None
        submitted = await h.copilot.action(console_inbound(), "psa_connect", {}, fields=form_fields(cw, PRIVATE_KEY))
        assert submitted.error is not None and submitted.error.category == "forbidden"
        assert await connections(db) == []
        assert cw.calls == []


async def test_the_form_checks_its_inputs_before_anything_is_stored(db, database_url):
    async with FakeConnectWise(public_key=PUBLIC_KEY, private_key=PRIVATE_KEY) as cw, \
            running(database_url, settings=make_settings(FLOWPILOT_SECRET_KEY=generate_key(),
                                                         CW_CLIENT_ID=cw.client_id, FLOWPILOT_ADMINS=ADMIN)) as h:
        missing = await h.copilot.action(admin(), "psa_connect", {}, fields=form_fields(cw, ""))
        assert missing.error.category == "invalid_input" and missing.error.field == "private_key"
        bad_url = await h.copilot.action(admin(), "psa_connect", {},
                                         fields={**form_fields(cw, PRIVATE_KEY), "site_url": "cw.example"})
        assert bad_url.error.category == "invalid_input" and bad_url.error.field == "site_url"
        bad_status = await h.copilot.action(admin(), "psa_connect", {},
                                            fields=form_fields(cw, PRIVATE_KEY, resolved_status_id="Resolved"))
        assert bad_status.error.category == "invalid_input" and bad_status.error.field == "resolved_status_id"
        assert await connections(db) == []


async def test_psa_connect_tests_credentials_stores_them_encrypted_and_never_logs_them(db, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # SQL and its parameters too (its default is WARN)
    key = generate_key()
    async with FakeConnectWise(public_key=PUBLIC_KEY, private_key=PRIVATE_KEY) as cw:
        cw.add_status(RESOLVED_ID, "Resolved")
        cw.add_ticket(TICKET, "Front desk printer offline", company="Contoso Ltd")
        settings = make_settings(FLOWPILOT_SECRET_KEY=key, CW_CLIENT_ID=cw.client_id, FLOWPILOT_ADMINS=ADMIN)
        async with running(database_url, settings=settings) as h:
            h.fake_ai.responder = lambda body: NOTE if "resolution note" in str(body.get("system")) else "Okay."
            form = (await h.copilot.command(admin(), "psa connect")).form
            assert form is not None and form.action == "psa_connect"
            assert {f.name: f.kind for f in form.fields}["private_key"] == "secret"

            # a wrong private key: ConnectWise refuses it, nothing is activated, the admin is told why
            wrong = await h.copilot.action(admin(), "psa_connect", {}, fields=form_fields(
                cw, WRONG_PRIVATE_KEY, resolved_status_id=str(RESOLVED_ID)))
            assert wrong.ok, wrong.error
            assert "Testing" in wrong.text
            failed = await h.console.wait_for(
                lambda: [t for t in h.console.texts() if t.startswith("ConnectWise connection failed")])
            assert "rejected the credentials (HTTP 401)" in failed[0]
            assert await connections(db) == []
            assert "cw_resolved_status_id" not in await preferences(db)

            # the right keys: tested, activated, status ids stored for the account
            good = await h.copilot.action(admin(), "psa_connect", {}, fields=form_fields(
                cw, PRIVATE_KEY, resolved_status_id=str(RESOLVED_ID), escalated_status_id=str(ESCALATED_ID)))
            assert good.ok, good.error
            await h.console.wait_for(
                lambda: [t for t in h.console.texts() if t.startswith("ConnectWise is connected")])
            rows = await connections(db)
            assert len(rows) == 1 and rows[0]["is_active"] is True
            assert rows[0]["site_url"] == cw.url and rows[0]["company_id"] == cw.company_id
            prefs = await preferences(db)
            assert prefs["cw_resolved_status_id"] == RESOLVED_ID and prefs["cw_escalated_status_id"] == ESCALATED_ID

            # the connection made through the form is the one a new ticketed session posts through
            started = await h.copilot.command(console_inbound(), f"new Printer down #{TICKET}")
            sid = started.session_id
            await h.console.wait_for(lambda: [v for v in h.console.views("lane") if v.session_id == sid])
            await h.copilot.action(console_inbound(), "resolve", {"session_id": sid})
            preview = await h.console.wait_for(lambda: [v for v in h.console.views("preview") if v.session_id == sid])
            confirm = next(b for b in preview[-1].buttons if b.action == "preview_confirm")
            assert (await h.copilot.action(console_inbound(), "preview_confirm", dict(confirm.value))).ok
            await h.console.wait_for(
                lambda: [t for t in h.console.texts() if t == f"Posted to CW #{TICKET} · status verified: Resolved"])
            account = await h.store.ensure_workspace("console", "console-ws")
            async with h.store.unit(account) as uow:
                session = await uow.sessions.get(uuid.UUID(sid))
            assert session.status == SessionStatus.RESOLVED and session.psa_connection_id == rows[0]["id"]

    # nothing in clear text in the database …
    stored = rows[0]["credentials_encrypted"]
    assert secrets_in(stored) == []
    assert secrets_in(await all_rows_as_text(db)) == []
    assert SecretBox(key).decrypt_json(stored) == {"public_key": PUBLIC_KEY, "private_key": PRIVATE_KEY}
    with pytest.raises(SecretKeyError):
        SecretBox(generate_key()).decrypt_json(stored)
    # … nor in any log record, message, extra field or exception text
    names = {record.name for record in caplog.records}
    assert {"sqlalchemy.engine.Engine", "adapters.connectwise.client"} <= names  # DEBUG really was on
    assert any("psa_connections" in record.getMessage() for record in caplog.records)
    formatter = logging.Formatter()
    for record in caplog.records:
        rendered = formatter.format(record) + repr(vars(record))
        assert secrets_in(rendered) == [], (record.name, record.getMessage())


async def test_a_connection_that_cannot_be_reached_is_reported_and_not_saved(db, database_url):
    async with FakeConnectWise(public_key=PUBLIC_KEY, private_key=PRIVATE_KEY) as cw, \
            running(database_url, settings=make_settings(FLOWPILOT_SECRET_KEY=generate_key(),
                                                         CW_CLIENT_ID=cw.client_id, FLOWPILOT_ADMINS=ADMIN)) as h:
        cw.down()
        reply = await h.copilot.action(admin(), "psa_connect", {}, fields=form_fields(cw, PRIVATE_KEY))
        assert reply.ok, reply.error
        failed = await h.console.wait_for(
            lambda: [t for t in h.console.texts() if t.startswith("ConnectWise connection failed")])
        assert "Could not reach ConnectWise" in failed[0]
        assert await connections(db) == []


async def test_without_a_secret_key_the_psa_cannot_be_connected(db, database_url):
    async with FakeConnectWise(public_key=PUBLIC_KEY, private_key=PRIVATE_KEY) as cw, \
            running(database_url, settings=make_settings(CW_CLIENT_ID=cw.client_id, FLOWPILOT_ADMINS=ADMIN)) as h:
        reply = await h.copilot.action(admin(), "psa_connect", {}, fields=form_fields(cw, PRIVATE_KEY))
        assert reply.error is not None and "FLOWPILOT_SECRET_KEY" in str(reply.error)
        assert await connections(db) == []


async def test_new_keys_for_the_same_company_keep_open_sessions_posting(db, database_url):
    key = generate_key()
    async with FakeConnectWise(public_key=PUBLIC_KEY, private_key=PRIVATE_KEY) as cw:
        cw.add_status(RESOLVED_ID, "Resolved")
        cw.add_ticket(TICKET, "Front desk printer offline")
        settings = make_settings(FLOWPILOT_SECRET_KEY=key, CW_CLIENT_ID=cw.client_id, FLOWPILOT_ADMINS=ADMIN)
        async with running(database_url, settings=settings) as h:
            h.fake_ai.responder = lambda body: NOTE if "resolution note" in str(body.get("system")) else "Okay."
            await h.copilot.action(admin(), "psa_connect", {}, fields=form_fields(
                cw, PRIVATE_KEY, resolved_status_id=str(RESOLVED_ID)))
            await h.console.wait_for(lambda: [t for t in h.console.texts() if t.startswith("ConnectWise is connected")])
            first = await connections(db)
            started = await h.copilot.command(console_inbound(), f"new Printer down #{TICKET}")
            sid = started.session_id
            await h.console.wait_for(lambda: [v for v in h.console.views("lane") if v.session_id == sid])

            cw.private_key = "privKey-rotated-77Qa"  # the MSP rotates the API member's keys in ConnectWise
            await h.copilot.action(admin(), "psa_connect", {}, fields=form_fields(cw, cw.private_key))
            await h.console.wait_for(
                lambda: [t for t in h.console.texts() if t.startswith("ConnectWise credentials updated")])
            rows = await connections(db)
            assert [r["id"] for r in rows] == [first[0]["id"]] and rows[0]["is_active"] is True
            assert SecretBox(key).decrypt_json(rows[0]["credentials_encrypted"])["private_key"] == cw.private_key

            await h.copilot.action(console_inbound(), "resolve", {"session_id": sid})
            preview = await h.console.wait_for(lambda: [v for v in h.console.views("preview") if v.session_id == sid])
            confirm = next(b for b in preview[-1].buttons if b.action == "preview_confirm")
            assert (await h.copilot.action(console_inbound(), "preview_confirm", dict(confirm.value))).ok
            await h.console.wait_for(
                lambda: [t for t in h.console.texts() if t == f"Posted to CW #{TICKET} · status verified: Resolved"])
            assert len(cw.calls_to("POST", f"/service/tickets/{TICKET}/notes")) == 1


async def test_env_configured_credentials_stay_out_of_logs_and_tables_even_on_failures(db, database_url, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    key = generate_key()
    async with FakeConnectWise(public_key=PUBLIC_KEY, private_key=PRIVATE_KEY) as cw:
        cw.add_status(RESOLVED_ID, "Resolved")
        cw.add_ticket(TICKET, "Front desk printer offline")
        settings = make_settings(FLOWPILOT_SECRET_KEY=key, CW_CLIENT_ID=cw.client_id, CW_SITE_URL=cw.url,
                                 CW_COMPANY_ID=cw.company_id, CW_PUBLIC_KEY=PUBLIC_KEY, CW_PRIVATE_KEY=PRIVATE_KEY,
                                 CW_RESOLVED_STATUS_ID=RESOLVED_ID, FLOWPILOT_JOB_MAX_ATTEMPTS=2)
        assert secrets_in(repr(settings)) == []
        async with running(database_url, settings=settings) as h:
            h.fake_ai.responder = lambda body: NOTE if "resolution note" in str(body.get("system")) else "Okay."
            started = await h.copilot.command(console_inbound(), f"new Printer down #{TICKET}")
            sid = started.session_id
            await h.console.wait_for(lambda: [v for v in h.console.views("lane") if v.session_id == sid])
            cw.private_key = WRONG_PRIVATE_KEY  # ConnectWise now refuses the stored keys: errors get logged
            await h.copilot.action(console_inbound(), "resolve", {"session_id": sid})
            preview = await h.console.wait_for(lambda: [v for v in h.console.views("preview") if v.session_id == sid])
            confirm = next(b for b in preview[-1].buttons if b.action == "preview_confirm")
            assert (await h.copilot.action(console_inbound(), "preview_confirm", dict(confirm.value))).ok
            refused = await h.console.wait_for(
                lambda: [t for t in h.console.texts() if t.startswith(f"⚠️ Could not post to CW #{TICKET}")])
            assert "rejected the credentials (HTTP 401)" in refused[0]
    assert secrets_in(await all_rows_as_text(db)) == []
    stored = (await connections(db))[0]["credentials_encrypted"]
    assert SecretBox(key).decrypt_json(stored)["private_key"] == PRIVATE_KEY
    assert any(record.levelno >= logging.WARNING and record.name == "bot.workers" for record in caplog.records)
    formatter = logging.Formatter()
    for record in caplog.records:
        assert secrets_in(formatter.format(record) + repr(vars(record))) == [], (record.name, record.getMessage())
