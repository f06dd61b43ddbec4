"""TeamsChannelSender: the outbox's ChannelSender for Teams (core.ports.ChannelSender).

post(destination, view):
- `thread_id` (a reply-chain or chat conversation id): a reply there, through the stored reference
  of that conversation, else the stored channel reference pointed at the chain;
- `user_id` (no thread): a DM, through the person's stored 1:1 chat, else a new 1:1 chat opened
  with the service URL and tenant from where they were last seen;
- `channel_id` only: a new reply chain in that channel (`create_channel_thread`), or in a chat
  (which has no chains) a plain post.
The returned ref is `{"channel_id", "thread_id", "activity_id", "conversation_id", "service_url",
"tenant_id"}`; `thread_id` is what replies in this message's thread use (a new chain's id is
`<channel>;messageid=<root>`). update(ref, view) replaces that activity (update_activity).

TeamsSender already retries 429/412/502/503/504 (the outbox serialises each thread), so what
reaches here is final for this attempt: it becomes DeliveryFailed with the retry hint."""
from __future__ import annotations

import logging
from typing import Any

from adapters.teams.cards import ChannelMention, message_activity
from adapters.teams.inbound import split_thread
from adapters.teams.ops import TeamsOps
from adapters.teams.refs import ConversationRefs, StoredRef, personal_ref_key, user_ref_key, with_conversation
from adapters.teams.sender import TeamsDeliveryError
from core.errors import DeliveryFailed
from core.views import TextView

log = logging.getLogger(__name__)

DEFAULT_CHANNEL_NAME = "channel"


class MissingReference(Exception):
    """No stored conversation reference for a destination: Teams offers no other way to address it."""


def delivery_failed(error: TeamsDeliveryError) -> DeliveryFailed:
    detail = f" ({error.code})" if error.code else ""
    return DeliveryFailed(f"{error}{detail}", retry_after=error.retry_after, permanent=error.permanent,
                          status=error.status)


