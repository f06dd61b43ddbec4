"""The real ConnectWise client against the local fake CW server, over HTTP."""
from __future__ import annotations

import base64
import logging
from datetime import datetime, timezone

import aiohttp
import pytest

from adapters.connectwise import ConnectWiseTicketSystem, make_ticket_system_factory
from core.errors import InvalidInput, Retryable, UpstreamFailure
from core.ports import NOTE_DESCRIPTION, NOTE_INTERNAL, NOTE_RESOLUTION, PsaCredentials
from tests.fakes.connectwise import FakeConnectWise

RESOLVED = (31, "Resolved")
NEW = (1, "New")


@pytest.fixture
async def fake():
    async with FakeConnectWise() as server:
        server.add_status(*RESOLVED)
        yield server


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def cw(fake: FakeConnectWise, http: aiohttp.ClientSession) -> ConnectWiseTicketSystem:
    return ConnectWiseTicketSystem(fake.credentials, fake.client_id, http)


def _with_private_key(fake: FakeConnectWise, private_key: str) -> PsaCredentials:
    real = fake.credentials
    return PsaCredentials(real.site_url, real.company_id, real.public_key, private_key)


# ------------------------------------------------------------------ auth and headers
async def test_every_request_carries_cw_basic_auth_client_id_and_pinned_version(fake, cw):
    fake.add_ticket(48291)

    await cw.check_connection()
    await cw.get_ticket("48291")

    expected_token = base64.b64encode(b"flowpilot_test+fake-public-key:fake-private-key").decode()
    assert [call.path for call in fake.calls] == ["/system/info", "/service/tickets/48291"]
    for call in fake.calls:
        assert call.headers["Authorization"] == f"Basic {expected_token}"
        assert call.headers["clientId"] == "fake-client-id"
        assert call.headers["Accept"] == "application/vnd.connectwise.com+json; version=2025.16"
        assert call.status == 200


async def test_wrong_private_key_is_an_upstream_failure_that_names_the_credentials(fake, http):
    fake.add_ticket(7)
    client = ConnectWiseTicketSystem(_with_private_key(fake, "not-the-key"), fake.client_id, http)

    with pytest.raises(UpstreamFailure) as connection_error:
        await client.check_connection()
    with pytest.raises(UpstreamFailure) as ticket_error:
        await client.get_ticket("7")

    for error in (connection_error.value, ticket_error.value):
        assert "ConnectWise rejected the credentials" in str(error)
        assert "HTTP 401" in str(error)
        assert "not-the-key" not in str(error)


async def test_fake_rejects_a_request_without_client_id_with_a_cw_shaped_error(fake, http):
    token = base64.b64encode(b"flowpilot_test+fake-public-key:fake-private-key").decode()

    async with http.get(f"{fake.api_url}/system/info", headers={"Authorization": f"Basic {token}"}) as resp:
        body = await resp.json()

    assert resp.status == 401
    assert body["code"] == "Unauthorized"
    assert "clientId" in body["message"]


async def test_a_wrong_api_path_fails_with_a_hint_to_check_the_site_url(fake, http):
    client = ConnectWiseTicketSystem(fake.credentials, fake.client_id, http, api_path="/v2099_release/apis/3.0")

    with pytest.raises(UpstreamFailure) as error:
        await client.check_connection()

    assert "check the site URL" in str(error.value)


async def test_repr_errors_and_logs_never_reveal_the_credentials(fake, http, caplog):
    caplog.set_level(logging.DEBUG)
    fake.add_ticket(5)
    secret = "very-secret-private-key"
    client = ConnectWiseTicketSystem(_with_private_key(fake, secret), fake.client_id, http)
    token = base64.b64encode(f"flowpilot_test+fake-public-key:{secret}".encode()).decode()

    with pytest.raises(UpstreamFailure) as error:
        await client.get_ticket("5")

    assert fake.calls[-1].headers["Authorization"] == f"Basic {token}"  # it was sent...
    assert any(record.getMessage() == "connectwise.request" for record in caplog.records)
    exposed = [repr(client), str(error.value), caplog.text, *(str(r.__dict__) for r in caplog.records)]
    for text in exposed:  # ...and never shown
        assert secret not in text
        assert token not in text
        assert "fake-public-key" not in text


# ------------------------------------------------------------------ reading tickets
async def test_get_ticket_maps_status_company_contact_board_priority_and_description(fake, cw):
    fake.add_ticket(
        48291,
        "Outlook keeps asking for a password",
        status=(16, "In Progress"),
        company="Contoso Ltd",
        contact="Dana Scully",
        board="Help Desk",
        priority="Priority 2 - High",
        description="Since this morning Outlook prompts for credentials every few minutes.",
    )

    ticket = await cw.get_ticket("#48291")

    assert ticket.id == "48291"
    assert ticket.summary == "Outlook keeps asking for a password"
    assert (ticket.status_id, ticket.status_name) == (16, "In Progress")
    assert ticket.company == "Contoso Ltd"
    assert ticket.contact == "Dana Scully"
    assert ticket.board == "Help Desk"
    assert ticket.priority == "Priority 2 - High"
    assert ticket.description == "Since this morning Outlook prompts for credentials every few minutes."


