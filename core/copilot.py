"""The shared session core's entry point for every channel: messages, text commands and card
actions become service calls, each in one tenant transaction with inbound de-duplication.
Adapters call only this; they never decide roles, ownership or state."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from core import cards, facts, fixes, lane, turns, updates
from core.commands import USAGE, Inbound, ParsedCommand, Reply, parse_command, split_ticket, storable
from core.errors import Conflict, FlowPilotError, Forbidden, InvalidInput, NotFound
from core.identity import identify
from core.model import ChatThread, FixStatus, LaneStatus, Person, Role, Session, SessionStatus
from core.ports import UnitOfWork
from core.sessions import apply_transition, require_role, require_session
from core.views import Action

log = logging.getLogger(__name__)

ENGINEER_RULE = "Viewers can read sessions but not change them; ask an admin for the engineer role."
TITLE_MAX = 120
PROBLEM_MAX = 4000


class StorePort(Protocol):
    async def ensure_workspace(self, platform: str, external_id: str, name: str | None = None) -> Any: ...

    def unit(self, account_id: Any) -> Any: ...


ActionHandler = Callable[["Call"], Awaitable[Reply]]


class Call:
    """One request in flight: the unit of work, who acts, where, and the click's payload."""

    def __init__(self, uow: UnitOfWork, actor: Person, inbound: Inbound, value: dict[str, str],
                 text: str | None, fields: dict[str, str] | None = None) -> None:
        self.uow = uow
        self.actor = actor
        self.inbound = inbound
        self.value = value
        self.text = text
        self.fields = fields or {}

    def uuid(self, key: str) -> uuid.UUID:
        raw = self.value.get(key)
        try:
            return uuid.UUID(str(raw))
        except (ValueError, TypeError):
            raise InvalidInput(f"This button is missing a valid {key.replace('_', ' ')}.", field=key) from None

    async def session(self, lock: bool = True) -> Session:
        return require_session(await self.uow.sessions.get(self.uuid("session_id"), lock=lock))


