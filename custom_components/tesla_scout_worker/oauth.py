"""OAuth2 implementation for Tesla's auth server (or a compatible one)."""

from __future__ import annotations

import base64
import binascii
from http import HTTPStatus
import json
from typing import Any, cast

from aiohttp import ClientResponse, ClientTimeout, ContentTypeError

from homeassistant.components.application_credentials import (
    AuthImplementation,
    AuthorizationServer,
    ClientCredential,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    OAuth2TokenRequestReauthError,
    OAuth2TokenRequestTransientError,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import (
    AUTH_REGION_CHINA,
    AUTHORIZE_PATH,
    AUTHORIZE_URL,
    AUTHORIZE_URL_CN,
    LOGGER,
    SCOPES,
    TOKEN_PATH,
    TOKEN_URL,
    TOKEN_URL_CN,
)

TOKEN_REQUEST_TIMEOUT = ClientTimeout(total=30)

# OAuth error codes that mean the refresh chain is dead and a new login is needed.
REJECTED_ERRORS = frozenset({"invalid_grant", "login_required", "invalid_token"})


def _error_kwargs(resp: ClientResponse, error_code: str) -> dict[str, Any]:
    return {
        "request_info": resp.request_info,
        "history": resp.history,
        "status": resp.status,
        "message": error_code,
        "headers": resp.headers,
    }


class TokenRejectedError(OAuth2TokenRequestReauthError):
    """Tesla refused the grant for good (e.g. invalid_grant): sign in again.

    An OAuth2TokenRequestReauthError, so Home Assistant's OAuth helpers and
    config entry setup treat it as "reauthentication needed".
    """

    def __init__(self, resp: ClientResponse, error_code: str, domain: str) -> None:
        """Initialize from the failed response."""
        super().__init__(domain=domain, **_error_kwargs(resp, error_code))
        self.error_code = error_code


class TokenTransientError(OAuth2TokenRequestTransientError):
    """A token request failed in a way a later retry may fix (5xx, 429, ...).

    Carries the OAuth error code and the server's Retry-After (seconds).
    """

    def __init__(
        self,
        resp: ClientResponse,
        error_code: str,
        retry_after: float | None,
        domain: str,
    ) -> None:
        """Initialize from the failed response."""
        super().__init__(domain=domain, **_error_kwargs(resp, error_code))
        self.error_code = error_code
        self.retry_after = retry_after


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """Return the claims of a JWT without verifying it (we only read our own token)."""
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except IndexError, ValueError, binascii.Error:
        return {}
    return claims if isinstance(claims, dict) else {}


def token_region(access_token: str) -> str | None:
    """Return the region (na, eu, cn) the access token's ou_code claim names."""
    region = decode_jwt_claims(access_token).get("ou_code")
    return region.lower() if isinstance(region, str) and region else None


def granted_scopes(access_token: str) -> frozenset[str] | None:
    """Return the scopes of the access token's scp claim; None when it has none."""
    scopes = decode_jwt_claims(access_token).get("scp")
    if isinstance(scopes, str):
        return frozenset(scopes.split())
    if isinstance(scopes, list):
        return frozenset(str(scope) for scope in scopes)
    return None


def _parse_retry_after(value: str | None) -> float | None:
    """Parse a Retry-After header given in seconds."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class TeslaOAuth2Implementation(AuthImplementation):
    """Tesla OAuth2 with scopes, a configurable server and typed token errors."""

    def __init__(
        self,
        hass: HomeAssistant,
        auth_domain: str,
        credential: ClientCredential,
        server_url: str | None = None,
        region: str | None = None,
    ) -> None:
        """Initialize for Tesla, or for a compatible server at server_url.

        ``region`` is the account's (the token's ou_code) when known: Chinese
        accounts sign in and refresh their tokens at auth.tesla.cn.
        """
        if server_url:
            base = server_url.rstrip("/")
            server = AuthorizationServer(base + AUTHORIZE_PATH, base + TOKEN_PATH)
        else:
            china = region == AUTH_REGION_CHINA
            server = AuthorizationServer(
                AUTHORIZE_URL_CN if china else AUTHORIZE_URL,
                TOKEN_URL_CN if china else TOKEN_URL,
            )
        super().__init__(hass, auth_domain, credential, server)
        self._credential = credential
        self.server_url = server_url
        self.region = region

    def for_server(
        self, server_url: str | None, region: str | None = None
    ) -> TeslaOAuth2Implementation:
        """Return the same credentials pointed at another server (or region)."""
        return TeslaOAuth2Implementation(
            self.hass, self.domain, self._credential, server_url, region
        )

    @property
    def extra_authorize_data(self) -> dict[str, Any]:
        """Ask for the scopes this integration needs, all of them, and a fresh login."""
        return {
            "prompt": "login",
            "scope": " ".join(SCOPES),
            "require_requested_scopes": "true",
        }

    async def _token_request(self, data: dict[str, Any]) -> dict[str, Any]:
        """Make a token request.

        A rejected grant raises TokenRejectedError, any other error answer
        TokenTransientError; network errors are left to Home Assistant's OAuth
        helper, which reports them as OAuth2TokenRequestConnectionError.
        """
        session = async_get_clientsession(self.hass)
        payload = {**data, "client_id": self.client_id}
        if self.client_secret:
            payload["client_secret"] = self.client_secret
        async with session.post(
            self.token_url, data=payload, timeout=TOKEN_REQUEST_TIMEOUT
        ) as resp:
            if resp.status >= HTTPStatus.BAD_REQUEST:
                error_code = await _error_code(resp)
                LOGGER.warning(
                    "Token request (%s) failed: HTTP %s %s",
                    data.get("grant_type"),
                    resp.status,
                    error_code,
                )
                if error_code in REJECTED_ERRORS or _code_refused(data, resp.status):
                    raise TokenRejectedError(resp, error_code, self.service_domain)
                raise TokenTransientError(
                    resp,
                    error_code,
                    _parse_retry_after(resp.headers.get("Retry-After")),
                    self.service_domain,
                )
            return cast("dict[str, Any]", await resp.json())


def _code_refused(data: dict[str, Any], status: int) -> bool:
    """Return True when a sign-in's code exchange was refused for good.

    A code is single use: any 4xx but 429 (e.g. unknown client) means a new
    sign-in, never a retry.
    """
    return (
        data.get("grant_type") == "authorization_code"
        and HTTPStatus.BAD_REQUEST <= status < HTTPStatus.INTERNAL_SERVER_ERROR
        and status != HTTPStatus.TOO_MANY_REQUESTS
    )


async def _error_code(resp: ClientResponse) -> str:
    """Read the OAuth error code from an error response."""
    try:
        body = await resp.json()
    except ContentTypeError, ValueError:
        return "unknown"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return cast("str", body["error"])
    return "unknown"
