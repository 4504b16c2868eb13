"""Constants and value types of the simulated auth server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
import math
from typing import Any

ACCESS_TOKEN_ISSUER = "https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/nts"
ID_TOKEN_ISSUER = "https://auth.tesla.com/oauth2/v3"
ACCESS_TOKEN_AUDIENCE = [
    "https://fleet-api.prd.na.vn.cloud.tesla.com",
    "https://fleet-api.prd.eu.vn.cloud.tesla.com",
    "https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/clientinfo",
]
SIGNING_KEY_ID = "sim-hs256"
AUTH_METHODS = ["pwd", "mfa", "otp"]

ERROR_EXPIRED = "token expired (401)"
ERROR_INVALID_TOKEN = "invalid_token"
ERROR_LOGIN_REQUIRED = "login_required"
INVALID_REFRESH = "The refresh_token is invalid"


class AuthorizeError(Exception):
    """The authorize request cannot be honoured (rendered as a 400 page)."""


class TokenError(Exception):
    """An OAuth error answered by the token endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        """Describe the error with its HTTP status."""
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        """Return the JSON body sent to the client."""
        return {"error": self.error, "error_description": self.description}


@dataclass(slots=True)
class TokenPair:
    """Tokens handed out together by one successful token request."""

    access_token: str
    refresh_token: str | None
    id_token: str
    expires_at: datetime

    def body(self, now: datetime) -> dict[str, Any]:
        """Return the token endpoint's JSON body as seen at ``now``."""
        remaining = max(0, math.ceil((self.expires_at - now).total_seconds()))
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "id_token": self.id_token,
            "expires_in": remaining,
            "token_type": "Bearer",
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


@dataclass(slots=True)
class AuthCode:
    """An authorization code waiting to be exchanged."""

    code: str
    client_id: str
    redirect_uri: str
    sub: str
    scopes: tuple[str, ...]
    expires_at: datetime
    code_challenge: str | None = None
    code_challenge_method: str = "plain"
    used: bool = False


@dataclass(slots=True)
class RefreshChain:
    """The rotating refresh tokens of one login."""

    id: int
    sub: str
    client_id: str
    scopes: tuple[str, ...]
    current: str
    current_issued_at: datetime
    previous: str | None = None
    previous_used_at: datetime | None = None
    previous_pair: TokenPair | None = None
    rotations: int = 0
    revoked: bool = False

    def as_dict(self, grace: timedelta) -> dict[str, Any]:
        """Describe the chain for the admin endpoint."""
        used_at = self.previous_used_at
        return {
            "id": self.id,
            "sub": self.sub,
            "client_id": self.client_id,
            "current": self.current,
            "current_issued_at": self.current_issued_at.isoformat(),
            "previous": self.previous,
            "previous_used_at": used_at.isoformat() if used_at else None,
            "grace_until": (used_at + grace).isoformat() if used_at else None,
            "rotations": self.rotations,
            "revoked": self.revoked,
        }


@dataclass(slots=True)
class AccessRecord:
    """What the simulator remembers about an access token it signed."""

    sub: str
    client_id: str
    scopes: tuple[str, ...]
    revoked: bool = False
    partner_region: str | None = None  # partner tokens: the audience's region


@dataclass(slots=True)
class TokenOutcome:
    """The answer of the token endpoint plus facts for the request log."""

    status: int
    body: dict[str, Any]
    sub: str | None = None
    replay: bool = False

    @property
    def error(self) -> str | None:
        """Return the OAuth error key, if any."""
        value = self.body.get("error")
        return value if isinstance(value, str) else None


@dataclass(slots=True)
class AccessCheck:
    """The result of checking a bearer token."""

    error: str | None
    sub: str | None = None
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    expired: bool = False
    partner_region: str | None = None  # set for partner (client_credentials) tokens

    @property
    def ok(self) -> bool:
        """Whether the token grants access."""
        return self.error is None
