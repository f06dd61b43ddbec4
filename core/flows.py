"""Escalation, claim, resolve, share update and PSA connect wired into the Copilot's action and
command tables. Kept apart from copilot.py so each file holds one idea."""
from __future__ import annotations

import logging
import re
import uuid

from core import cards, handoffs, resolution, updates
from core.commands import ParsedCommand, Reply
from core.copilot import ENGINEER_RULE, Call, Copilot
from core.errors import Conflict, FlowPilotError, InvalidInput, NotFound, Retryable
from core.model import Person, Role, Session
from core.ports import PsaCredentials, PsaGateway
from core.sessions import require_role, require_session
from core.views import Action, FormField, FormView

log = logging.getLogger(__name__)

PSA_TEST_JOB = "psa_connect_test"


def register(copilot: Copilot, *, psa: PsaGateway | None, reping_minutes: float) -> None:
    flows = _Flows(copilot, psa, reping_minutes)
    a, c = copilot.actions, copilot.commands
    a[Action.ESCALATE] = flows.act_escalate
    a[Action.INTERCEPT] = flows.act_intercept
    a[Action.CLAIM] = flows.act_claim
    a[Action.SUGGESTED_STEP] = flows.act_step
    a[Action.HIDE_STEPS] = flows.act_hide
    a[Action.CONTEXT] = flows.act_context
    a[Action.RESOLVE] = flows.act_resolve
    a[Action.PREVIEW_EDIT] = flows.act_preview_edit
    a[Action.PREVIEW_CONFIRM] = flows.act_preview_confirm
    a[Action.SHARE_UPDATE] = flows.act_update
    a[Action.AUDIENCE] = flows.act_audience
    a[Action.PSA_CONNECT] = flows.act_psa_connect
    c["escalate"] = flows.cmd_escalate
    c["resolve"] = flows.cmd_resolve
    c["update"] = flows.cmd_update
    c["queue"] = flows.cmd_queue
    c["metrics"] = flows.cmd_metrics
    c["seniors here"] = flows.cmd_seniors_here
    c["psa connect"] = flows.cmd_psa_connect
    copilot.ticket_linker = flows.link_ticket
    _count_first_actions(copilot)


# A claimer's card action in the thread counts as their first action (§6.1, §13.21), like a chat
# turn does; the pickup itself and re-reading the context card do not.
NOT_FIRST_ACTIONS = frozenset({Action.CLAIM, Action.CONTEXT})


def _count_first_actions(copilot: Copilot) -> None:
    for action, handler in list(copilot.actions.items()):
        if action not in NOT_FIRST_ACTIONS:
            copilot.actions[action] = _stamping_first_action(handler)


def _stamping_first_action(handler):
    async def run(call: Call) -> Reply:
        reply = await handler(call)
        if reply.error is None and reply.session_id:
            # no-op unless the actor claimed this session's escalation and has not acted yet
            await call.uow.handoffs.mark_first_action(uuid.UUID(reply.session_id), call.actor.id)
        return reply

    return run


