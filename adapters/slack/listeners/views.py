"""Modal submissions. Like every request, the core is called BEFORE the ack (record, then ack);
here the ack also carries the outcome: a refusal keeps the modal open with the error on its field
(`response_action: errors`), so nothing typed is lost and nothing looks recorded when it was not
(DOMAIN pitfall 17). The call is one database transaction (AI work is queued), well inside
Slack's 3 seconds."""
from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp

from adapters.slack.deps import SlackDeps
from adapters.slack.listeners.failures import report_crash
from adapters.slack.modals import field_errors, form_modal, submitted_fields, submitted_text
from adapters.slack.payloads import INPUT_CALLBACK, ModalContext, view_event_id
from adapters.slack.replies import notice_for

log = logging.getLogger(__name__)

VIEW_PATTERN = re.compile(r"^fp:")
SUBMIT_PROFILE_TIMEOUT_S = 0.8  # the ack waits for this call: keep the name lookup short


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def on_submit(ack: Any, body: dict[str, Any], view: dict[str, Any], context: Any) -> None:
        meta = ModalContext.decode(view.get("private_metadata"))
        values = (view.get("state") or {}).get("values") or {}
        callback_id = str(view.get("callback_id") or "")
        team_id = str((body.get("team") or {}).get("id") or context.team_id or meta.team_id)
        user_id = str((body.get("user") or {}).get("id") or meta.user_id)
        token = await deps.token(context, team_id)
        inbound = await deps.inbound(
            team_id=team_id, user_id=user_id, token=token, channel_id=meta.channel_id or "",
            thread_ts=meta.thread_ts, event_id=view_event_id(str(view.get("id")), view.get("hash")),
            user_name=(body.get("user") or {}).get("name"), profile_timeout_s=SUBMIT_PROFILE_TIMEOUT_S)
        target = deps.target(inbound, token)
        # A failure before this returns reaches bolt (HTTP 500): Slack keeps the modal open with its
        # own error, so nothing typed is lost and nothing was recorded.
        if callback_id == INPUT_CALLBACK:
            reply = await deps.copilot.action(inbound, meta.action, meta.value, text=submitted_text(values))
        else:
            reply = await deps.copilot.action(inbound, meta.action, meta.value, fields=submitted_fields(values))

        if reply.error is not None:
            errors = field_errors(str(reply.error), getattr(reply.error, "field", None), callback_id, values)
            if errors:  # the modal stays open, showing why
                await ack(response_action="errors", errors=errors)
                return
        if reply.form is not None:  # a follow-up form replaces this one
            follow = ModalContext(action=reply.form.action.value, value=dict(reply.form.value), team_id=team_id,
                                  channel_id=meta.channel_id, thread_ts=meta.thread_ts, user_id=user_id)
            await ack(response_action="update", view=form_modal(reply.form, follow))
        else:
            await ack()
        deps.followups.start(show(reply, target), "modal submission")

    async def show(reply: Any, target: Any) -> None:
        try:
            notice = notice_for(reply)
            if notice.visibility == "ephemeral":
                await deps.responder.ephemeral(target, notice.text)
            elif notice.visibility == "thread":
                await deps.responder.in_thread(target, notice.text)
        except Exception:
            await report_crash(deps.responder, target, "modal submission")

    app.view(VIEW_PATTERN)(on_submit)
