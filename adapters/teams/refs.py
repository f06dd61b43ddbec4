"""Teams conversation references (PLATFORMS §2.7) in `conversation_refs`.

Proactive sends need what only inbound activities carry (`serviceUrl`, tenant, conversation id),
so every inbound activity, including the install `conversationUpdate`, refreshes them. It is an
infrastructure table (read before the tenant is known and by the outbox for any tenant), written on
the app role's no-tenant connection with one upsert per activity.

Rows (key → reference in Bot Framework wire form, `ConversationReference.serialize()`):
- `<conversation id>`: a chat, a channel (`19:…@thread.tacv2`, also a team's id) or a channel reply
  chain (`…;messageid=<root>`). A reply chain's `activityId` is its root, so a proactive reply lands
  in that chain; chats and channels have none (posts go to the conversation).
- `user:<tenant>:<user>`: the last conversation a person was seen in, with their channel account
  (`29:…` id, aadObjectId), keyed by aadObjectId and by `29:` id. A DM needs it.
- `personal:<tenant>:<user>`: the person's 1:1 chat with the bot."""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from adapters.teams.inbound import conversation_type, split_thread, tenant_of, thread_id, user_key
from storage.db import Database
from storage.tables import conversation_refs

PLATFORM = "teams"
KEY_MAX = 512


def user_ref_key(tenant: str, user: str) -> str:
    return f"user:{tenant}:{user}"


def personal_ref_key(tenant: str, user: str) -> str:
    return f"personal:{tenant}:{user}"


@dataclass(frozen=True)
class StoredRef:
    account_id: uuid.UUID
    reference: dict[str, Any]


def reference_of(activity: dict[str, Any]) -> dict[str, Any]:
    """What `TurnContext.get_conversation_reference(activity).serialize()` gives, from the wire dict."""
    reference = {
        "activityId": activity.get("id"),
        "user": copy.deepcopy(activity.get("from")),
        "bot": copy.deepcopy(activity.get("recipient")),
        "conversation": copy.deepcopy(activity.get("conversation")),
        "channelId": activity.get("channelId") or "msteams",
        "locale": activity.get("locale"),
        "serviceUrl": activity.get("serviceUrl"),
    }
    return {k: v for k, v in reference.items() if v is not None}


def with_conversation(reference: dict[str, Any], conversation_id: str, *, root_id: str | None = None,
                      name: str | None = None) -> dict[str, Any]:
    """The same reference pointed at another conversation (a channel, or one of its reply chains)."""
    derived = copy.deepcopy(reference)
    conversation = dict(derived.get("conversation") or {})
    conversation["id"] = conversation_id
    if name:
        conversation["name"] = name
    derived["conversation"] = conversation
    derived.pop("activityId", None)
    if root_id:
        derived["activityId"] = root_id
    return derived


def references_for(activity: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every row an inbound activity refreshes."""
    tenant = tenant_of(activity)
    conversation_id = (activity.get("conversation") or {}).get("id")
    if not tenant or not conversation_id or not activity.get("serviceUrl"):
        return {}
    base = reference_of(activity)
    base.setdefault("conversation", {})["tenantId"] = tenant
    rows: dict[str, dict[str, Any]] = {}
    kind = conversation_type(activity)
    if kind == "channel":
        channel = (activity.get("channelData") or {}).get("channel") or {}
        channel_id = channel.get("id") or split_thread(conversation_id)[0]
        rows[channel_id] = with_conversation(base, channel_id, name=channel.get("name"))
        _, root = split_thread(conversation_id)
        if root is None and activity.get("type") == "message" and activity.get("id"):
            root = activity["id"]  # a root post starts its own reply chain
        if root:
            chain = thread_id(channel_id, root)
            rows[chain] = with_conversation(base, chain, root_id=root)
    else:
        rows[conversation_id] = with_conversation(base, conversation_id)
    user = activity.get("from") or {}
    bot_id = (activity.get("recipient") or {}).get("id")
    if user.get("id") and user.get("id") != bot_id:
        seen_in = rows.get(conversation_id) or next(iter(rows.values()))
        for key in {user_key(user), user["id"]}:
            rows[user_ref_key(tenant, key)] = seen_in
            if kind == "personal":
                rows[personal_ref_key(tenant, key)] = seen_in
    return rows


class ConversationRefs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, account_id: uuid.UUID, references: dict[str, dict[str, Any]]) -> None:
        if not references:
            return
        # Sorted keys: concurrent upserts of overlapping rows lock them in the same order.
        rows = [dict(platform=PLATFORM, conversation_id=key, account_id=account_id, reference=ref)
                for key, ref in sorted(references.items()) if len(key) <= KEY_MAX]
        statement = pg_insert(conversation_refs).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=["platform", "conversation_id"],
            set_={"reference": statement.excluded.reference, "account_id": statement.excluded.account_id,
                  "updated_at": func.now()},
        )
        async with self._db.no_tenant() as conn:
            await conn.execute(statement)

    async def get(self, key: str) -> StoredRef | None:
        async with self._db.no_tenant() as conn:
            row = (await conn.execute(
                select(conversation_refs.c.account_id, conversation_refs.c.reference).where(
                    conversation_refs.c.platform == PLATFORM, conversation_refs.c.conversation_id == key)
            )).first()
        return StoredRef(row.account_id, row.reference) if row else None