async def test_missing_ticket_is_an_upstream_failure_naming_the_ticket(cw):
    with pytest.raises(UpstreamFailure) as error:
        await cw.get_ticket("999")

    assert str(error.value) == "Ticket #999 not found in ConnectWise."


async def test_a_ticket_id_that_is_not_a_number_is_refused_before_calling_cw(fake, cw):
    with pytest.raises(InvalidInput) as error:
        await cw.get_ticket("48291/notes")

    assert error.value.field == "ticket_id"
    assert fake.calls == []


async def test_ticket_context_has_the_five_latest_notes_in_order_and_the_configurations(fake, cw):
    fake.add_ticket(100, "VPN drops every hour", description="VPN disconnects hourly.")
    for number in range(1, 8):
        fake.add_note(100, f"note {number}", member="Jane Tech", date_created=f"2025-03-0{number}T09:30:00Z")
    fake.add_note(100, "checked the firewall logs", flag="internalAnalysisFlag", member="Sam Senior",
                  date_created="2025-03-08T10:00:00Z")
    fake.add_configuration(100, "CONTOSO-FW01", name="Contoso edge firewall", type_name="Firewall")
    fake.add_configuration(100, "DANA-LAPTOP")

    context = await cw.get_ticket_context("100")

    assert context.ticket.summary == "VPN drops every hour"
    assert context.recent_notes == (
        "[description, Jane Tech, 2025-03-04 09:30 UTC] note 4",
        "[description, Jane Tech, 2025-03-05 09:30 UTC] note 5",
        "[description, Jane Tech, 2025-03-06 09:30 UTC] note 6",
        "[description, Jane Tech, 2025-03-07 09:30 UTC] note 7",
        "[internal analysis, Sam Senior, 2025-03-08 10:00 UTC] checked the firewall logs",
    )
    assert context.configurations == ("Contoso edge firewall (Firewall)", "DANA-LAPTOP")
    [notes_call] = fake.calls_to("GET", "/service/tickets/100/notes")
    assert notes_call.query == {"orderBy": "id desc", "pageSize": "5"}


async def test_ticket_context_survives_a_role_without_configuration_access(fake, cw):
    fake.add_ticket(101)
    fake.add_note(101, "user reports slowness")
    fake.add_configuration(101, "SRV-01")
    fake.fail_next("GET /service/tickets/101/configurations", status=403)

    context = await cw.get_ticket_context("101")

    assert context.ticket.id == "101"
    assert len(context.recent_notes) == 1 and context.recent_notes[0].endswith("user reports slowness")
    assert context.configurations == ()


async def test_ticket_context_fails_when_the_ticket_itself_is_missing(cw):
    with pytest.raises(UpstreamFailure, match="Ticket #404 not found"):
        await cw.get_ticket_context("404")


# ------------------------------------------------------------------ writing
@pytest.mark.parametrize(
    ("note_type", "expected_flags"),
    [
        (NOTE_RESOLUTION, {"detailDescriptionFlag": False, "internalAnalysisFlag": False, "resolutionFlag": True}),
        (NOTE_INTERNAL, {"detailDescriptionFlag": False, "internalAnalysisFlag": True, "resolutionFlag": False}),
        (NOTE_DESCRIPTION, {"detailDescriptionFlag": True, "internalAnalysisFlag": False, "resolutionFlag": False}),
    ],
)
async def test_post_note_sets_exactly_the_flag_of_its_note_type(fake, cw, note_type, expected_flags):
    fake.add_ticket(200)
    text = "## Resolution\n- Re-created the Outlook profile\n- Verified mail flow"

    note = await cw.post_note("200", text, note_type)

    [stored] = fake.notes(200)
    assert {flag: stored[flag] for flag in expected_flags} == expected_flags
    assert stored["text"] == text
    [post] = fake.calls_to("POST", "/service/tickets/200/notes")
    assert post.json == {"text": text, **expected_flags}
    assert note.id == str(stored["id"])
    assert note.note_type == note_type
    assert note.text == text
    assert isinstance(note.created_at, datetime) and note.created_at.tzinfo is not None
    assert abs((datetime.now(timezone.utc) - note.created_at).total_seconds()) < 300


async def test_an_unknown_note_type_is_refused_and_nothing_is_posted(fake, cw):
    fake.add_ticket(201)

    with pytest.raises(InvalidInput) as error:
        await cw.post_note("201", "text", "public")

    assert error.value.field == "note_type"
    assert fake.notes(201) == []
    assert fake.calls == []


