"""Typed inbound intents and the text-command grammar shared by Slack (`/flowpilot …`), Teams
(@FlowPilot …) and the console."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace

from core.model import Platform

COMMANDS = ("new", "note", "resolve", "escalate", "update", "pause", "close", "status", "queue", "metrics",
            "seniors here", "role", "psa connect", "help")

USAGE = """\
*FlowPilot commands*
• `new <problem> [#ticket]` — start a troubleshooting session (a new thread)
• `note <text>` — add a note to What we know (in a session thread)
• `resolve` — draft the resolution note, then confirm to post it
• `escalate [reason]` — hand the session to a senior
• `update` — share a progress update on the ticket
• `pause` / `close [reason]` — pause or abandon the session
• `status` — where this session stands
• `queue` — unclaimed escalations (seniors can pick them up)
• `metrics` — escalation times (seniors and admins)
• `seniors here` — make this channel receive escalations (admins)
• `role @user viewer|engineer|senior|admin` — change someone's role (admins)
• `psa connect` — connect ConnectWise (admins)
• `help` — this list"""

_TICKET_RE = re.compile(r"(?:^|\s)#(\d{1,12})\b")
# JSON can carry NUL characters and lone UTF-16 surrogates; Postgres text cannot store the first
# and nothing can encode the second, so the request's transaction would fail (a 500, retried in
# vain). They are dropped on the way in: the rest of the input is kept.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str | None) -> str | None:
    return _UNSTORABLE.sub("", text) if text else text


def _storable_strings(obj):
    return replace(obj, **{f.name: storable(getattr(obj, f.name)) for f in fields(obj)
                           if type(getattr(obj, f.name)) is str})


@dataclass(frozen=True)
class Actor:
    platform: Platform
    workspace_id: str
    user_id: str
    display_name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Where:
    """Where the request came from. `thread_id` is set inside a thread."""

    platform: Platform
    workspace_id: str
    channel_id: str
    thread_id: str | None = None
    channel_name: str | None = None


@dataclass(frozen=True)
class Inbound:
    actor: Actor
    where: Where
    event_id: str | None = None  # de-duplication key (event id, activity id, interaction id)

    def storable(self) -> "Inbound":
        """This inbound with every string made storable (see `storable`)."""
        return replace(_storable_strings(self), actor=_storable_strings(self.actor),
                       where=_storable_strings(self.where))


@dataclass(frozen=True)
class ParsedCommand:
    name: str  # one of COMMANDS, or "" for free text
    args: str = ""


def parse_command(text: str) -> ParsedCommand:
    """Longest command first, so 'seniors here' and 'psa connect' win over shorter words."""
    stripped = (text or "").strip()
    lowered = stripped.lower()
    for name in sorted(COMMANDS, key=len, reverse=True):
        if lowered == name or lowered.startswith(name + " ") or lowered.startswith(name + "\n"):
            return ParsedCommand(name, stripped[len(name):].strip())
    return ParsedCommand("", stripped)


def split_ticket(problem: str) -> tuple[str, str | None]:
    """'VPN drops #48291' → ('VPN drops', '48291')."""
    m = _TICKET_RE.search(problem or "")
    if not m:
        return (problem or "").strip(), None
    cleaned = (problem[: m.start()] + " " + problem[m.end():]).strip()
    return re.sub(r"\s{2,}", " ", cleaned), m.group(1)


@dataclass
class Reply:
    """What the adapter shows the person who acted, right away (ephemeral where possible)."""

    text: str | None = None
    error: Exception | None = None
    card: object | None = None  # the clicked card, re-rendered (Teams invoke response)
    form: object | None = None  # a form to open (modal / card)
    duplicate: bool = False
    ignored: bool = False
    session_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None
