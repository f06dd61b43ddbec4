"""Outbound Bot Connector tokens, cached per (app_id, scope) and fetched off the event loop.

Why (botframework-connector 4.17.1 / msrest 0.7.1 source):
* `PasswordServiceClientCredentialFactory.create_credentials` returns a new `MicrosoftAppCredentials`
  (a new MSAL app with an empty cache) on every call, and the SDK calls it for every inbound turn and
  every proactive operation (connector client + user-token client).
* msrest asks for the token inside `AsyncRequestsCredentialsPolicy.send` via the synchronous
  `signed_session()` on the event loop, so each MSAL fetch blocks the loop.

`CachedCredentialsFactory` keeps one credentials object per (app_id, scope) and `prepare()`s it in a
worker thread each time the SDK asks for it, so `signed_session()` only ever reads a cached token.

Production keeps the SDK's credentials (MSAL via `PasswordServiceClientCredentialFactory`, or the
managed-identity factory). Tests and local fakes set a token URL instead: MSAL requires an https
authority and runs instance/tenant discovery, so it cannot be pointed at a local HTTP server; the
token-endpoint credentials do a plain client-credentials POST (same form fields as MSAL sends).
"""
from __future__ import annotations

import abc
import asyncio
import logging
import time

import requests
from botframework.connector.auth import (
    AppCredentials,
    AuthenticationConstants,
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)

log = logging.getLogger(__name__)

BOT_FRAMEWORK_SCOPE = AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE  # https://api.botframework.com
TOKEN_FETCH_TIMEOUT_S = 10.0
TOKEN_REFRESH_MARGIN_S = 300.0  # MSAL's own margin: a token this close to expiry is not handed out


class OutboundTokenError(Exception):
    """No Bot Connector token could be obtained. `permanent` means the credentials were refused."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.permanent = permanent


class _PreparedCredentials(AppCredentials, abc.ABC):
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

    @abc.abstractmethod
    async def _refresh_if_needed(self) -> None:
        """Make sure a fresh token is cached (each credential kind fetches it its own way)."""

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