class Copilot:
    def __init__(self, store: StorePort, bootstrap_admins: set[str] | frozenset[str] = frozenset()) -> None:
        self.store = store
        self.bootstrap_admins = frozenset(bootstrap_admins)
        self.actions: dict[Action, ActionHandler] = {}
        self.commands: dict[str, Callable[[Call, ParsedCommand], Awaitable[Reply]]] = {}
        self.ticket_linker: Callable[[Call, Session, str], Awaitable[None]] | None = None
        self._register_core()

    # ------------------------------------------------------------------ entry points
    async def message(self, inbound: Inbound, text: str, images: list[dict] | None = None) -> Reply:
        """A message in a thread. Only session threads matter; others are ignored."""
        return await self._run(inbound, lambda call: self._on_message(call, storable(text), images))

    async def command(self, inbound: Inbound, text: str) -> Reply:
        """`/flowpilot <text>` or a Teams @mention: a subcommand, or free text."""
        return await self._run(inbound, lambda call: self._on_command(call, parse_command(storable(text))))

    async def mention(self, inbound: Inbound, text: str, images: list[dict] | None = None) -> Reply:
        """An @mention: a command; else a turn in an existing session thread; else a new session."""
        parsed = parse_command(storable(text))

        async def go(call: Call) -> Reply:
            if parsed.name:
                return await self._on_command(call, parsed)
            session = await self._thread_session(call)
            if session is not None:
                return await self._turn(call, session, parsed.args, images)
            return await self._start(call, parsed.args, in_thread=True)

        return await self._run(inbound, go)

    async def action(self, inbound: Inbound, action: str, value: dict[str, Any] | None,
                     text: str | None = None, fields: dict[str, str] | None = None) -> Reply:
        """A card click or a form submission. `text` is the button's single input (Button.input);
        `fields` are a FormView's named inputs."""
        try:
            act = Action(action)
        except ValueError:
            return Reply(error=InvalidInput(f"Unknown action '{action}'."))
        handler = self.actions.get(act)
        if handler is None:
            return Reply(error=InvalidInput(f"Unknown action '{action}'."))
        clean = {storable(str(k)): storable(str(v)) for k, v in (value or {}).items() if isinstance(k, str)}
        clean_fields = {storable(str(k)): ("" if v is None else storable(str(v)))
                        for k, v in (fields or {}).items()}
        return await self._run(inbound, handler, value=clean, text=storable(text), fields=clean_fields)

    # ------------------------------------------------------------------ plumbing
    async def _run(self, inbound: Inbound, fn: Callable[[Call], Awaitable[Reply]],
                   value: dict[str, str] | None = None, text: str | None = None,
                   fields: dict[str, str] | None = None) -> Reply:
        inbound = inbound.storable()
        account_id = await self.store.ensure_workspace(inbound.actor.platform.value, inbound.actor.workspace_id)
        try:
            async with self.store.unit(account_id) as uow:
                if inbound.event_id and not await uow.claim_inbound(
                        inbound.actor.platform.value, inbound.actor.workspace_id, inbound.event_id):
                    return Reply(duplicate=True)
                actor = await identify(uow, inbound.actor.platform, inbound.actor.workspace_id,
                                       inbound.actor.user_id, inbound.actor.display_name, inbound.actor.email,
                                       self.bootstrap_admins)
                reply = await fn(Call(uow, actor, inbound, value or {}, text, fields))
                if reply.error is not None:
                    raise _Abort(reply)
                return reply
        except _Abort as abort:  # roll back everything, report the error
            return abort.reply
        except FlowPilotError as exc:
            log.info("request refused", extra={"category": exc.category, "reason": str(exc)})
            return Reply(error=exc)

    async def _thread_session(self, call: Call) -> Session | None:
        where = call.inbound.where
        if not where.thread_id:
            return None
        return await call.uow.sessions.by_thread(ChatThread(where.platform, where.workspace_id, where.channel_id,
                                                            where.thread_id))

    async def _session_here(self, call: Call) -> Session:
        session = await self._thread_session(call)
        if session is None:
            raise InvalidInput("Run this inside a FlowPilot session thread (or start one with `new <problem>`).")
        return require_session(await call.uow.sessions.get(session.id, lock=True))

    async def _on_message(self, call: Call, text: str, images: list[dict] | None) -> Reply:
        session = await self._thread_session(call)
        if session is None:
            return Reply(ignored=True)
        return await self._turn(call, session, text, images)

    async def _turn(self, call: Call, session: Session, text: str, images: list[dict] | None) -> Reply:
        session = require_session(await call.uow.sessions.get(session.id, lock=True))
        message = await turns.submit_message(call.uow, session, call.actor, text, images)
        return Reply(session_id=str(session.id), extra={"message_id": str(message.id)})

    async def _on_command(self, call: Call, cmd: ParsedCommand) -> Reply:
        if not cmd.name:
            if not cmd.args:
                return Reply(text=USAGE)
            return await self._start(call, cmd.args, in_thread=False)
        handler = self.commands.get(cmd.name)
        if handler is None:
            return Reply(text=USAGE)
        return await handler(call, cmd)

    # ------------------------------------------------------------------ sessions
    async def _start(self, call: Call, problem: str, in_thread: bool) -> Reply:
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        problem, ticket_id = split_ticket(problem)
        if not problem:
            raise InvalidInput("Describe the problem: `new <what is going wrong> [#ticket]`.", field="text")
        if len(problem) > PROBLEM_MAX:
            raise InvalidInput(f"Keep the problem under {PROBLEM_MAX} characters; paste details in the thread.")
        where = call.inbound.where
        origin = {"platform": where.platform.value, "workspace_id": where.workspace_id,
                  "channel_id": where.channel_id}
        session = Session(id=uuid.uuid4(), account_id=call.uow.account_id, user_id=call.actor.id,
                          title=problem.splitlines()[0][:TITLE_MAX], intake_content={"text": problem, "origin": origin})
        if ticket_id:
            await (self.ticket_linker or self.link_ticket)(call, session, ticket_id)
        await call.uow.sessions.add(session)
        if in_thread and where.thread_id:
            thread = ChatThread(where.platform, where.workspace_id, where.channel_id, where.thread_id)
            await call.uow.sessions.bind_thread(session.id, thread)
            session.thread = thread
        await cards.publish_header(call.uow, session)
        await turns.submit_message(call.uow, session, call.actor, problem)
        return Reply(text="Started a FlowPilot session" + (f" for CW #{ticket_id}" if ticket_id else "") + ".",
                     session_id=str(session.id))

    async def link_ticket(self, call: Call, session: Session, ticket_id: str) -> None:
        """Default linking; the PSA feature installs `ticket_linker` to also create an
        environment-configured ConnectWise connection."""
        session.psa_ticket_id = ticket_id
        session.intake_type = "psa_ticket"
        conn = await call.uow.psa.active_connection()
        if conn is not None:
            session.psa_connection_id = conn["id"]

    async def _status_change(self, call: Call, session: Session, operation: str, note: str) -> Reply:
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        if not session.is_owner(call.actor.id) and not call.actor.role.at_least(Role.ADMIN):
            raise Forbidden("Only the session's engineer (or the senior who picked it up) can do that.")
        apply_transition(session, operation)
        await call.uow.sessions.save(session)
        await cards.publish_header(call.uow, session)
        await cards.post_text(call.uow, session, note)
        return Reply(text=note, session_id=str(session.id))

    # ------------------------------------------------------------------ registration
    def _register_core(self) -> None:
        a = self.actions
        a[Action.PAUSE] = self._act_pause
        a[Action.ANSWER] = self._act_respond
        a[Action.PASTE_OUTPUT] = self._act_respond
        a[Action.SKIP] = lambda call: self._act_lane_status(call, LaneStatus.SKIPPED)
        a[Action.CHECK_DONE] = lambda call: self._act_lane_status(call, LaneStatus.DONE)
        a[Action.CHECK_FAILED] = lambda call: self._act_lane_status(call, LaneStatus.FAILED)
        a[Action.ADD_NOTE] = self._act_add_note
        a[Action.EDIT_FACT] = self._act_edit_fact
        a[Action.DELETE_FACT] = self._act_delete_fact
        a[Action.PROMOTE] = self._act_promote
        a[Action.FIX_APPLIED] = self._act_fix_applied
        a[Action.FIX_FINISH] = self._act_fix_applied
        a[Action.FIX_WORKED] = lambda call: self._act_outcome(call, FixStatus.APPLIED_SUCCESS)
        a[Action.FIX_FAILED] = lambda call: self._act_outcome(call, FixStatus.APPLIED_FAILED)
        a[Action.FIX_PARTIAL] = lambda call: self._act_outcome(call, FixStatus.APPLIED_PARTIAL)
        a[Action.FIX_PENDING] = lambda call: self._act_outcome(call, FixStatus.APPLIED_PENDING)
        a[Action.FIX_DISMISS] = lambda call: self._act_outcome(call, FixStatus.DISMISSED)
        a[Action.PROPOSAL_CONFIRM] = self._act_confirm
        a[Action.PROPOSAL_REJECT] = self._act_reject
        c = self.commands
        c["help"] = lambda call, cmd: self._help()
        c["new"] = lambda call, cmd: self._start(call, cmd.args, in_thread=False)
        c["note"] = self._cmd_note
        c["pause"] = self._cmd_pause
        c["close"] = self._cmd_close
        c["status"] = self._cmd_status
        c["role"] = self._cmd_role

    async def _help(self) -> Reply:
        return Reply(text=USAGE)

    # ------------------------------------------------------------------ commands
    async def _cmd_note(self, call: Call, cmd: ParsedCommand) -> Reply:
        session = await self._session_here(call)
        return await self._add_note(call, session, cmd.args)

    async def _cmd_pause(self, call: Call, cmd: ParsedCommand) -> Reply:
        return await self._status_change(call, await self._session_here(call), "pause",
                                         "Session paused. Reply in the thread to resume.")

    async def _cmd_close(self, call: Call, cmd: ParsedCommand) -> Reply:
        session = await self._session_here(call)
        reason = cmd.args.strip()[:500]
        if reason:
            session.resolution_summary = None
            session.intake_content = {**session.intake_content, "close_reason": reason}
        return await self._status_change(call, session, "close",
                                         "Session closed" + (f": {reason}" if reason else "."))

    async def _cmd_status(self, call: Call, cmd: ParsedCommand) -> Reply:
        session = await self._session_here(call)
        fix = await call.uow.fixes.active(session.id)
        live = await call.uow.facts.live(session.id)
        items = await call.uow.lane.active(session.id)
        open_items = sum(1 for i in items if i.status == LaneStatus.OPEN)
        lines = [f"*{session.title or '(untitled)'}* — {session.status.value}",
                 f"What we know: {len(live)} fact(s); open questions and checks: {open_items}"]
        if session.psa_ticket_id:
            lines.append(f"Ticket: CW #{session.psa_ticket_id}")
        if fix is not None:
            lines.append(f"Suggested fix: {fix.title} ({fix.confidence_pct}%) — {fixes.card_state(fix)}")
        return Reply(text="\n".join(lines), session_id=str(session.id))

    async def _cmd_role(self, call: Call, cmd: ParsedCommand) -> Reply:
        require_role(call.actor, Role.ADMIN, "Only admins can change roles.")
        parts = cmd.args.split()
        if len(parts) != 2:
            raise InvalidInput("Usage: `role @user viewer|engineer|senior|admin`.")
        target_ref, role_name = parts
        try:
            role = Role(role_name.lower())
        except ValueError:
            raise InvalidInput(f"Unknown role '{role_name}'. Roles: viewer, engineer, senior, admin.") from None
        target = await self._resolve_person(call, target_ref)
        await call.uow.people.set_role(target.id, role)
        return Reply(text=f"{target.display_name} is now {role.value}.")

    async def _resolve_person(self, call: Call, ref: str) -> Person:
        """A platform mention (<@U123|name>, <at>…</at> resolved by the adapter to an id) or a name."""
        import re

        # any id without spaces: Slack `U123`, Teams `29:1a-B…`, console names like `U-sen`
        m = re.match(r"^<@([^\s|>]+)(?:\|[^>]*)?>$", ref)
        ext = m.group(1) if m else ref.lstrip("@")
        person = await call.uow.people.by_identity(call.inbound.actor.platform.value,
                                                   call.inbound.actor.workspace_id, ext)
        if person is None:
            person = await call.uow.people.by_name(ext)
        if person is None:
            person = await identify(call.uow, call.inbound.actor.platform, call.inbound.actor.workspace_id, ext,
                                    None, None, self.bootstrap_admins) if m else None
        if person is None:
            raise NotFound(f"No one called {ref} has used FlowPilot here yet.")
        return person

    # ------------------------------------------------------------------ actions: session
    async def _act_pause(self, call: Call) -> Reply:
        return await self._status_change(call, await call.session(), "pause",
                                         "Session paused. Reply in the thread to resume.")

    # ------------------------------------------------------------------ actions: lane
    async def _act_respond(self, call: Call) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        item = await lane.respond(call.uow, session, call.uuid("item_id"), call.text or "", call.actor.id)
        await turns.submit_message(call.uow, session, call.actor, lane.as_message(item))
        return await self._lane_reply(call, session, "Thanks — FlowPilot is looking at it.")

    async def _act_lane_status(self, call: Call, status: LaneStatus) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        await lane.set_status(call.uow, session, call.uuid("item_id"), status, call.actor.id)
        await cards.publish_lane(call.uow, session)
        return await self._lane_reply(call, session, None)

    async def _lane_reply(self, call: Call, session: Session, text: str | None) -> Reply:
        items = await call.uow.lane.active(session.id)
        live = await call.uow.facts.live(session.id)
        return Reply(text=text, card=cards.lane_view(session, items, live), session_id=str(session.id))

    # ------------------------------------------------------------------ actions: facts
    async def _add_note(self, call: Call, session: Session, text: str) -> Reply:
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        await facts.add_note(call.uow, session, call.actor.id, text)
        await cards.publish_lane(call.uow, session)
        return await self._lane_reply(call, session, "Added to What we know.")

    async def _act_add_note(self, call: Call) -> Reply:
        return await self._add_note(call, await call.session(), call.text or "")

    async def _act_edit_fact(self, call: Call) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        await facts.edit(call.uow, session, call.uuid("fact_id"), text=call.text)
        await cards.publish_lane(call.uow, session)
        return await self._lane_reply(call, session, "Fact updated.")

    async def _act_delete_fact(self, call: Call) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        await facts.delete(call.uow, session, call.uuid("fact_id"))
        await cards.publish_lane(call.uow, session)
        return await self._lane_reply(call, session, "Fact deleted.")

    async def _act_promote(self, call: Call) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        item = await lane.get_item(call.uow, session, call.uuid("item_id"))
        text = (call.text or "").strip()
        if not text:  # no fact typed: the fast-tier model writes it from the answer/output (§5.5)
            return Reply(text=await updates.request_synthesis(call.uow, session, call.actor, item),
                         session_id=str(session.id))
        facts.check_promote_inputs(text, None)
        await facts.promote(call.uow, session, call.actor.id, facts.source_type_for(item.kind), item.id, text,
                            summary=None)
        await cards.publish_lane(call.uow, session)
        return await self._lane_reply(call, session, "Added to What we know.")

    # ------------------------------------------------------------------ actions: fixes
    async def _fix_reply(self, call: Call, session: Session, fix, text: str | None) -> Reply:
        await cards.publish_fix(call.uow, session, fix)
        return Reply(text=text, card=cards.fix_view(session, fix), session_id=str(session.id))

    async def _act_fix_applied(self, call: Call) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        fix, changed = await fixes.mark_applied(call.uow, session, call.uuid("fix_id"))
        return await self._fix_reply(call, session, fix, "Marked as applied — tell FlowPilot how it goes."
                                     if changed else None)

    async def _act_outcome(self, call: Call, outcome: FixStatus) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        fix = await fixes.record_outcome(call.uow, session, call.uuid("fix_id"), outcome, call.text)
        return await self._fix_reply(call, session, fix, f"Recorded: {outcome.value.replace('_', ' ')}.")

    async def _act_confirm(self, call: Call) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        fix = await fixes.confirm_proposal(call.uow, session, call.uuid("fix_id"), call.text)
        return await self._fix_reply(call, session, fix, f"Recorded: {fix.status.value.replace('_', ' ')}.")

    async def _act_reject(self, call: Call) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        fix = await fixes.clear_proposal(call.uow, session, call.uuid("fix_id"))
        return await self._fix_reply(call, session, fix, None)


class _Abort(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


__all__ = ["Copilot", "Call", "Conflict"]
