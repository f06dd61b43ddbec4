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
* Outbound tokens: see `CachedCredentialsFactory`.
* Connector clients: msrest retries 408/5xx (and connection errors) inside `requests` for PUT/GET,
  sleeping up to any `Retry-After`, and turns an exhausted status retry into a status-less
  `ClientRequestError`. `_SingleRetryAuthorityConnectorFactory` switches that off so the Teams sender
  is the only retry authority, and bounds the socket timeout.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, CallerIdConstants
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AppCredentials,
    AuthenticateRequestResult,
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    ManagedIdentityServiceClientCredentialsFactory,
    MicrosoftAppCredentials,
    PasswordServiceClientCredentialFactory,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)
from botframework.connector.auth import jwt_token_extractor as _sdk_jwt
from botframework.connector.skills import BotFrameworkClient
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

APP_TYPES = {"singletenant": "SingleTenant", "multitenant": "MultiTenant", "userassignedmsi": "UserAssignedMSI"}
BOT_FRAMEWORK_SCOPE = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE  # https://api.botframework.com
LOGIN_URL_PREFIX = AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL_PREFIX  # https://login.microsoftonline.com/
MULTI_TENANT_AUTH_TENANT = AuthenticationConstants.DEFAULT_CHANNEL_AUTH_TENANT  # botframework.com
METADATA_FETCH_TIMEOUT_S = 10.0
TOKEN_FETCH_TIMEOUT_S = 10.0
TOKEN_REFRESH_MARGIN_S = 300.0  # MSAL's own margin: a token this close to expiry is not handed out


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


