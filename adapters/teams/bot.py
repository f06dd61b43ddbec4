"""The Teams activity handler: activities in, core calls, cards back.

Request path (Teams redelivers after ~15 s, PLATFORMS §2.5): refresh the conversation references,
make ONE core call (a database transaction that de-duplicates on the activity id and only enqueues
the slow work), answer. Nothing in here waits on the model, the PSA or, for messages, the Bot
Connector: replies to a message (notices, errors, a typing indicator) go out on background tasks.

- message: the text without the bot's @mention → `copilot.mention` (commands, a turn in a session
  thread, or a new session). In personal chats there is no mention and the same call applies.
  A message whose `value` holds one of our cards' data is an Action.Submit (clients without
  Universal Actions): → `copilot.action`, the card is updated in place with update_activity.
- invoke `adaptiveCard/action` (Action.Execute): → `copilot.action`; the invoke response carries the
  re-rendered card (or a message for errors and notices). Other copies of that card are updated by
  the core's outbox.
- conversationUpdate / installationUpdate / anything else: references only."""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.schema import Activity

from adapters.teams.cards import message_activity, render_card
from adapters.teams.inbound import (
    clean, inbound_of, mentioned_people, tenant_of, text_without_bot_mention, user_key,
)
from adapters.teams.ops import TeamsOps
from adapters.teams.payloads import CardAction, card_response, message_response, read_action
from adapters.teams.refs import ConversationRefs, reference_of, references_for, user_ref_key
from adapters.teams.sender import TeamsDeliveryError
from core.commands import Reply, parse_command
from core.views import TextView

log = logging.getLogger(__name__)

EXECUTE_INVOKE = "adaptiveCard/action"
TURN_COMMANDS = ("", "new")  # a message that reaches the model: worth a typing indicator
INVOKE_CACHE_SIZE = 512
_WIRE = "flowpilot.activity"


