"""Showing the core's Reply to the person who acted.

`notice_for(reply)` is the ONE mapping from a reply (and its error category) to what Slack shows:
not_found / forbidden / conflict / invalid_input → an ephemeral message to that person;
upstream_failure → a visible message in the thread (a failed PSA post must not be missed);
Reply.text → ephemeral; duplicates and ignored messages → nothing. `Responder` carries it out."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import render
from adapters.slack.modals import form_modal
from adapters.slack.mrkdwn import clip, to_mrkdwn
from adapters.slack.payloads import ModalContext
from core.commands import Reply

log = logging.getLogger(__name__)

Visibility = Literal["ephemeral", "thread", "none"]
ICONS = {"not_found": ":mag:", "forbidden": ":no_entry:", "conflict": ":warning:", "invalid_input": ":pencil2:",
         "upstream_failure": ":rotating_light:"}
NOTICE_LIMIT = 3000


@dataclass(frozen=True)
class Notice:
    visibility: Visibility
    text: str = ""


def error_category(error: Exception) -> str:
    return str(getattr(error, "category", "error"))


def notice_for(reply: Reply) -> Notice:
    if reply.duplicate or reply.ignored:
        return Notice("none")
    if reply.error is not None:
        category = error_category(reply.error)
        icon = ICONS.get(category, ":warning:")
        text = f"{icon} {str(reply.error) or 'Something went wrong.'}"
        return Notice("thread" if category == "upstream_failure" else "ephemeral", text)
    if reply.text:
        return Notice("ephemeral", reply.text)
    return Notice("none")


@dataclass(frozen=True)
class Target:
    """Where the person acted, and what we can answer them with."""

    team_id: str
    user_id: str
    token: str
    channel_id: str | None = None
    thread_ts: str | None = None
    response_url: str | None = None
    trigger_id: str | None = None


class Responder:
    def __init__(self, client: AsyncWebClient, http: aiohttp.ClientSession) -> None:
        self.client = client
        self.http = http

    async def show(self, reply: Reply, target: Target) -> None:
        if reply.form is not None and target.trigger_id:
            await self.open_form(reply, target)
        notice = notice_for(reply)
        if notice.visibility == "ephemeral":
            await self.ephemeral(target, notice.text)
        elif notice.visibility == "thread":
            await self.in_thread(target, notice.text)

    async def open_form(self, reply: Reply, target: Target) -> None:
        form = reply.form
        context = ModalContext(action=form.action.value, value=dict(form.value), team_id=target.team_id,
                               channel_id=target.channel_id, thread_ts=target.thread_ts, user_id=target.user_id)
        try:
            await self.client.views_open(token=target.token, trigger_id=target.trigger_id,
                                         view=form_modal(form, context))
        except Exception as exc:
            log.warning("slack: could not open a form", extra={"error": f"{type(exc).__name__}: {exc}"})
            await self.ephemeral(target, "Slack did not open the form in time: please try again.")

    async def ephemeral(self, target: Target, text: str) -> None:
        """chat.postEphemeral; where the bot may not post (not a channel member), the request's
        response_url; failing both, a direct message, so the person always hears back."""
        body = clip(to_mrkdwn(text), NOTICE_LIMIT)
        if target.channel_id:
            try:
                await self.client.chat_postEphemeral(token=target.token, channel=target.channel_id,
                                                      user=target.user_id, text=body, thread_ts=target.thread_ts)
                return
            except Exception as exc:
                log.info("slack: ephemeral failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        if target.response_url and await self._via_response_url(target.response_url, body):
            return
        try:
            await self.client.chat_postMessage(token=target.token, channel=target.user_id, text=body)
        except Exception as exc:
            log.warning("slack: could not tell the user", extra={"user": target.user_id,
                                                                  "error": f"{type(exc).__name__}: {exc}"})

    async def ephemeral_card(self, target: Target, view: object) -> None:
        """A card only the person sees (e.g. the `queue` list with its Pick up buttons); as plain
        text where Slack refuses it."""
        rendered = render(view)
        if target.channel_id:
            try:
                await self.client.chat_postEphemeral(token=target.token, channel=target.channel_id,
                                                      user=target.user_id, text=rendered.text, blocks=rendered.blocks,
                                                      thread_ts=target.thread_ts)
                return
            except Exception as exc:
                log.info("slack: ephemeral card failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        await self.ephemeral(target, rendered.text)

    async def in_thread(self, target: Target, text: str) -> None:
        body = clip(to_mrkdwn(text), NOTICE_LIMIT)
        if not target.channel_id:
            await self.ephemeral(target, text)
            return
        try:
            await self.client.chat_postMessage(token=target.token, channel=target.channel_id, text=body,
                                               thread_ts=target.thread_ts)
        except Exception as exc:
            log.warning("slack: visible error reply failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            await self.ephemeral(target, text)

    async def _via_response_url(self, url: str, text: str) -> bool:
        try:
            async with self.http.post(url, json={"response_type": "ephemeral", "replace_original": False,
                                                 "text": text}, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                return resp.status == 200
        except Exception as exc:
            log.info("slack: response_url failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            return False