class OutboundTokenError(Exception):
    """No Bot Connector token could be obtained. `permanent` means the credentials were refused."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.permanent = permanent


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


# --------------------------------------------------------------------------- outbound: credentials
class _PreparedCredentials(AppCredentials):
    """msrest asks for the token synchronously on the event loop (`signed_session`), so it must
    already be in hand: `prepare()` fetches it in a worker thread first."""

    def __init__(self, app_id: str, tenant: str | None, oauth_scope: str) -> None:
        super().__init__(app_id=app_id, channel_auth_tenant=tenant, oauth_scope=oauth_scope)
        self._lock = asyncio.Lock()
        self.last_error: OutboundTokenError | None = None

    async def prepare(self) -> None:
        async with self._lock:
            try:
                await self._refresh_if_needed()
                self.last_error = None
            except OutboundTokenError as error:
                self.last_error = error
                raise

    async def _refresh_if_needed(self) -> None:
        raise NotImplementedError

    def _raise_last_error(self) -> None:
        raise self.last_error or OutboundTokenError("no Bot Connector token has been fetched yet")


class _SdkTokenCredentials(_PreparedCredentials):
    """Production path: the SDK's own credentials (MSAL or managed identity) with a long-lived token
    cache; the first fetch and every refresh run in a worker thread, later calls are cache hits."""

    def __init__(self, inner: AppCredentials) -> None:
        super().__init__(inner.microsoft_app_id, inner.tenant, inner.oauth_scope)
        self.oauth_endpoint = inner.oauth_endpoint
        self._inner = inner

    async def _refresh_if_needed(self) -> None:
        try:
            await asyncio.to_thread(self._inner.get_access_token)
        except PermissionError as error:  # MSAL answered with an error such as invalid_client
            raise OutboundTokenError(str(error), permanent=True) from error
        except Exception as error:  # network trouble reaching the identity platform
            raise OutboundTokenError(f"token request failed: {error}") from error

    def get_access_token(self, force_refresh: bool = False) -> str:
        if self.last_error is not None:
            self._raise_last_error()  # never retry a failing fetch synchronously on the loop
        return self._inner.get_access_token(force_refresh)


class _TokenEndpointCredentials(_PreparedCredentials):
    """Client-credentials grant against a configurable token URL over plain HTTP (tests, dev)."""

    def __init__(self, app_id: str, password: str, token_url: str, oauth_scope: str) -> None:
        super().__init__(app_id, None, oauth_scope)
        self.oauth_endpoint = token_url
        self._password = password
        self._token: str | None = None
        self._expires_at = 0.0

    def _fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at - TOKEN_REFRESH_MARGIN_S

    async def _refresh_if_needed(self) -> None:
        if self._fresh():
            return
        token, expires_in = await asyncio.to_thread(
            _client_credentials_token, self.oauth_endpoint, self.microsoft_app_id, self._password, self.oauth_scope
        )
        self._token, self._expires_at = token, time.monotonic() + expires_in

    def get_access_token(self, force_refresh: bool = False) -> str:
        if self._token is None or time.monotonic() >= self._expires_at or force_refresh:
            self._raise_last_error()
        return self._token


def _client_credentials_token(token_url: str, app_id: str, password: str, scope: str) -> tuple[str, float]:
    scope = scope if scope.endswith("/.default") else scope.rstrip("/") + "/.default"
    form = {"grant_type": "client_credentials", "client_id": app_id, "client_secret": password, "scope": scope}
    try:
        response = requests.post(token_url, data=form, timeout=TOKEN_FETCH_TIMEOUT_S)
    except requests.RequestException as error:
        raise OutboundTokenError(f"token endpoint unreachable: {error}") from error
    if response.status_code != 200:
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise OutboundTokenError(
            f"token endpoint answered HTTP {response.status_code}", status=response.status_code,
            retry_after=_retry_after_seconds(response.headers.get("Retry-After")), permanent=permanent,
        )
    try:
        body = response.json()
        return str(body["access_token"]), float(body.get("expires_in", 3599))
    except (ValueError, KeyError, TypeError) as error:
        raise OutboundTokenError(f"token endpoint answered an unreadable body: {error}") from error


def _retry_after_seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class CachedCredentialsFactory(ServiceClientCredentialsFactory):
    """One credentials object per (app_id, scope) for the life of the process.

    The SDK's `PasswordServiceClientCredentialFactory` builds a new `MicrosoftAppCredentials` (new
    MSAL app, empty cache) on every call, i.e. for every inbound turn and proactive send, and msrest
    fetches the token synchronously on the loop. Here the credentials are reused and `prepare()`d off
    the loop. A failed fetch is remembered rather than raised, so an inbound turn that sends nothing
    still succeeds; a send then fails fast with that `OutboundTokenError`."""

    def __init__(self, app_id: str, *, sdk_factory: ServiceClientCredentialsFactory | None = None,
                 app_password: str = "", token_endpoint: str | None = None) -> None:
        if bool(sdk_factory) == bool(token_endpoint):
            raise ValueError("give exactly one of sdk_factory or token_endpoint")
        self.app_id = app_id
        self._sdk_factory = sdk_factory
        self._app_password = app_password
        self._token_endpoint = token_endpoint
        self._cache: dict[tuple[str, str], _PreparedCredentials] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(self.app_id) and app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool) -> AppCredentials:
        if await self.is_authentication_disabled():
            return MicrosoftAppCredentials.empty()
        if not await self.is_valid_app_id(app_id):
            raise OutboundTokenError(f"credentials requested for an unknown app id {app_id!r}", permanent=True)
        scope = oauth_scope or BOT_FRAMEWORK_SCOPE
        credentials = self._cache.get((app_id, scope))
        if credentials is None:
            credentials = await self._new_credentials(app_id, scope, login_endpoint, validate_authority)
            self._cache[(app_id, scope)] = credentials
        try:
            await credentials.prepare()
        except OutboundTokenError as error:
            log.warning("teams: outbound token fetch failed (%s); sends will fail until it recovers", error)
        return credentials

    async def _new_credentials(self, app_id: str, scope: str, login_endpoint: str,
                               validate_authority: bool) -> _PreparedCredentials:
        if self._token_endpoint:
            return _TokenEndpointCredentials(app_id, self._app_password, self._token_endpoint, scope)
        inner = await self._sdk_factory.create_credentials(app_id, scope, login_endpoint, validate_authority)
        return _SdkTokenCredentials(inner)

    def invalidate(self) -> None:
        """Forget every cached token (e.g. after the connector answered 401)."""
        self._cache.clear()


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
        client.config.retry_policy.policy = Retry(total=0, read=False, raise_on_status=False)
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
