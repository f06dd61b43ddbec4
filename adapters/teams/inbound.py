"""A Teams activity (Bot Framework wire dict) → the core's Actor / Where / Inbound, and its text.

Threads (DOMAIN §11.1): in a channel, the reply chain is the session. Its id is the reply-chain
conversation id `19:…@thread.tacv2;messageid=<root>`; a root post whose conversation id has no
`;messageid=` gets its own activity id appended. Personal and group chats have no reply chains, so
the conversation itself is the thread.

Who: `aadObjectId` (stable across bots and tenants' apps; what FLOWPILOT_ADMINS lists), else the
channel account id `29:…`. Works on plain dicts so it does not depend on the SDK's object model."""
from __future__ import annotations

import html
import re
from typing import Any

from core.commands import Actor, Inbound, Where
from core.model import Platform

THREAD_MARKER = ";messageid="
_SPACES = re.compile(r"[ \t\u00a0]+")


def split_thread(conversation_id: str) -> tuple[str, str | None]:
    """'19:c@thread.tacv2;messageid=17' → ('19:c@thread.tacv2', '17')."""
    if THREAD_MARKER in conversation_id:
        base, root = conversation_id.split(THREAD_MARKER, 1)
        return base, root or None
    return conversation_id, None


def thread_id(channel_conversation_id: str, root_id: str) -> str:
    return f"{split_thread(channel_conversation_id)[0]}{THREAD_MARKER}{root_id}"


def tenant_of(activity: dict[str, Any]) -> str | None:
    tenant = ((activity.get("channelData") or {}).get("tenant") or {}).get("id")
    return tenant or (activity.get("conversation") or {}).get("tenantId") or None


def conversation_type(activity: dict[str, Any]) -> str:
    conversation = activity.get("conversation") or {}
    kind = conversation.get("conversationType")
    if kind:
        return kind
    if ((activity.get("channelData") or {}).get("channel") or {}).get("id"):
        return "channel"
    return "groupChat" if conversation.get("isGroup") else "personal"


def user_key(account: dict[str, Any] | None) -> str | None:
    if not account:
        return None
    return account.get("aadObjectId") or account.get("id") or None


def where_of(activity: dict[str, Any], tenant: str) -> Where:
    conversation_id = (activity.get("conversation") or {}).get("id") or ""
    if conversation_type(activity) != "channel":
        return Where(Platform.TEAMS, tenant, conversation_id, conversation_id)
    channel = (activity.get("channelData") or {}).get("channel") or {}
    base, root = split_thread(conversation_id)
    if root is None:
        # A root post: the activity itself starts the reply chain. Other activity types (invokes)
        # name the message they act on in replyToId.
        root = activity.get("id") if activity.get("type") == "message" else activity.get("replyToId")
    thread = thread_id(base, root) if root else None
    return Where(Platform.TEAMS, tenant, channel.get("id") or base, thread, channel.get("name"))


def actor_of(activity: dict[str, Any], tenant: str) -> Actor | None:
    account = activity.get("from") or {}
    key = user_key(account)
    if not key:
        return None
    return Actor(Platform.TEAMS, tenant, key, account.get("name") or None)


def inbound_of(activity: dict[str, Any]) -> Inbound | None:
    """None when the activity does not say which tenant or person it comes from."""
    tenant = tenant_of(activity)
    if not tenant:
        return None
    actor = actor_of(activity, tenant)
    if actor is None:
        return None
    return Inbound(actor=actor, where=where_of(activity, tenant), event_id=activity.get("id") or None)


def mentions(activity: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in activity.get("entities") or [] if isinstance(e, dict) and e.get("type") == "mention"]


def text_without_bot_mention(activity: dict[str, Any]) -> str:
    """The message text without the @mention of this bot, found through the mention entities.

    Not `TurnContext.remove_recipient_mention`: in botbuilder 4.17.1 it feeds the bot's display
    name to `re.sub` as a pattern, so it deletes that name everywhere in the message ("new FlowPilot
    sync fails" loses "FlowPilot") and breaks on names with regex characters. Here only the exact
    entity text is removed."""
    text = activity.get("text") or ""
    bot_id = (activity.get("recipient") or {}).get("id")
    for mention in mentions(activity):
        if (mention.get("mentioned") or {}).get("id") == bot_id and mention.get("text"):
            text = text.replace(mention["text"], " ")
    return clean(text)


def clean(text: str) -> str:
    """Teams may send HTML entities and non-breaking spaces around mentions."""
    lines = [_SPACES.sub(" ", line).strip() for line in html.unescape(text).splitlines()]
    return "\n".join(lines).strip()


def mentioned_people(activity: dict[str, Any]) -> list[tuple[str, str]]:
    """(entity text, channel account id) of every person mentioned, except this bot."""
    bot_id = (activity.get("recipient") or {}).get("id")
    found = []
    for mention in mentions(activity):
        mentioned_id = (mention.get("mentioned") or {}).get("id")
        if mentioned_id and mentioned_id != bot_id and mention.get("text"):
            found.append((mention["text"], mentioned_id))
    return found