class _Flows:
    def __init__(self, copilot: Copilot, psa: PsaGateway | None, reping_minutes: float) -> None:
        self.copilot = copilot
        self.psa = psa
        self.reping_minutes = reping_minutes

    # ------------------------------------------------------------------ escalate
    async def _escalate(self, call: Call, session: Session, reason: str) -> Reply:
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        text, target = await self._target(call, reason)
        handoffs.check_target(call.actor, target)  # before the intercept form, not after it
        fix = await handoffs.needs_intercept(call.uow, session)
        if fix is not None:
            handoffs.check_transition(session, "escalate")
            return Reply(form=handoffs.intercept_form(session, fix, reason), session_id=str(session.id))
        handoff = await handoffs.escalate(call.uow, session, call.actor, text, target, self.reping_minutes)
        return self._escalated(handoff, session, "Escalated. Seniors have the card with your context.")

    @staticmethod
    def _escalated(handoff, session: Session, text: str) -> Reply:
        note = handoffs.delivery_note(handoff)
        return Reply(text=text + (f"\n{note}" if note else ""), session_id=str(session.id),
                     extra={"handoff_id": str(handoff.id)})

    async def _target(self, call: Call, reason: str) -> tuple[str, Person | None]:
        """`escalate <@id> <reason>` names a senior who also gets a DM: Slack sends `<@U…>`, and
        any id without spaces is accepted (console names, Teams ids). The Teams adapter replaces
        `<at>Name</at>` with the bare user id, so a first word that is a known user id here names
        the senior too (never a new person: a reason's first word is not a mention)."""
        m = re.match(r"^\s*(<@[^\s|>]+(?:\|[^>]*)?>)\s*(.*)$", reason or "", re.S)
        if m:
            return m.group(2), await self.copilot._resolve_person(call, m.group(1))
        bare = re.match(r"^\s*(\S+)\s*(.*)$", reason or "", re.S)
        if bare:
            actor = call.inbound.actor
            person = await call.uow.people.by_identity(actor.platform.value, actor.workspace_id, bare.group(1))
            if person is not None:
                return bare.group(2), person
        return reason, None

    async def act_escalate(self, call: Call) -> Reply:
        return await self._escalate(call, await call.session(), call.text or "")

    async def cmd_escalate(self, call: Call, cmd: ParsedCommand) -> Reply:
        return await self._escalate(call, await self.copilot._session_here(call), cmd.args)

    async def act_intercept(self, call: Call) -> Reply:
        session = await call.session()
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        await handoffs.record_intercept(call.uow, session, call.uuid("fix_id"), call.fields.get("outcome", ""),
                                        call.fields.get("notes"))
        reason, target = await self._target(call, call.value.get("reason", ""))
        handoff = await handoffs.escalate(call.uow, session, call.actor, reason, target, self.reping_minutes)
        return self._escalated(handoff, session, "Fix outcome recorded and escalated.")

    # ------------------------------------------------------------------ claim
    async def act_claim(self, call: Call) -> Reply:
        try:
            handoff, session, won = await handoffs.claim(call.uow, call.uuid("handoff_id"), call.actor)
        except Conflict as exc:
            return Reply(error=exc, card=await self._current_card(call))
        card = await handoffs.escalation_view(call.uow, session, handoff)
        text = "You picked it up — the handoff context is in the session thread." if won else "It's already yours."
        return Reply(text=text, card=card, session_id=str(session.id), extra={"won": won})

    async def _current_card(self, call: Call):
        """The clicked card as it stands now (claimed, or closed with the session's status), so a
        stale card is corrected where it was clicked even though the refused claim rolls back."""
        handoff = await call.uow.handoffs.get(call.uuid("handoff_id"))
        session = await call.uow.sessions.get(handoff.session_id) if handoff else None
        if handoff is None or session is None:
            return None
        return await handoffs.escalation_view(call.uow, session, handoff)

    async def _handoff(self, call: Call) -> tuple[Session, object]:
        session = await call.session()
        handoff = await call.uow.handoffs.get(call.uuid("handoff_id"), lock=True)
        if handoff is None or handoff.session_id != session.id:
            raise NotFound("Escalation not found.")
        return session, handoff

    async def act_step(self, call: Call) -> Reply:
        session, handoff = await self._handoff(call)
        try:
            index = int(call.value.get("i", "-1"))
        except ValueError:
            raise InvalidInput("That suggested step is not valid.") from None
        await handoffs.use_suggested_step(call.uow, session, handoff, call.actor, index)
        return Reply(session_id=str(session.id))

    async def act_hide(self, call: Call) -> Reply:
        session, handoff = await self._handoff(call)
        await handoffs.hide_steps(call.uow, session, handoff, call.actor)
        return Reply(session_id=str(session.id))

    async def act_context(self, call: Call) -> Reply:
        session = await call.session(lock=False)
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        handoff = await call.uow.handoffs.latest_for_session(session.id)
        if handoff is None:
            raise NotFound("This session has no handoff yet.")
        claimer = await call.uow.people.get(handoff.claimed_by) if handoff.claimed_by else None
        view = await handoffs.context_view(call.uow, session, handoff, claimer, show_steps=False)
        await call.uow.send(cards.session_destination(session), view, lane_key=cards.session_lane_key(session.id))
        return Reply(card=view, session_id=str(session.id))

    async def cmd_queue(self, call: Call, cmd: ParsedCommand) -> Reply:
        require_role(call.actor, Role.ENGINEER, "Viewers don't see the escalation queue.")
        return Reply(card=await handoffs.queue(call.uow, call.actor))

    async def cmd_metrics(self, call: Call, cmd: ParsedCommand) -> Reply:
        return Reply(text=await handoffs.metrics_text(call.uow, call.actor))

    async def cmd_seniors_here(self, call: Call, cmd: ParsedCommand) -> Reply:
        where = call.inbound.where
        text = await handoffs.add_route(call.uow, call.actor, where.platform.value, where.workspace_id,
                                        where.channel_id, where.channel_name)
        return Reply(text=text)

    # ------------------------------------------------------------------ resolve
    async def act_resolve(self, call: Call) -> Reply:
        session = await call.session()
        return Reply(text=await resolution.start_resolve(call.uow, session, call.actor), session_id=str(session.id))

    async def cmd_resolve(self, call: Call, cmd: ParsedCommand) -> Reply:
        session = await self.copilot._session_here(call)
        return Reply(text=await resolution.start_resolve(call.uow, session, call.actor), session_id=str(session.id))

    def _version(self, call: Call) -> int:
        try:
            return int(call.value.get("v", ""))
        except ValueError:
            raise InvalidInput("This draft button is missing its version.") from None

    async def act_preview_edit(self, call: Call) -> Reply:
        session = await call.session()
        await resolution.edit_preview(call.uow, session, call.actor, call.value.get("kind", ""), self._version(call),
                                      call.text or "")
        return Reply(text="Draft updated.", session_id=str(session.id))

    async def act_preview_confirm(self, call: Call) -> Reply:
        session = await call.session()
        text = await resolution.confirm_preview(call.uow, session, call.actor, call.value.get("kind", ""),
                                                self._version(call))
        return Reply(text=text, session_id=str(session.id))

    # ------------------------------------------------------------------ updates
    async def act_update(self, call: Call) -> Reply:
        session = await call.session(lock=False)
        return Reply(text=await updates.request_update(call.uow, session, call.actor), session_id=str(session.id))

    async def cmd_update(self, call: Call, cmd: ParsedCommand) -> Reply:
        session = await self.copilot._session_here(call)
        return Reply(text=await updates.request_update(call.uow, session, call.actor), session_id=str(session.id))

    async def act_audience(self, call: Call) -> Reply:
        session = await call.session(lock=False)
        require_role(call.actor, Role.ENGINEER, ENGINEER_RULE)
        text = await updates.audience(call.uow, session, call.uuid("handoff_id"), call.value.get("audience", ""))
        return Reply(text=text or "Drafting it — it will appear in the thread.", session_id=str(session.id))

    # ------------------------------------------------------------------ PSA
    async def link_ticket(self, call: Call, session: Session, ticket_id: str) -> None:
        session.psa_ticket_id = ticket_id
        session.intake_type = "psa_ticket"
        conn = await call.uow.psa.active_connection()
        if conn is None and self.psa is not None and self.psa.env_credentials() is not None:
            creds = self.psa.env_credentials()
            cid = await call.uow.psa.add_connection(creds.site_url, creds.company_id, self.psa.seal(creds), active=True)
            defaults = {k: v for k, v in self.psa.env_status_ids().items()}
            if defaults:
                prefs = await call.uow.settings.preferences()
                await call.uow.settings.merge({k: v for k, v in defaults.items() if k not in prefs})
            conn = {"id": cid}
        if conn is not None:
            session.psa_connection_id = conn["id"]

    async def cmd_psa_connect(self, call: Call, cmd: ParsedCommand) -> Reply:
        require_role(call.actor, Role.ADMIN, "Only admins can connect the PSA.")
        prefs = await call.uow.settings.preferences()
        return Reply(form=FormView(
            title="Connect ConnectWise", intro="Credentials are encrypted at rest and tested before they are used.",
            fields=[FormField(name="site_url", label="Site URL (https://…)"),
                    FormField(name="company_id", label="Company id"),
                    FormField(name="public_key", label="Public key"),
                    FormField(name="private_key", label="Private key", kind="secret"),
                    FormField(name="resolved_status_id", label="Status id for Resolved (optional)", required=False,
                              initial=str(prefs.get("cw_resolved_status_id") or "") or None),
                    FormField(name="escalated_status_id", label="Status id for Escalated (optional)", required=False,
                              initial=str(prefs.get("cw_escalated_status_id") or "") or None)],
            submit_label="Test and save", action=Action.PSA_CONNECT, value={}))

    async def act_psa_connect(self, call: Call) -> Reply:
        require_role(call.actor, Role.ADMIN, "Only admins can connect the PSA.")
        if self.psa is None:
            raise InvalidInput("PSA support is not configured on this server (set FLOWPILOT_SECRET_KEY and CW_CLIENT_ID).")
        f = {k: (v or "").strip() for k, v in call.fields.items()}
        for name in ("site_url", "company_id", "public_key", "private_key"):
            if not f.get(name):
                raise InvalidInput(f"{name.replace('_', ' ').capitalize()} is required.", field=name)
        if not re.match(r"^https?://[^\s/]+", f["site_url"]):
            raise InvalidInput("The site URL must start with https://", field="site_url")
        status_ids = {}
        for field_name, key in (("resolved_status_id", "cw_resolved_status_id"),
                                ("escalated_status_id", "cw_escalated_status_id")):
            if f.get(field_name):
                if not f[field_name].isdigit():
                    raise InvalidInput("Status ids are whole numbers from ConnectWise.", field=field_name)
                status_ids[key] = int(f[field_name])
        creds = PsaCredentials(site_url=f["site_url"].rstrip("/"), company_id=f["company_id"],
                               public_key=f["public_key"], private_key=f["private_key"])
        cid = await call.uow.psa.add_connection(creds.site_url, creds.company_id, self.psa.seal(creds), active=False)
        where = call.inbound.where
        await call.uow.enqueue(PSA_TEST_JOB, {"connection_id": str(cid), "status_ids": status_ids,
                                              "notify": {"platform": where.platform.value,
                                                         "workspace_id": where.workspace_id,
                                                         "user_id": call.inbound.actor.user_id}})
        return Reply(text="Testing the ConnectWise connection… you'll get a message with the result.")


