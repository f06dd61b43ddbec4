"""Teams authentication wiring: inbound channel-token validation and outbound Bot Connector tokens.

botbuilder 4.17.1 is the final release, so its defects are worked around here rather than waited on
(facts below were read from the installed botframework-connector source):

* `ConfigurationBotFrameworkAuthentication` reads its configuration with `getattr`; a dict silently
  means "no app id" and disables inbound auth. `SdkAuthConfig` is an attribute object.
* Setting any override (metadata URL, issuer, login URL, scope, caller id…) switches the SDK from its
  built-in public-cloud path to `_ParameterizedBotFrameworkAuthentication`. We *always* take that
  path, with the public-cloud values spelled out, so tests against a fake issuer run the same code as
  production. Two quirks of that path are handled by `_ChannelAuthentication`:
  - only `None` counts as "no Authorization header"; `""` dereferences a missing identity
    (AttributeError → HTTP 500). Blank headers are normalised to `None`.
  - bad tokens surface as `jwt` errors, `IndexError` (unknown `kid`), `KeyError` (no `iss`) or bare
    `Exception("Could not validate endorsement key")`, not `PermissionError`, so they would be 500s.
    Every validation failure becomes `ChannelAuthError` (a `PermissionError` → 401).
* The OpenID/JWKS download (`jwt_token_extractor._OpenIdMetadata._refresh`) is a synchronous
  `requests.get` with no timeout on the event loop, and its unknown-`kid` lookup raises instead of
  triggering the intended hourly re-fetch. `_OffLoopOpenIdMetadata` fetches in a worker thread (with
  a timeout) and returns "not found" so the SDK's own re-fetch logic works.
* Outbound tokens: see `credentials.CachedCredentialsFactory` (cached per app id and scope, fetched
  off the loop).
* Connector clients: msrest retries 408/5xx (and connection errors) inside `requests` for PUT/GET,
  sleeping up to any `Retry-After`, and turns an exhausted status retry into a status-less
  `ClientRequestError`. `_SingleRetryAuthorityConnectorFactory` switches that off so the Teams sender
  is the only retry authority, and bounds the socket timeout.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, CallerIdConstants
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    ManagedIdentityServiceClientCredentialsFactory,
    PasswordServiceClientCredentialFactory,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)
from botframework.connector.auth import jwt_token_extractor as _sdk_jwt
from botframework.connector.skills import BotFrameworkClient

from .credentials import BOT_FRAMEWORK_SCOPE, CachedCredentialsFactory, OutboundTokenError

__all__ = [
    "CachedCredentialsFactory", "ChannelAuthError", "ChannelAuthUnavailable", "OutboundTokenError",
    "SdkAuthConfig", "TeamsAuthSettings", "build_cloud_adapter", "credentials_factory_of",
    "make_credentials_factory", "sdk_auth_config",
]

log = logging.getLogger(__name__)

APP_TYPES = {"singletenant": "SingleTenant", "multitenant": "MultiTenant", "userassignedmsi": "UserAssignedMSI"}
LOGIN_URL_PREFIX = AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX  # https://login.microsoftonline.com/
MULTI_TENANT_AUTH_TENANT = AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT  # botframework.com
METADATA_FETCH_TIMEOUT_S = 10.0


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class TeamsAuthSettings:
    """What the Teams transport needs to authenticate, in both directions.

    `openid_metadata_url` / `token_issuer` replace the channel's OpenID metadata URL and token issuer
    (inbound JWT validation); `token_endpoint` is a full OAuth2 token URL. When it is set, outbound
    tokens come from a plain client-credentials POST to it instead of MSAL (MSAL insists on an https
    authority and runs instance/tenant discovery, so it cannot talk to a local fake)."""

    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_type: str = "SingleTenant"
    tenant_id: str = ""
    openid_metadata_url: str | None = None
    token_issuer: str | None = None
    token_endpoint: str | None = None

    @property
    def normalized_app_type(self) -> str:
        return APP_TYPES.get((self.app_type or "SingleTenant").strip().lower(), self.app_type)

    def problems(self) -> list[str]:
        """Configuration errors that make an adapter with this app id unusable (empty when fine)."""
        if not self.app_id:
            return ["APP_ID is empty"]
        app_type = self.normalized_app_type
        found: list[str] = []
        if app_type not in APP_TYPES.values():
            found.append(f"APP_TYPE {self.app_type!r} is not one of {sorted(APP_TYPES.values())}")
        if app_type in ("SingleTenant", "MultiTenant") and not self.app_password:
            found.append("APP_PASSWORD is empty")
        if app_type in ("SingleTenant", "UserAssignedMSI") and not self.tenant_id:
            found.append(f"APP_TENANTID is required for APP_TYPE={app_type}")
        if app_type == "UserAssignedMSI" and self.token_endpoint:
            found.append("a token endpoint override needs a client secret; it cannot be used with a managed identity")
        return found


@dataclass(frozen=True)
class SdkAuthConfig:
    """The attribute object `ConfigurationBotFrameworkAuthentication` reads with getattr (never a dict)."""

    APP_ID: str | None
    APP_PASSWORD: str | None = field(repr=False)
    APP_TYPE: str
    APP_TENANTID: str | None
    CHANNEL_SERVICE: str | None
    VALIDATE_AUTHORITY: bool
    TO_CHANNEL_FROM_BOT_LOGIN_URL: str
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE: str
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str
    TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL: str
    OAUTH_URL: str
    CALLER_ID: str


def sdk_auth_config(settings: TeamsAuthSettings) -> SdkAuthConfig:
    """Public-cloud values, spelled out so the SDK always takes its parameterized path."""
    single_tenant = settings.normalized_app_type in ("SingleTenant", "UserAssignedMSI")
    login_tenant = settings.tenant_id if single_tenant and settings.tenant_id else MULTI_TENANT_AUTH_TENANT
    return SdkAuthConfig(
        APP_ID=settings.app_id or None,
        APP_PASSWORD=settings.app_password or None,
        APP_TYPE=settings.normalized_app_type,
        APP_TENANTID=settings.tenant_id or None,
        CHANNEL_SERVICE=None,
        VALIDATE_AUTHORITY=True,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=LOGIN_URL_PREFIX + login_tenant,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=BOT_FRAMEWORK_SCOPE,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.token_issuer
        or AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.openid_metadata_url
        or AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
        OAUTH_URL=AuthenticationConstants.OAUTH_URL,
        CALLER_ID=CallerIdConstants.public_azure_channel.value,
    )


# --------------------------------------------------------------------------- errors
class ChannelAuthError(PermissionError):
    """An inbound request failed channel authentication (HTTP 401)."""


class ChannelAuthUnavailable(Exception):
    """The channel's signing keys could not be fetched, so no token can be judged (HTTP 503)."""


