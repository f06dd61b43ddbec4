"""Mount Slack on our aiohttp application: the bolt AsyncApp, its routes, the outbox sender and,
with SLACK_APP_TOKEN, the Socket Mode connection.

Routes (HTTP mode): POST /slack/events (events, interactivity and slash commands: bolt verifies
the signature and answers url_verification), and with OAuth GET /slack/install and
GET /slack/oauth_redirect. Record, then ack: bolt runs with `process_before_response=True`, so
Slack's 200 is sent only after the listener's core call committed (listeners/__init__.py). slack_bolt has no aiohttp request handler (PLATFORMS must-know 4), so
`bolt.async_dispatch` is wrapped here."""
from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import ingress
from adapters.slack.client import build_web_client
from adapters.slack.config import SlackConfig, SlackOptions, slack_config
from adapters.slack.deps import SlackDeps
from adapters.slack.install import build_oauth_settings, build_stores
from adapters.slack.listeners import register_all
from adapters.slack.onboarding import link_installation
from adapters.slack.pacing import ChannelPacer
from adapters.slack.profiles import Profiles
from adapters.slack.replies import Responder
from adapters.slack.sender import SlackSender
from adapters.slack.tokens import InstalledTokens, StaticTokens, TokenSource
from manifest.build import SLACK_BOT_SCOPES, SLACK_COMMANDS

log = logging.getLogger(__name__)

OPTIONS_KEY = "slack.options"  # comps.extras[OPTIONS_KEY] = SlackOptions(...) overrides the defaults
Observe = Callable[[str, float, int], None]  # (kind, seconds, HTTP status) for the ack metrics


@dataclass
class SlackRuntime:
    config: SlackConfig
    bolt: AsyncApp
    client: AsyncWebClient
    tokens: TokenSource
    sender: SlackSender
    deps: SlackDeps
    socket_handler: Any = None


AUTHORIZE_FAILED = ("FlowPilot could not check this workspace's installation just now. Please try again in a "
                    "moment.")


def request_kind(body: Any) -> str:
    return ingress.kind_of(body)


def events_handler(bolt: AsyncApp, observe: Observe | None,
                   signing_secret: str | None = None) -> Callable[[web.Request], Any]:
    async def slack_events(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:  # a body bolt cannot parse, or one that breaks bolt's own error path (ingress.py)
            bolt_request = await to_bolt_request(request)
            bolt_response = await bolt.async_dispatch(bolt_request)
        except ingress.MALFORMED:
            return await ingress.unreadable(request, signing_secret)  # 401 unless signed, then 400
        if bolt_response.status == 200 and bolt_response.body == AUTHORIZE_FAILED \
                and request_kind(bolt_request.body).startswith("event"):
            # bolt could not authorize (e.g. auth.test answered 429/5xx) and would answer 200, which
            # Slack never retries: answer 503 instead so the event is redelivered, not lost.
            return web.json_response({"error": "authorization temporarily unavailable"}, status=503)
        response = await to_aiohttp_response(bolt_response)
        if observe is not None:
            observe(request_kind(bolt_request.body), time.perf_counter() - started, response.status)
        return response

    return slack_events


def oauth_handlers(bolt: AsyncApp) -> tuple[Callable[[web.Request], Any], Callable[[web.Request], Any]]:
    flow = bolt.oauth_flow

    async def install(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await flow.handle_installation(await to_bolt_request(request)))

    async def redirect(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await flow.handle_callback(await to_bolt_request(request)))

    return install, redirect


def _build_bolt(cfg: SlackConfig, comps: Any, client: AsyncWebClient, profiles: Profiles) -> tuple[AsyncApp, TokenSource]:
    if not cfg.oauth:
        # The client carries SLACK_BOT_TOKEN; bolt authorizes every request with it.
        bolt = AsyncApp(signing_secret=cfg.signing_secret or "", client=client, name="flowpilot",
                        process_before_response=True, user_facing_authorize_error_message=AUTHORIZE_FAILED)
        return bolt, StaticTokens(cfg.bot_token or "")
    installations, states = build_stores(cfg.client_id or "", comps.db.admin, cfg.secret_key)
    oauth_settings = build_oauth_settings(
        cfg.client_id or "", cfg.client_secret or "", SLACK_BOT_SCOPES, installations, states,
        on_install=functools.partial(link_installation, comps.store, profiles))
    bolt = AsyncApp(signing_secret=cfg.signing_secret or "", client=client, oauth_settings=oauth_settings,
                    name="flowpilot", process_before_response=True,
                    user_facing_authorize_error_message=AUTHORIZE_FAILED)
    return bolt, InstalledTokens(installations, fallback=cfg.bot_token)


async def mount_slack(app: web.Application, comps: Any, observe: Observe | None = None) -> SlackRuntime | None:
    """Everything Slack needs, or None when Slack is not configured. Registers the sender in
    `comps.runtime.senders["slack"]`, so call it before the runtime starts."""
    cfg = slack_config(comps.settings)
    if cfg is None:
        return None
    options: SlackOptions = comps.extras.get(OPTIONS_KEY) or SlackOptions()
    client = build_web_client(cfg.api_url, comps.http, options, token=None if cfg.oauth else cfg.bot_token)
    profiles = Profiles(client, options.profile_timeout_s)
    bolt, tokens = _build_bolt(cfg, comps, client, profiles)
    deps = SlackDeps(copilot=comps.copilot, client=client, tokens=tokens, profiles=profiles,
                     responder=Responder(client, comps.http), http=comps.http)
    register_all(bolt, deps, SLACK_COMMANDS)
    bolt.error(ingress.error_handler(cfg.signing_secret))  # malformed → 400, unsigned → 401, else 500

    async def drain_followups(_app: web.Application) -> None:
        await deps.followups.drain()

    app.on_shutdown.append(drain_followups)  # notices already under way finish before the session closes
    sender = SlackSender(client, tokens, ChannelPacer(options.post_interval_s))
    comps.runtime.senders["slack"] = sender
    runtime = SlackRuntime(config=cfg, bolt=bolt, client=client, tokens=tokens, sender=sender, deps=deps)

    if cfg.http_enabled:
        app.router.add_post("/slack/events", events_handler(bolt, observe, cfg.signing_secret))
        if cfg.oauth:
            install, redirect = oauth_handlers(bolt)
            app.router.add_get("/slack/install", install)
            app.router.add_get("/slack/oauth_redirect", redirect)
    if cfg.socket_mode:
        runtime.socket_handler = await start_socket_mode(app, bolt, cfg, client)
    log.info(cfg.describe())
    return runtime


async def start_socket_mode(app: web.Application, bolt: AsyncApp, cfg: SlackConfig, client: AsyncWebClient) -> Any:
    """Connects out to Slack over a WebSocket (no public URL). Not integration-tested: it needs
    a real Slack; the decision to start it is unit-tested (config.py)."""
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(bolt, app_token=cfg.app_token, web_client=client)
    await handler.connect_async()

    async def disconnect(_app: web.Application) -> None:
        await handler.close_async()

    app.on_cleanup.insert(0, disconnect)  # before the shared HTTP session closes
    return handler