class TeamsChannelSender:
    def __init__(self, ops: TeamsOps, refs: ConversationRefs) -> None:
        self._ops = ops
        self._refs = refs

    async def post(self, destination: dict[str, Any], view: Any) -> dict[str, Any]:
        try:
            return await self._post(destination, view)
        except TeamsDeliveryError as error:
            raise delivery_failed(error) from error
        except (MissingReference, ValueError) as error:
            raise DeliveryFailed(str(error), permanent=True) from error

    async def update(self, ref: dict[str, Any], view: Any) -> dict[str, Any]:
        try:
            conversation_id = ref["conversation_id"]
            reference = await self._conversation_reference(conversation_id, ref)
            channel = await self._channel_mention(view, ref.get("channel_id"))
            await self._ops.update_activity(reference, ref["activity_id"], message_activity(view, channel=channel))
        except TeamsDeliveryError as error:
            raise delivery_failed(error) from error
        except (MissingReference, ValueError, KeyError) as error:
            raise DeliveryFailed(f"cannot update Teams message: {error}", permanent=True) from error
        return ref

    # ---- posting
    async def _post(self, destination: dict[str, Any], view: Any) -> dict[str, Any]:
        tenant = destination.get("workspace_id") or ""
        thread = destination.get("thread_id")
        if thread:
            return await self._reply(thread, destination.get("channel_id"), view)
        if destination.get("user_id"):
            return await self._direct_message(tenant, destination["user_id"], view)
        channel_id = destination.get("channel_id")
        if not channel_id:
            raise MissingReference("a Teams destination needs a thread, a user or a channel")
        stored = await self._refs.get(channel_id)
        if stored is None:
            raise MissingReference(f"FlowPilot has no conversation reference for Teams channel {channel_id}: "
                                   "install the app in that team (or @mention FlowPilot there once)")
        activity = message_activity(view, channel=await self._channel_mention(view, channel_id))
        if (stored.reference.get("conversation") or {}).get("conversationType") == "channel":
            return await self._new_thread(stored, tenant, channel_id, activity)
        return await self._send(with_conversation(stored.reference, channel_id), channel_id, channel_id, activity)

    async def _reply(self, thread: str, channel_id: str | None, view: Any) -> dict[str, Any]:
        reference = await self._conversation_reference(thread)
        activity = message_activity(view, channel=await self._channel_mention(view, channel_id))
        return await self._send(reference, channel_id or split_thread(thread)[0], thread, activity)

    async def _new_thread(self, stored: StoredRef, tenant: str, channel_id: str,
                          activity: dict[str, Any]) -> dict[str, Any]:
        reference = stored.reference
        tenant = tenant or (reference.get("conversation") or {}).get("tenantId") or ""
        created, root_id = await self._ops.create_channel_thread(reference["serviceUrl"], tenant, channel_id, activity)
        thread = created["conversation"]["id"]
        return _message_ref(channel_id, thread, root_id, thread, reference)

    async def _direct_message(self, tenant: str, user_id: str, view: Any) -> dict[str, Any]:
        personal = await self._refs.get(personal_ref_key(tenant, user_id))
        if personal is not None:
            reference = personal.reference
        else:
            member = await self._refs.get(user_ref_key(tenant, user_id))
            if member is None:
                raise MissingReference(f"FlowPilot has not seen Teams user {user_id} yet, so it cannot message "
                                       "them: they need to use FlowPilot (or install the app) first")
            account = member.reference.get("user") or {}
            reference = await self._ops.create_personal_conversation(member.reference["serviceUrl"], tenant,
                                                                     account.get("id") or user_id)
            keys = {user_id, account.get("id"), account.get("aadObjectId")} - {None}
            rows = {personal_ref_key(tenant, key): reference for key in keys}
            rows[reference["conversation"]["id"]] = reference
            await self._refs.save(member.account_id, rows)
        conversation_id = reference["conversation"]["id"]
        activity = message_activity(view)
        return await self._send(with_conversation(reference, conversation_id), conversation_id, conversation_id,
                                activity)

    async def _send(self, reference: dict[str, Any], channel_id: str, thread: str,
                    activity: dict[str, Any]) -> dict[str, Any]:
        activity_id = await self._ops.reply_in_conversation(reference, activity)
        return _message_ref(channel_id, thread, activity_id, reference["conversation"]["id"], reference)

    # ---- references
    async def _conversation_reference(self, conversation_id: str,
                                      ref: dict[str, Any] | None = None) -> dict[str, Any]:
        base, root = split_thread(conversation_id)
        stored = await self._refs.get(conversation_id)
        if stored is not None:
            return with_conversation(stored.reference, conversation_id, root_id=root)
        channel = await self._refs.get(base) if root else None
        if channel is not None:
            return with_conversation(channel.reference, conversation_id, root_id=root)
        if ref and ref.get("service_url"):  # a message we posted: its ref carries the address
            return {"serviceUrl": ref["service_url"], "channelId": "msteams",
                    "conversation": {"id": conversation_id, "tenantId": ref.get("tenant_id")},
                    **({"activityId": root} if root else {})}
        raise MissingReference(f"FlowPilot has no conversation reference for Teams conversation {conversation_id}")

    async def _channel_mention(self, view: Any, channel_id: str | None) -> ChannelMention | None:
        if not (isinstance(view, TextView) and view.mention_channel and channel_id):
            return None
        stored = await self._refs.get(channel_id)
        name = ((stored.reference.get("conversation") or {}).get("name") if stored else None) or DEFAULT_CHANNEL_NAME
        return ChannelMention(id=channel_id, name=name)


def _message_ref(channel_id: str, thread: str, activity_id: str, conversation_id: str,
                 reference: dict[str, Any]) -> dict[str, Any]:
    return {"channel_id": channel_id, "thread_id": thread, "activity_id": activity_id,
            "conversation_id": conversation_id, "service_url": reference.get("serviceUrl"),
            "tenant_id": (reference.get("conversation") or {}).get("tenantId")}
