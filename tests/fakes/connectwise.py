"""A local ConnectWise Manage REST server for tests (real HTTP on 127.0.0.1, port 0).

It speaks the subset of the API FlowPilot uses, with CW's auth rules, CW-shaped error bodies
and CW's quirks (a status change can be answered 200 and silently ignored). Tests seed it with
`add_status` / `add_ticket` / `add_note` / `add_configuration`, then assert on `calls`,
`notes(id)` and `ticket(id)`.

Failure modes: `fail_next(target, status=..., times=...)`, `delay` (seconds before answering),
`down()` / `up()` (connections are accepted and dropped without an answer), and
`ignore_status_changes`."""
from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from aiohttp import web

from core.ports import PsaCredentials

API_PATH = "/v4_6_release/apis/3.0"
_HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
_NOTE_FLAGS = ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")
_API_MEMBER = {"id": 178, "identifier": "FlowPilotAPI", "name": "FlowPilot API"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedCall:
    method: str
    path: str  # relative to the API base, e.g. "/service/tickets/42/notes"
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int | None  # what the fake answered; None when the connection was dropped


@dataclass
class _Failure:
    method: str | None
    path_prefix: str | None
    status: int
    remaining: int
    retry_after: float | None
    message: str | None
    errors: list[dict[str, Any]] | None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        return not self.path_prefix or path.startswith(self.path_prefix)


def _now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cw_error(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None,
              headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    return web.json_response(body, status=status, headers=headers)


_DEFAULT_FAILURES = {
    400: ("InvalidObject", "The request object is invalid"),
    401: ("Unauthorized", "The credentials provided are not valid"),
    403: ("Forbidden", "You do not have permission to perform this action"),
    404: ("NotFound", "The requested record was not found"),
    409: ("Conflict", "The record was changed by another user"),
    429: ("TooManyRequests", "Rate limit exceeded, slow down"),
}


class FakeConnectWise:
    def __init__(
        self,
        *,
        company_id: str = "flowpilot_test",
        public_key: str = "fake-public-key",
        private_key: str = "fake-private-key",
        client_id: str = "fake-client-id",
        api_path: str = API_PATH,
    ) -> None:
        self.company_id = company_id
        self.public_key = public_key
        self.private_key = private_key
        self.client_id = client_id
        self.api_path = api_path
        self.calls: list[RecordedCall] = []
        self.ignore_status_changes = False
        self.delay: float = 0.0
        self._statuses: dict[int, str] = {}
        self._tickets: dict[int, dict[str, Any]] = {}
        self._notes: dict[int, list[dict[str, Any]]] = {}
        self._configurations: dict[int, list[dict[str, Any]]] = {}
        self._failures: list[_Failure] = []
        self._next_note_id = 5001
        self._next_ref_id = 300
        self._down = False
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> "FakeConnectWise":
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._pipeline])
        base = self.api_path
        app.router.add_get(f"{base}/system/info", self._system_info)
        app.router.add_get(f"{base}/service/tickets/{{id:\\d+}}", self._get_ticket)
        app.router.add_patch(f"{base}/service/tickets/{{id:\\d+}}", self._patch_ticket)
        app.router.add_get(f"{base}/service/tickets/{{id:\\d+}}/notes", self._list_notes)
        app.router.add_post(f"{base}/service/tickets/{{id:\\d+}}/notes", self._post_note)
        app.router.add_get(f"{base}/service/tickets/{{id:\\d+}}/configurations", self._list_configurations)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # wakes handlers that are sleeping for `delay`
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeConnectWise":
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The site URL a PSA connection stores (the API lives under `api_path`)."""
        if self._port is None:
            raise RuntimeError("FakeConnectWise is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        return self.url + self.api_path

    @property
    def credentials(self) -> PsaCredentials:
        return PsaCredentials(
            site_url=self.url,
            company_id=self.company_id,
            public_key=self.public_key,
            private_key=self.private_key,
        )

    # ------------------------------------------------------------------ seeding
    def add_status(self, status_id: int, name: str) -> None:
        self._statuses[status_id] = name

    def add_ticket(
        self,
        ticket_id: int,
        summary: str = "Printer offline",
        *,
        status: tuple[int, str] = (1, "New"),
        company: str | None = "Contoso Ltd",
        contact: str | None = None,
        board: str | None = "Service Desk",
        priority: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        self.add_status(*status)
        ticket: dict[str, Any] = {
            "id": ticket_id,
            "summary": summary,
            "status": {"id": status[0], "name": status[1]},
            "closedFlag": False,
            "_info": {"lastUpdated": _now_text(), "updatedBy": "seed"},
        }
        for key, name in (("company", company), ("contact", contact), ("board", board), ("priority", priority)):
            if name is not None:
                ticket[key] = self._reference(name)
        if company is not None:
            ticket["company"]["identifier"] = name_to_identifier(company)
        if description is not None:
            ticket["initialDescription"] = description
        self._tickets[ticket_id] = ticket
        self._notes.setdefault(ticket_id, [])
        self._configurations.setdefault(ticket_id, [])
        return ticket

    def add_note(
        self,
        ticket_id: int,
        text: str,
        *,
        flag: str = "detailDescriptionFlag",
        member: str | None = "Jane Tech",
        date_created: str | None = None,
    ) -> dict[str, Any]:
        """Seed an existing note; `flag` is the CW flag that is true for it."""
        if flag not in _NOTE_FLAGS:
            raise ValueError(f"flag must be one of {_NOTE_FLAGS}")
        note = self._new_note(ticket_id, text, {name: name == flag for name in _NOTE_FLAGS})
        if member is not None:
            note["member"] = {"id": 42, "identifier": name_to_identifier(member), "name": member}
        if date_created is not None:
            note["dateCreated"] = date_created
        self._notes[ticket_id].append(note)
        return note

    def add_configuration(
        self, ticket_id: int, device_identifier: str, *, name: str | None = None, type_name: str | None = None
    ) -> dict[str, Any]:
        """CW's ticket configuration reference is `{id, deviceIdentifier}`; newer versions add
        more, so `name` and `type` appear only when given."""
        self._next_ref_id += 1
        configuration: dict[str, Any] = {"id": self._next_ref_id, "deviceIdentifier": device_identifier}
        if name is not None:
            configuration["name"] = name
        if type_name is not None:
            configuration["type"] = {"id": 7, "name": type_name}
        self._configurations[ticket_id].append(configuration)
        return configuration

    # ------------------------------------------------------------------ inspection
    def ticket(self, ticket_id: int | str) -> dict[str, Any]:
        return copy.deepcopy(self._tickets[int(ticket_id)])

    def notes(self, ticket_id: int | str) -> list[dict[str, Any]]:
        return copy.deepcopy(self._notes.get(int(ticket_id), []))

    def calls_to(self, method: str | None = None, path_prefix: str = "") -> list[RecordedCall]:
        return [
            call
            for call in self.calls
            if (method is None or call.method == method.upper()) and call.path.startswith(path_prefix)
        ]

    # ------------------------------------------------------------------ failure modes
    def fail_next(
        self,
        target: str,
        status: int = 500,
        times: int = 1,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status`. `target` is a method
        ("PATCH"), a path prefix relative to the API base ("/service/tickets/7/notes"), or both
        ("POST /service/tickets")."""
        method, prefix = _parse_target(target, self.api_path)
        self._failures.append(_Failure(method, prefix, status, times, retry_after, message, errors))

    def down(self) -> None:
        self._down = True

    def up(self) -> None:
        self._down = False

    # ------------------------------------------------------------------ request pipeline
    @web.middleware
    async def _pipeline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path.removeprefix(self.api_path) or "/"
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = dict(
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
            json=body,
        )
        if self._down:
            self.calls.append(RecordedCall(**record, status=None))
            assert request.transport is not None
            request.transport.abort()  # the client sees a dropped connection
            return web.Response(status=503)
        if self.delay > 0 and self._stopping is not None:
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.delay)
            except TimeoutError:
                pass
        response = self._injected_failure(request.method, path) or self._auth_failure(request)
        if response is None:
            try:
                response = await handler(request)
            except web.HTTPNotFound:
                response = _cw_error(404, "NotFound", f"No resource at {request.method} {path}")
            except web.HTTPMethodNotAllowed:
                response = _cw_error(405, "MethodNotAllowed", f"{request.method} is not allowed on {path}")
        self.calls.append(RecordedCall(**record, status=response.status))
        return response

    def _injected_failure(self, method: str, path: str) -> web.Response | None:
        for failure in self._failures:
            if failure.remaining > 0 and failure.matches(method, path):
                failure.remaining -= 1
                code, default_message = _DEFAULT_FAILURES.get(
                    failure.status, ("UnexpectedError", "An unexpected error has occurred")
                )
                headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else None
                return _cw_error(
                    failure.status, code, failure.message or default_message, failure.errors, headers
                )
        return None

    def _auth_failure(self, request: web.Request) -> web.Response | None:
        if request.headers.get("clientId") != self.client_id:
            return _cw_error(401, "Unauthorized", "A valid clientId header is required")
        expected = f"{self.company_id}+{self.public_key}:{self.private_key}"
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            presented = base64.b64decode(token, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            presented = ""
        if scheme != "Basic" or presented != expected:
            return _cw_error(401, "Unauthorized", "The credentials provided are not valid")
        return None

    # ------------------------------------------------------------------ handlers
    async def _system_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"version": "v2025.1.16", "isCloud": True, "serverTimeZone": "Eastern Standard Time", "cloudRegion": "NA"}
        )

    def _find_ticket(self, request: web.Request) -> dict[str, Any]:
        ticket_id = int(request.match_info["id"])
        ticket = self._tickets.get(ticket_id)
        if ticket is None:
            raise _NotFound(ticket_id)
        return ticket

    async def _get_ticket(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self._find_ticket(request))
        except _NotFound as missing:
            return missing.response()

    async def _patch_ticket(self, request: web.Request) -> web.Response:
        try:
            ticket = self._find_ticket(request)
        except _NotFound as missing:
            return missing.response()
        operations = await request.json()
        if not isinstance(operations, list) or not operations:
            return _cw_error(400, "InvalidObject", "The patch body must be a JSON Patch array")
        new_status: int | None = None
        for operation in operations:
            if not isinstance(operation, dict) or operation.get("op") not in ("replace", "add"):
                return _cw_error(400, "InvalidObject", "Unsupported JSON Patch operation")
            path, value = str(operation.get("path", "")).strip("/"), operation.get("value")
            if path == "status" and isinstance(value, dict):
                new_status = value.get("id")
            elif path == "status/id":
                new_status = value
            elif path == "summary" and isinstance(value, str):
                ticket["summary"] = value
                continue
            else:
                return _cw_error(400, "InvalidObject", f"Cannot patch path '{path}'")
            if new_status not in self._statuses:
                return _cw_error(
                    400,
                    "InvalidObject",
                    "ticket object is invalid",
                    [{"code": "InvalidField", "message": f"Status id {new_status} is not valid for this board",
                      "resource": "ticket", "field": "status"}],
                )
        if new_status is not None and not self.ignore_status_changes:
            ticket["status"] = {"id": new_status, "name": self._statuses[new_status]}
            ticket["_info"]["lastUpdated"] = _now_text()
        return web.json_response(ticket)

    async def _list_notes(self, request: web.Request) -> web.Response:
        try:
            ticket_id = int(self._find_ticket(request)["id"])
        except _NotFound as missing:
            return missing.response()
        notes = sorted(self._notes[ticket_id], key=lambda note: note["id"])
        order = request.query.get("orderBy", "id asc").strip().lower()
        if order == "id desc":
            notes.reverse()
        page_size = min(int(request.query.get("pageSize", "25")), 1000)
        page = max(int(request.query.get("page", "1")), 1)
        return web.json_response(notes[(page - 1) * page_size: page * page_size])

    async def _post_note(self, request: web.Request) -> web.Response:
        try:
            ticket_id = int(self._find_ticket(request)["id"])
        except _NotFound as missing:
            return missing.response()
        body = await request.json()
        if not isinstance(body, dict):
            return _cw_error(400, "InvalidObject", "serviceNote object is invalid")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return _cw_error(
                400, "InvalidObject", "serviceNote object is invalid",
                [{"code": "NullOrEmpty", "message": "text is required", "resource": "serviceNote", "field": "text"}],
            )
        flags = {name: bool(body.get(name, False)) for name in _NOTE_FLAGS}
        if not any(flags.values()):
            return _cw_error(
                400, "InvalidObject", "serviceNote object is invalid",
                [{"code": "InvalidFlags", "resource": "serviceNote",
                  "message": "At least one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be true"}],
            )
        note = self._new_note(ticket_id, text, flags)
        note["member"] = dict(_API_MEMBER)
        self._notes[ticket_id].append(note)
        return web.json_response(note, status=201)

    async def _list_configurations(self, request: web.Request) -> web.Response:
        try:
            ticket_id = int(self._find_ticket(request)["id"])
        except _NotFound as missing:
            return missing.response()
        return web.json_response(self._configurations[ticket_id])

    # ------------------------------------------------------------------ internals
    def _reference(self, name: str) -> dict[str, Any]:
        self._next_ref_id += 1
        return {"id": self._next_ref_id, "name": name}

    def _new_note(self, ticket_id: int, text: str, flags: dict[str, bool]) -> dict[str, Any]:
        note_id = self._next_note_id
        self._next_note_id += 1
        return {
            "id": note_id,
            "ticketId": ticket_id,
            "text": text,
            **flags,
            "dateCreated": _now_text(),
            "createdBy": _API_MEMBER["identifier"],
            "internalFlag": flags["internalAnalysisFlag"],
            "externalFlag": not flags["internalAnalysisFlag"],
            "_info": {"lastUpdated": _now_text()},
        }


class _NotFound(Exception):
    def __init__(self, ticket_id: int) -> None:
        super().__init__(ticket_id)
        self.ticket_id = ticket_id

    def response(self) -> web.Response:
        return _cw_error(404, "NotFound", f"Ticket with id {self.ticket_id} was not found")


def name_to_identifier(name: str) -> str:
    return "".join(part for part in name.title().split() if part.isalnum())[:30] or "Unknown"


def _parse_target(target: str, api_path: str) -> tuple[str | None, str | None]:
    head, _, rest = target.strip().partition(" ")
    if head.upper() in _HTTP_METHODS:
        method, prefix = head.upper(), rest.strip() or None
    else:
        method, prefix = None, target.strip()
    if prefix is not None:
        prefix = prefix.removeprefix(api_path)
        if not prefix.startswith("/"):
            raise ValueError("fail_next path prefixes start with '/' (relative to the API base)")
    return method, prefix
