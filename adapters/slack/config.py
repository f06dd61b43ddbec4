"""Which Slack transport and token mode to run, decided from settings alone (pure, unit-tested).

Three ways to run (docs/slack.md):
- single workspace: SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET, events over HTTP at /slack/events;
- OAuth distribution: SLACK_CLIENT_ID + SLACK_CLIENT_SECRET (+ SLACK_SIGNING_SECRET); every workspace
  installs through /slack/install and its bot token lives in our database;
- Socket Mode: SLACK_APP_TOKEN (xapp-…) with a bot token (or OAuth), no public URL needed.
HTTP and Socket Mode may run side by side (the HTTP route is mounted whenever a signing secret is set)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_API_URL = "https://slack.com/api/"


class SlackConfigError(ValueError):
    """Slack settings that cannot work together; the message says what to set."""


@dataclass(frozen=True)
class SlackOptions:
    """Tunables that are not environment settings (tests shorten the pacing)."""

    post_interval_s: float = 1.0  # Slack allows about one message per second per channel
    rate_limit_retries: int = 2  # in-call retries of a 429 before the outbox takes over
    max_inline_retry_after_s: float = 5.0  # longer Retry-After: fail the call, let the outbox wait
    profile_timeout_s: float = 1.5  # users.info is best effort


@dataclass(frozen=True)
class SlackConfig:
    signing_secret: str | None
    bot_token: str | None
    client_id: str | None
    client_secret: str | None
    app_token: str | None
    api_url: str
    secret_key: str | None

    @property
    def oauth(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def http_enabled(self) -> bool:
        return bool(self.signing_secret)

    @property
    def socket_mode(self) -> bool:
        return bool(self.app_token)

    @property
    def mode(self) -> str:
        return "oauth" if self.oauth else "single"

    def describe(self) -> str:
        transports = [t for t, on in (("HTTP /slack/events", self.http_enabled), ("Socket Mode", self.socket_mode)) if on]
        tokens = "OAuth installations" if self.oauth else "one workspace (SLACK_BOT_TOKEN)"
        return f"Slack enabled: {' + '.join(transports)}; tokens from {tokens}"


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    raw = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return raw.strip() or None


def normalise_api_url(url: str | None) -> str:
    """slack_sdk joins method names onto the base URL, so it must end with a slash."""
    if not url or not url.strip():
        return DEFAULT_API_URL
    url = url.strip()
    return url if url.endswith("/") else url + "/"


def slack_config(settings: Any) -> SlackConfig | None:
    """None when Slack is not configured at all; SlackConfigError when it is half configured."""
    cfg = SlackConfig(
        signing_secret=_secret(settings.slack_signing_secret),
        bot_token=_secret(settings.slack_bot_token),
        client_id=(settings.slack_client_id or "").strip() or None,
        client_secret=_secret(settings.slack_client_secret),
        app_token=_secret(settings.slack_app_token),
        api_url=normalise_api_url(settings.slack_api_url),
        secret_key=_secret(settings.secret_key),
    )
    if not any((cfg.signing_secret, cfg.bot_token, cfg.client_id, cfg.client_secret, cfg.app_token)):
        return None
    if bool(cfg.client_id) != bool(cfg.client_secret):
        raise SlackConfigError("OAuth needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET.")
    if not cfg.oauth and not cfg.bot_token:
        raise SlackConfigError("Set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID/SLACK_CLIENT_SECRET "
                               "(installable app).")
    if not cfg.http_enabled and not cfg.socket_mode:
        raise SlackConfigError("Set SLACK_SIGNING_SECRET (events over HTTP at /slack/events) or SLACK_APP_TOKEN "
                               "(Socket Mode, no public URL).")
    if cfg.oauth and not cfg.signing_secret:
        raise SlackConfigError("OAuth distribution needs SLACK_SIGNING_SECRET: installs arrive over HTTP.")
    if cfg.app_token and not cfg.app_token.startswith("xapp-"):
        raise SlackConfigError("SLACK_APP_TOKEN must be an app-level token (it starts with xapp-).")
    return cfg
