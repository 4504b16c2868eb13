"""OAuth: authorization codes, signed access tokens and rotating refresh-token chains.

Refresh tokens are single use. Each login starts a chain; presenting the
chain's newest refresh token rotates it. The most recently used token stays
valid for ``refresh_grace`` and replays the pair it returned the first time,
so a client that crashed before saving the rotated token can recover. Any
other refresh token of the chain gets 401 ``login_required``.

Partner tokens (``client_credentials``) carry no user: they name a region
through their ``audience`` and are good only for the partner endpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
import hashlib
import itertools
import secrets
from typing import Any

from yarl import URL

from . import jwt
from .config import AccountConfig, ClientConfig, SimConfig
from .jwt import b64url_encode
from .regions import audience_region
from .token_types import (
    ACCESS_TOKEN_AUDIENCE,
    ACCESS_TOKEN_ISSUER,
    AUTH_METHODS,
    ERROR_EXPIRED,
    ERROR_INVALID_TOKEN,
    ERROR_LOGIN_REQUIRED,
    ID_TOKEN_ISSUER,
    INVALID_REFRESH,
    SIGNING_KEY_ID,
    AccessCheck,
    AccessRecord,
    AuthCode,
    AuthorizeError,
    RefreshChain,
    TokenError,
    TokenOutcome,
    TokenPair,
)

__all__ = [
    "ERROR_EXPIRED",
    "AccessCheck",
    "AuthorizeError",
    "TokenAuthority",
    "TokenError",
]

PARTNER_TOKEN_LIFETIME_SECONDS = 8 * 3600


@dataclass
class TokenAuthority:
    """The simulated Tesla auth server (codes, tokens, chains)."""

    config: SimConfig
    now: Callable[[], datetime]
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _codes: dict[str, AuthCode] = field(default_factory=dict)
    _chains: list[RefreshChain] = field(default_factory=list)
    _refresh_index: dict[str, RefreshChain] = field(default_factory=dict)
    _access: dict[str, AccessRecord] = field(default_factory=dict)
    _chain_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- authorize -------------------------------------------------------

    def authorize(self, params: Mapping[str, str], default_sub: str | None) -> str:
        """Approve an authorize request and return the redirect URL with a code."""
        client = self.config.client(params.get("client_id", ""))
        if client is None:
            raise AuthorizeError("Unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            raise AuthorizeError("Missing redirect_uri")
        if client.redirect_uris and redirect_uri not in client.redirect_uris:
            raise AuthorizeError("redirect_uri is not registered for this client")
        if params.get("response_type", "code") != "code":
            raise AuthorizeError("Only response_type=code is supported")
        account = self._pick_account(params.get("login_hint"), default_sub)
        code = self._new_code(client, redirect_uri, account, params)
        query = {"code": code.code, "issuer": ID_TOKEN_ISSUER}
        if "state" in params:
            query["state"] = params["state"]
        return str(URL(redirect_uri).update_query(query))

    def _pick_account(self, hint: str | None, default_sub: str | None) -> AccountConfig:
        accounts = self.config.accounts
        if hint:
            match = [a for a in accounts if hint in (a.sub, a.email)]
            if not match:
                raise AuthorizeError("Unknown login_hint")
            return match[0]
        if default_sub is not None:
            account = self.config.account(default_sub)
            if account is None:
                raise AuthorizeError("The simulator's authorize_account does not exist")
            return account
        return accounts[0]

    def _new_code(
        self,
        client: ClientConfig,
        redirect_uri: str,
        account: AccountConfig,
        params: Mapping[str, str],
    ) -> AuthCode:
        code = AuthCode(
            code=f"{account.ou_code}_{secrets.token_hex(24)}",
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            sub=account.sub,
            scopes=_grant_scopes(
                params.get("scope"),
                client,
                account.refused_scopes,
                params.get("require_requested_scopes") == "true",
            ),
            expires_at=self.now() + self.config.auth_code_lifetime,
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method", "plain"),
        )
        self._codes[code.code] = code
        return code

    # --- token endpoint --------------------------------------------------

    def token(self, form: Mapping[str, str]) -> TokenOutcome:
        """Answer a token request (authorization_code or refresh_token grant)."""
        grant = form.get("grant_type")
        grants = {
            "authorization_code": self._exchange_code,
            "refresh_token": self._refresh,
            "client_credentials": self._partner_token,
        }
        handler = grants.get(grant or "")
        if handler is None:
            error = TokenError(
                400, "unsupported_grant_type", f"Unsupported grant {grant}"
            )
            return TokenOutcome(error.status, error.body())
        try:
            return handler(form)
        except TokenError as err:
            return TokenOutcome(err.status, err.body())

    def _client(self, form: Mapping[str, str], secret_required: bool) -> ClientConfig:
        client = self.config.client(form.get("client_id", ""))
        secret = form.get("client_secret")
        if client is None or (secret is not None and secret != client.client_secret):
            raise TokenError(401, "invalid_client", "Unknown client or wrong secret")
        if secret_required and secret is None:
            raise TokenError(401, "invalid_client", "client_secret is required")
        return client

    def _exchange_code(self, form: Mapping[str, str]) -> TokenOutcome:
        code = self._codes.get(form.get("code", ""))
        self._client(form, secret_required=code is None or code.code_challenge is None)
        now = self.now()
        if code is None or code.used or now >= code.expires_at:
            raise TokenError(400, "invalid_grant", "The authorization code is invalid")
        if code.client_id != form.get("client_id"):
            raise TokenError(
                400, "invalid_grant", "The code was issued to another client"
            )
        if code.redirect_uri != form.get("redirect_uri"):
            raise TokenError(400, "invalid_grant", "redirect_uri does not match")
        _check_pkce(code, form.get("code_verifier"))
        code.used = True
        pair = self._start_chain(code.sub, code.client_id, code.scopes)
        return TokenOutcome(200, pair.body(now), sub=code.sub)

    def _refresh(self, form: Mapping[str, str]) -> TokenOutcome:
        client = self._client(form, secret_required=False)
        presented = form.get("refresh_token")
        if not presented:
            raise TokenError(400, "invalid_request", "refresh_token is required")
        chain = self._refresh_index.get(presented)
        if chain is None or chain.revoked or chain.client_id != client.client_id:
            raise TokenError(401, ERROR_LOGIN_REQUIRED, INVALID_REFRESH)
        now = self.now()
        if presented == chain.current:
            if now >= chain.current_issued_at + self.config.refresh_token_lifetime:
                raise TokenError(401, ERROR_LOGIN_REQUIRED, INVALID_REFRESH)
            pair = self._rotate(chain, now)
            return TokenOutcome(200, pair.body(now), sub=chain.sub)
        if self._in_grace(chain, presented, now):
            assert chain.previous_pair is not None  # noqa: S101 - set with previous
            return TokenOutcome(200, chain.previous_pair.body(now), chain.sub, True)
        raise TokenError(401, ERROR_LOGIN_REQUIRED, INVALID_REFRESH)

    def _in_grace(self, chain: RefreshChain, presented: str, now: datetime) -> bool:
        used_at = chain.previous_used_at
        return (
            presented == chain.previous
            and used_at is not None
            and now < used_at + self.config.refresh_grace
        )

    def _rotate(self, chain: RefreshChain, now: datetime) -> TokenPair:
        pair = self._issue_pair(chain.sub, chain.client_id, chain.scopes)
        chain.previous = chain.current
        chain.previous_used_at = now
        chain.previous_pair = pair
        assert pair.refresh_token is not None  # noqa: S101 - chains imply offline_access
        chain.current = pair.refresh_token
        chain.current_issued_at = now
        chain.rotations += 1
        self._refresh_index[pair.refresh_token] = chain
        return pair

    def _partner_token(self, form: Mapping[str, str]) -> TokenOutcome:
        client = self._client(form, secret_required=True)
        audience = form.get("audience", "")
        if not audience:
            raise TokenError(400, "invalid_request", "audience is required")
        region = audience_region(audience, self.config.server_region)
        if region is None:
            raise TokenError(400, "invalid_request", f"Unknown audience {audience}")
        scopes = tuple(
            s
            for s in _grant_scopes(form.get("scope"), client, (), False)
            if s != "offline_access"
        )
        iat = int(self.now().timestamp())
        exp = iat + PARTNER_TOKEN_LIFETIME_SECONDS
        jti = secrets.token_hex(16)
        claims = {
            "iss": ACCESS_TOKEN_ISSUER,
            "azp": client.client_id,
            "sub": client.client_id,
            "aud": [audience],
            "scp": list(scopes),
            "exp": exp,
            "iat": iat,
            "jti": jti,
        }
        token = jwt.encode(claims, self.secret, SIGNING_KEY_ID)
        self._access[jti] = AccessRecord(
            "", client.client_id, scopes, partner_region=region
        )
        body = {
            "access_token": token,
            "expires_in": PARTNER_TOKEN_LIFETIME_SECONDS,
            "token_type": "Bearer",
        }
        return TokenOutcome(200, body)

    # --- issuing ---------------------------------------------------------

    def issue_tokens(
        self, sub: str | None = None, client_id: str | None = None
    ) -> dict[str, Any]:
        """Log in without a browser and return the token endpoint's body."""
        account = self.config.account(sub) if sub else self.config.accounts[0]
        client = self.config.client(client_id) if client_id else self.config.clients[0]
        if account is None or client is None:
            raise KeyError("unknown account or client")
        scopes = _grant_scopes(None, client, account.refused_scopes, False)
        pair = self._start_chain(account.sub, client.client_id, scopes)
        return pair.body(self.now())

    def _start_chain(
        self, sub: str, client_id: str, scopes: tuple[str, ...]
    ) -> TokenPair:
        pair = self._issue_pair(sub, client_id, scopes)
        if pair.refresh_token is not None:
            chain = RefreshChain(
                id=next(self._chain_ids),
                sub=sub,
                client_id=client_id,
                scopes=scopes,
                current=pair.refresh_token,
                current_issued_at=self.now(),
            )
            self._chains.append(chain)
            self._refresh_index[chain.current] = chain
        return pair

    def _issue_pair(
        self, sub: str, client_id: str, scopes: tuple[str, ...]
    ) -> TokenPair:
        account = self.config.account(sub)
        assert account is not None  # noqa: S101 - callers pass known subjects
        now = self.now()
        iat = int(now.timestamp())
        exp = iat + int(self.config.access_token_lifetime.total_seconds())
        jti = secrets.token_hex(16)
        access = jwt.encode(
            _access_claims(account, client_id, scopes, iat, exp, jti),
            self.secret,
            SIGNING_KEY_ID,
        )
        id_token = jwt.encode(
            _id_claims(account, client_id, iat, exp), self.secret, SIGNING_KEY_ID
        )
        self._access[jti] = AccessRecord(sub, client_id, scopes)
        refresh = None
        if "offline_access" in scopes:
            refresh = f"{account.ou_code}_{secrets.token_hex(32)}"
        return TokenPair(access, refresh, id_token, datetime.fromtimestamp(exp, UTC))

    # --- checking and revoking ------------------------------------------

    def check_access(self, authorization: str | None) -> AccessCheck:
        """Validate an ``Authorization: Bearer`` header against the clock."""
        if not authorization or not authorization.startswith("Bearer "):
            return AccessCheck(ERROR_INVALID_TOKEN)
        try:
            claims = jwt.decode(
                authorization.removeprefix("Bearer ").strip(), self.secret
            )
        except jwt.InvalidJWTError:
            return AccessCheck(ERROR_INVALID_TOKEN)
        record = self._access.get(str(claims.get("jti")))
        if record is None or claims.get("iss") != ACCESS_TOKEN_ISSUER:
            return AccessCheck(ERROR_INVALID_TOKEN)
        if self.now().timestamp() >= float(claims.get("exp", 0)):
            return AccessCheck(
                ERROR_EXPIRED, record.sub, record.client_id, expired=True
            )
        if record.revoked:
            return AccessCheck(ERROR_INVALID_TOKEN, record.sub, record.client_id)
        return AccessCheck(
            None,
            record.sub,
            record.client_id,
            record.scopes,
            False,
            record.partner_region,
        )

    def revoke_account(self, sub: str) -> None:
        """Invalidate every refresh and access token of an account."""
        if self.config.account(sub) is None:
            raise KeyError(sub)
        for chain in self._chains:
            if chain.sub == sub:
                chain.revoked = True
        for record in self._access.values():
            if record.sub == sub:
                record.revoked = True

    def chains(self, sub: str | None = None) -> list[RefreshChain]:
        """Return the refresh chains, optionally of one account."""
        return [c for c in self._chains if sub is None or c.sub == sub]

    def as_dict(self) -> dict[str, Any]:
        """Describe the auth state for the admin endpoint."""
        grace = self.config.refresh_grace
        return {
            "chains": [c.as_dict(grace) for c in self._chains],
            "access_tokens_issued": len(self._access),
            "codes_outstanding": sum(1 for c in self._codes.values() if not c.used),
        }