async def run_psa_test(ctx, psa: PsaGateway) -> None:
    """Test new credentials; activate them only if ConnectWise accepts them."""
    from core.ports import Destination
    from core.views import TextView

    cid = uuid.UUID(ctx.payload["connection_id"])
    async with ctx.unit() as uow:
        connection = await uow.psa.connection(cid)
        if connection is None:  # replaced by a newer submission in the meantime
            await ctx.complete(uow)
            return
    error = None
    try:
        await psa.system_for(connection).check_connection()
    except Exception as exc:  # every failure is reported to the admin; nothing is activated
        # Our errors carry a message written to be shown (never a credential); anything else
        # is named by its type only, since its text could echo request details.
        error = (str(exc) if isinstance(exc, (FlowPilotError, Retryable)) else "") or type(exc).__name__
        log.warning("psa connection test failed", extra={"error_type": type(exc).__name__})
    n = ctx.payload["notify"]
    dest = Destination(platform=n["platform"], workspace_id=n["workspace_id"], user_id=n["user_id"])
    async with ctx.unit() as uow:
        current = await uow.psa.active_connection() if error is None else None
        if current is not None and current["id"] != cid and current["site_url"] == connection["site_url"] \
                and current["company_id"] == connection["company_id"]:
            # New keys for the same ConnectWise company (a key rotation): update the connection
            # open sessions are linked to, so they keep posting instead of finding it inactive.
            await uow.psa.replace_credentials(current["id"], connection["credentials_encrypted"])
            await uow.psa.delete(cid)
            if ctx.payload.get("status_ids"):
                await uow.settings.merge(ctx.payload["status_ids"])
            text = "ConnectWise credentials updated. Open sessions keep posting to their tickets."
        elif error is None:
            await uow.psa.activate(cid)
            if ctx.payload.get("status_ids"):
                await uow.settings.merge(ctx.payload["status_ids"])
            text = "ConnectWise is connected. New sessions with a #ticket post notes there."
        else:
            await uow.psa.delete(cid)
            text = f"ConnectWise connection failed and was not saved: {error}"
        await uow.send(dest, TextView(kind="notice" if error is None else "error", text=text))
        await ctx.complete(uow)


__all__ = ["register", "run_psa_test", "PSA_TEST_JOB", "require_session"]