# --------------------------------------------------------------------------- inbound: signing keys
class _OffLoopOpenIdMetadata(_sdk_jwt._OpenIdMetadata):  # SDK is frozen at 4.17.1; see module doc
    async def _refresh(self) -> None:
        try:
            keys = await asyncio.to_thread(_download_signing_keys, self.url)
        except (requests.RequestException, ValueError, KeyError, TypeError) as error:
            raise ChannelAuthUnavailable(f"cannot load channel signing keys from {self.url}: {error}") from error
        self.keys = keys
        self.last_updated = datetime.now()

    def _find(self, key_id: str):  # None (not IndexError) lets the SDK re-fetch for a rotated key
        if not any(key.get("kid") == key_id for key in self.keys or []):
            return None
        return super()._find(key_id)


def _download_signing_keys(metadata_url: str) -> list[dict[str, Any]]:
    metadata = requests.get(metadata_url, timeout=METADATA_FETCH_TIMEOUT_S)
    metadata.raise_for_status()
    jwks = requests.get(metadata.json()["jwks_uri"], timeout=METADATA_FETCH_TIMEOUT_S)
    jwks.raise_for_status()
    keys = jwks.json()["keys"]
    if not isinstance(keys, list):
        raise ValueError("JWKS 'keys' is not a list")
    return keys


def _install_off_loop_metadata(url: str) -> None:
    # The SDK keeps one metadata object per URL in a class-level dict for the whole process.
    if not isinstance(_sdk_jwt.JwtTokenExtractor.metadataCache.get(url), _OffLoopOpenIdMetadata):
        _sdk_jwt.JwtTokenExtractor.metadataCache[url] = _OffLoopOpenIdMetadata(url)