class Background:
    """Fire-and-forget work that must not hold the HTTP response, tracked so shutdown can end it."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, work: Awaitable[Any], name: str) -> asyncio.Task:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("teams: background task %s failed", task.get_name(), exc_info=task.exception())

    async def close(self, grace_s: float = 5.0) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@dataclass(frozen=True)
class Outcome:
    """What the clicker should see: a card in place of the clicked one, and/or a short message."""

    card: Any | None = None
    text: str | None = None
    error: bool = False


def outcome_of(reply: Reply, clicked_kind: str | None) -> Outcome:
    if reply.error is not None:
        return Outcome(text=str(reply.error), error=True)
    if reply.form is not None:
        return Outcome(card=reply.form)
    if reply.card is not None and getattr(reply.card, "type", None) == clicked_kind:
        return Outcome(card=reply.card, text=reply.text)
    if clicked_kind == "form":  # the form is done: leave a note where it was
        return Outcome(card=TextView(kind="notice", text=reply.text or "Done."))
    return Outcome(text=reply.text or "Done.")


class FlowPilotTeamsBot(ActivityHandler):
    def __init__(self, copilot: Any, store: Any, refs: ConversationRefs, ops: TeamsOps,
                 background: Background) -> None:
        self._copilot = copilot
        self._store = store
        self._refs = refs
        self._ops = ops
        self._background = background
        # A redelivered invoke (same id) finds its first answer here when it lands on this replica.
        self._invoke_answers: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    # ------------------------------------------------------------------ every activity
    async def on_turn(self, turn_context: TurnContext) -> None:
        activity = wire_activity(turn_context.activity)
        turn_context.turn_state[_WIRE] = activity
        tenant = tenant_of(activity)
        if tenant:
            team_name = ((activity.get("channelData") or {}).get("team") or {}).get("name")
            account_id = await self._store.ensure_workspace("teams", tenant, team_name)
            await self._refs.save(account_id, references_for(activity))
        await super().on_turn(turn_context)

    # ------------------------------------------------------------------ messages
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.turn_state[_WIRE]
        inbound = inbound_of(activity)
        if inbound is None:
            log.warning("teams: message %s has no tenant or sender; ignored", activity.get("id"))
            return
        submitted = read_action(activity.get("value"))
        if submitted is not None:
            await self._on_submit(activity, inbound, submitted)
            return
        text = text_without_bot_mention(activity) or "help"
        command = parse_command(text).name
        if command == "role":
            text = await self._people_as_ids(activity, text, inbound.actor.workspace_id)
        reply = await self._copilot.mention(inbound, text)
        if reply.duplicate or reply.ignored:
            return
        views = _reply_views(reply)
        typing = reply.ok and reply.session_id is not None and command in TURN_COMMANDS
        if views or typing:
            self._background.spawn(self._answer(reference_of(activity), views, typing),
                                   f"teams-reply:{activity.get('id')}")

    async def _on_submit(self, activity: dict[str, Any], inbound: Any, clicked: CardAction) -> None:
        """Action.Submit (the fallback of Action.Execute): no invoke response, so edit and reply."""
        reply = await self._copilot.action(inbound, clicked.action, clicked.value, text=clicked.text,
                                           fields=clicked.fields)
        if reply.duplicate:
            return
        outcome = outcome_of(reply, clicked.kind)
        reference = reference_of(activity)
        card_id = activity.get("replyToId")
        work: list[Callable[[], Awaitable[Any]]] = []
        card = outcome.card
        in_place = getattr(card, "type", None) == clicked.kind or (clicked.kind == "form" and card is not None
                                                                    and card.type == "text")
        if card is not None and in_place and card_id:
            work.append(lambda: self._ops.update_activity(reference, card_id, message_activity(card)))
        elif card is not None:  # a form opened by this click: a new message, the clicked card stays
            work.append(lambda: self._ops.reply_in_conversation(reference, message_activity(card)))
        if outcome.text and (outcome.error or card is None):
            notice = TextView(kind="error" if outcome.error else "notice", text=outcome.text)
            work.append(lambda: self._ops.reply_in_conversation(reference, message_activity(notice)))
        if work:
            self._background.spawn(_in_order(work), f"teams-submit:{activity.get('id')}")

    async def _answer(self, reference: dict[str, Any], views: list[Any], typing: bool) -> None:
        if typing:
            await self._ops.send_typing(reference)
        for view in views:
            try:
                await self._ops.reply_in_conversation(reference, message_activity(view))
            except TeamsDeliveryError as error:
                log.warning("teams: could not reply in %s: %s",
                            (reference.get("conversation") or {}).get("id"), error)
                return

    async def _people_as_ids(self, activity: dict[str, Any], text: str, tenant: str) -> str:
        """`role <at>Grace</at> senior` → `role <Grace's user id> senior`, the id the core knows her by."""
        for tag, account_id in mentioned_people(activity):
            stored = await self._refs.get(user_ref_key(tenant, account_id))
            person = (stored.reference.get("user") if stored else None) or {"id": account_id}
            text = text.replace(clean(tag), user_key(person) or account_id)
        return text

    # ------------------------------------------------------------------ invokes
    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse | None:
        if turn_context.activity.name == EXECUTE_INVOKE:
            return InvokeResponse(status=200, body=await self._on_execute(turn_context.turn_state[_WIRE]))
        return await super().on_invoke_activity(turn_context)

    async def _on_execute(self, activity: dict[str, Any]) -> dict[str, Any]:
        action = (activity.get("value") or {}).get("action") or {}
        if action.get("type") != "Action.Execute":
            return message_response("This kind of card action is not supported.")
        clicked = read_action(action.get("data"), action.get("verb"))
        inbound = inbound_of(activity)
        if clicked is None or inbound is None:
            return message_response("This card is out of date. Use the latest card in the thread.")
        key = (inbound.actor.workspace_id, inbound.event_id or "")
        reply = await self._copilot.action(inbound, clicked.action, clicked.value, text=clicked.text,
                                           fields=clicked.fields)
        if reply.duplicate:
            return self._invoke_answers.get(key) or message_response("Already done.")
        outcome = outcome_of(reply, clicked.kind)
        if outcome.card is not None:
            body = card_response(render_card(outcome.card, notice=outcome.text))
        else:
            body = message_response(f"⚠️ {outcome.text}" if outcome.error else outcome.text or "Done.")
        self._remember(key, body)
        return body

    def _remember(self, key: tuple[str, str], body: dict[str, Any]) -> None:
        if not key[1]:
            return
        self._invoke_answers[key] = body
        while len(self._invoke_answers) > INVOKE_CACHE_SIZE:
            self._invoke_answers.popitem(last=False)


def wire_activity(activity: Activity) -> dict[str, Any]:
    """The activity as the channel sent it. `Activity.serialize()` alone loses fields (msrest drops
    `additional_properties`): every entity's `text`/`mentioned`, and `conversation.tenantId`, which
    the 4.17.1 schema maps as `tenantID`."""
    data = activity.serialize()
    if activity.entities:
        data["entities"] = [_model_dict(entity) for entity in activity.entities]
    for key, model in (("conversation", activity.conversation), ("from", activity.from_property),
                       ("recipient", activity.recipient)):
        if model is not None:
            data[key] = _model_dict(model)
    return data


def _model_dict(model: Any) -> dict[str, Any]:
    out = dict(getattr(model, "additional_properties", None) or {})
    out.update(model.serialize())
    if "tenantID" in out:
        out.setdefault("tenantId", out.pop("tenantID"))
    return out


def _reply_views(reply: Reply) -> list[Any]:
    """What a message's sender sees in the thread right away (Teams has no ephemeral messages)."""
    if reply.error is not None:
        return [TextView(kind="error", text=str(reply.error))]
    views: list[Any] = []
    if reply.text:
        views.append(TextView(kind="notice", text=reply.text))
    if reply.card is not None:
        views.append(reply.card)
    if reply.form is not None:
        views.append(reply.form)
    return views


async def _in_order(work: list[Callable[[], Awaitable[Any]]]) -> None:
    for step in work:
        try:
            await step()
        except TeamsDeliveryError as error:
            log.warning("teams: card update or reply failed: %s", error)
            return