def _grant_scopes(
    requested: str | None,
    client: ClientConfig,
    refused: tuple[str, ...],
    required: bool,
) -> tuple[str, ...]:
    """Scopes granted: those requested that the client may have (all if none asked).

    The user may untick ``refused`` at consent, unless the app asked for
    ``require_requested_scopes=true`` (then it is all or nothing).
    """
    wanted = requested.split() if requested else list(client.scopes)
    return tuple(
        s for s in wanted if s in client.scopes and (required or s not in refused)
    )


def _check_pkce(code: AuthCode, verifier: str | None) -> None:
    if code.code_challenge is None:
        return
    if not verifier:
        raise TokenError(400, "invalid_grant", "code_verifier is required")
    if code.code_challenge_method == "S256":
        derived = b64url_encode(hashlib.sha256(verifier.encode()).digest())
    else:
        derived = verifier
    if derived != code.code_challenge:
        raise TokenError(400, "invalid_grant", "code_verifier does not match")


def _access_claims(
    account: AccountConfig,
    client_id: str,
    scopes: tuple[str, ...],
    iat: int,
    exp: int,
    jti: str,
) -> dict[str, Any]:
    return {
        "iss": ACCESS_TOKEN_ISSUER,
        "azp": client_id,
        "sub": account.sub,
        "aud": ACCESS_TOKEN_AUDIENCE,
        "scp": list(scopes),
        "amr": AUTH_METHODS,
        "exp": exp,
        "iat": iat,
        "auth_time": iat,
        "ou_code": account.ou_code,
        "locale": "en-US",
        "account_type": "person",
        "open_source": False,
        "jti": jti,
    }


def _id_claims(
    account: AccountConfig, client_id: str, iat: int, exp: int
) -> dict[str, Any]:
    return {
        "iss": ID_TOKEN_ISSUER,
        "aud": client_id,
        "sub": account.sub,
        "email": account.email,
        "email_verified": True,
        "name": account.full_name,
        "amr": AUTH_METHODS,
        "auth_time": iat,
        "iat": iat,
        "exp": exp,
        "ou_code": account.ou_code,
    }