def make_credentials_factory(settings: TeamsAuthSettings) -> CachedCredentialsFactory:
    if settings.token_endpoint:
        return CachedCredentialsFactory(settings.app_id, app_password=settings.app_password,
                                        token_endpoint=settings.token_endpoint)
    sdk_factory: ServiceClientCredentialsFactory
    if settings.normalized_app_type == "UserAssignedMSI":
        sdk_factory = ManagedIdentityServiceClientCredentialsFactory(settings.app_id)
    else:
        tenant = settings.tenant_id if settings.normalized_app_type == "SingleTenant" else None
        sdk_factory = PasswordServiceClientCredentialFactory(settings.app_id, settings.app_password, tenant)
    return CachedCredentialsFactory(settings.app_id, sdk_factory=sdk_factory)


# --------------------------------------------------------------------------- the authentication wrapper
class _SingleRetryAuthorityConnectorFactory(ConnectorFactory):
    def __init__(self, inner: ConnectorFactory, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s

    async def create(self, service_url: str, audience: str = None) -> ConnectorClient:
        client = await self._inner.create(service_url, audience)
        # Applied before the client's first request, when msrest builds its per-thread session.
        retry_policy = client.config.retry_policy
        retry_policy.retries = 0  # total, connect and read
        retry_policy.policy.status_forcelist = frozenset()
        retry_policy.policy.raise_on_status = False
        client.config.connection.timeout = self._timeout_s
        return client


class _ChannelAuthentication(BotFrameworkAuthentication):
    """Delegates to the SDK and fixes how inbound failures and outbound connectors behave."""

    def __init__(self, inner: BotFrameworkAuthentication, credentials_factory: CachedCredentialsFactory,
                 connector_timeout_s: float) -> None:
        self._inner = inner
        self.credentials_factory = credentials_factory
        self._connector_timeout_s = connector_timeout_s

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        header = auth_header.strip() if auth_header else ""
        try:
            result = await self._inner.authenticate_request(activity, header or None)
        except (ChannelAuthError, ChannelAuthUnavailable):
            raise
        except PermissionError as error:
            raise ChannelAuthError(str(error)) from error
        except Exception as error:  # malformed/forged token: jwt errors, unknown kid, endorsement…
            raise ChannelAuthError(f"invalid channel token ({type(error).__name__}: {error})") from error
        if result.connector_factory is not None:
            result.connector_factory = self._tuned(result.connector_factory)
        return result

    def _tuned(self, factory: ConnectorFactory) -> ConnectorFactory:
        return _SingleRetryAuthorityConnectorFactory(factory, self._connector_timeout_s)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._tuned(self._inner.create_connector_factory(claims_identity))

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str):
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        return await self._inner.create_user_token_client(claims_identity)

    def create_bot_framework_client(self) -> BotFrameworkClient:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self._inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self._inner.authenticate_channel_request(auth_header)


def build_cloud_adapter(settings: TeamsAuthSettings, *, allow_unauthenticated: bool = False,
                        connector_timeout_s: float = 30.0) -> CloudAdapter:
    """A CloudAdapter that validates inbound channel tokens and sends with cached tokens.

    Without an app id the SDK accepts unauthenticated requests, so that needs
    `allow_unauthenticated=True` (loopback development only; see `endpoint.teams_enabled`)."""
    if not settings.app_id:
        if not allow_unauthenticated:
            raise ValueError("Teams APP_ID is empty: refusing to build an adapter that skips inbound authentication")
        log.warning("teams: APP_ID is empty, inbound authentication is DISABLED (insecure development mode)")
    else:
        problems = settings.problems()
        if problems:
            raise ValueError("Teams configuration is incomplete: " + "; ".join(problems))
        if settings.normalized_app_type == "MultiTenant":
            log.warning("teams: APP_TYPE=MultiTenant; new Azure bots must be SingleTenant")
    config = sdk_auth_config(settings)
    for url in (config.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL, config.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL):
        _install_off_loop_metadata(url)
    factory = make_credentials_factory(settings)
    inner = ConfigurationBotFrameworkAuthentication(config, credentials_factory=factory)
    return CloudAdapter(_ChannelAuthentication(inner, factory, connector_timeout_s))


def credentials_factory_of(adapter: CloudAdapter) -> CachedCredentialsFactory | None:
    """The cached factory behind an adapter built by `build_cloud_adapter` (None otherwise)."""
    return getattr(adapter.bot_framework_authentication, "credentials_factory", None)