async def test_posting_to_a_missing_ticket_names_the_ticket(cw):
    with pytest.raises(UpstreamFailure, match=r"Ticket #77 not found in ConnectWise"):
        await cw.post_note("77", "done", NOTE_RESOLUTION)


async def test_status_change_is_a_json_patch_and_shows_on_refetch(fake, cw):
    fake.add_ticket(300, status=NEW)

    await cw.update_ticket_status("300", RESOLVED[0])
    ticket = await cw.get_ticket("300")

    [patch] = fake.calls_to("PATCH", "/service/tickets/300")
    assert patch.json == [{"op": "replace", "path": "status", "value": {"id": 31}}]
    assert "application/json" in patch.headers["Content-Type"]
    assert (ticket.status_id, ticket.status_name) == RESOLVED


async def test_a_silently_ignored_status_change_still_shows_the_old_status_on_refetch(fake, cw):
    fake.add_ticket(301, status=NEW)
    fake.ignore_status_changes = True

    await cw.update_ticket_status("301", RESOLVED[0])  # CW answers 200 ...
    ticket = await cw.get_ticket("301")

    assert fake.calls_to("PATCH")[0].status == 200
    assert (ticket.status_id, ticket.status_name) == NEW  # ... and changed nothing


async def test_a_rejected_status_change_carries_cw_validation_messages(fake, cw):
    fake.add_ticket(302, status=NEW)

    with pytest.raises(UpstreamFailure) as unknown_status:
        await cw.update_ticket_status("302", 999)

    fake.fail_next(
        "PATCH",
        status=400,
        message="ticket object is invalid",
        errors=[{"code": "Required", "message": "Resolution notes are required to close this ticket", "field": "status"}],
    )
    with pytest.raises(UpstreamFailure) as missing_field:
        await cw.update_ticket_status("302", RESOLVED[0])

    assert "Status id 999 is not valid for this board" in str(unknown_status.value)
    assert str(missing_field.value) == (
        "ConnectWise could not change the status of ticket #302: ticket object is invalid: "
        "Resolution notes are required to close this ticket"
    )
    assert fake.ticket(302)["status"]["id"] == NEW[0]


# ------------------------------------------------------------------ transient failures
async def test_a_server_error_is_retryable_and_the_next_call_succeeds(fake, cw):
    fake.add_ticket(400)
    fake.fail_next("POST /service/tickets/400/notes", status=500)

    with pytest.raises(Retryable) as error:
        await cw.post_note("400", "first try", NOTE_INTERNAL)
    note = await cw.post_note("400", "second try", NOTE_INTERNAL)

    assert "HTTP 500" in str(error.value)
    assert [stored["text"] for stored in fake.notes(400)] == ["second try"]
    assert note.text == "second try"


async def test_rate_limiting_is_retryable_with_the_retry_after_hint(fake, cw):
    fake.add_ticket(401)
    fake.fail_next("GET", status=429, retry_after=7)

    with pytest.raises(Retryable) as error:
        await cw.get_ticket("401")

    assert error.value.retry_after == 7
    assert "rate limit" in str(error.value)


async def test_a_slow_server_times_out_as_retryable(fake, http):
    fake.add_ticket(402)
    fake.delay = 2.0
    client = ConnectWiseTicketSystem(fake.credentials, fake.client_id, http, timeout_s=0.2)

    with pytest.raises(Retryable) as error:
        await client.get_ticket("402")

    assert "did not answer within 0.2 s" in str(error.value)


async def test_an_unreachable_server_is_retryable_until_it_is_back(fake, cw):
    fake.add_ticket(403)
    fake.down()

    with pytest.raises(Retryable) as error:
        await cw.get_ticket("403")
    fake.up()
    ticket = await cw.get_ticket("403")

    assert "Could not reach ConnectWise" in str(error.value)
    assert ticket.id == "403"


async def test_a_server_that_is_not_listening_is_retryable(http):
    async with FakeConnectWise() as gone:
        credentials = gone.credentials
    client = ConnectWiseTicketSystem(credentials, "fake-client-id", http, timeout_s=2)

    with pytest.raises(Retryable):
        await client.check_connection()


# ------------------------------------------------------------------ construction
async def test_factory_builds_a_working_client_per_connection(fake, http):
    fake.add_ticket(500, "Shared mailbox missing")
    build = make_ticket_system_factory(http, fake.client_id)

    ticket = await build(fake.credentials).get_ticket("500")

    assert ticket.summary == "Shared mailbox missing"


async def test_an_incomplete_connection_fails_naming_what_is_missing_without_values(fake, http):
    blank_key = _with_private_key(fake, "  ")

    with pytest.raises(UpstreamFailure) as incomplete:
        make_ticket_system_factory(http, fake.client_id)(blank_key)
    with pytest.raises(UpstreamFailure) as no_client_id:
        ConnectWiseTicketSystem(fake.credentials, "", http)

    assert str(incomplete.value) == "The ConnectWise connection is incomplete: missing private key."
    assert "client id" in str(no_client_id.value)
