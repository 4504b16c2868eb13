"""Minimal HS256 JSON Web Tokens, written for the simulator (stdlib only)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

ALGORITHM = "HS256"


class InvalidJWTError(Exception):
    """The token is malformed or its signature does not match."""


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url text."""
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as err:
        raise InvalidJWTError("bad base64url") from err


def _segment(obj: dict[str, Any]) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def _sign(signing_input: str, secret: bytes) -> str:
    digest = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return b64url_encode(digest)


def encode(payload: dict[str, Any], secret: bytes, kid: str | None = None) -> str:
    """Return a signed compact JWT carrying ``payload``."""
    header: dict[str, Any] = {"alg": ALGORITHM, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    return f"{signing_input}.{_sign(signing_input, secret)}"


def _json_segment(text: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(text))
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidJWTError("bad JSON segment") from err
    if not isinstance(value, dict):
        raise InvalidJWTError("segment is not an object")
    return value


def decode_unverified(token: str) -> dict[str, Any]:
    """Return the payload without checking the signature (for inspection)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidJWTError("a JWT has three segments")
    return _json_segment(parts[1])


def decode(token: str, secret: bytes) -> dict[str, Any]:
    """Verify the signature and return the payload (expiry is not checked here)."""
    if not token.isascii():
        raise InvalidJWTError("a JWT is ASCII")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidJWTError("a JWT has three segments")
    header = _json_segment(parts[0])
    if header.get("alg") != ALGORITHM:
        raise InvalidJWTError("unexpected algorithm")
    expected = _sign(f"{parts[0]}.{parts[1]}", secret)
    if not hmac.compare_digest(expected, parts[2]):
        raise InvalidJWTError("signature mismatch")
    return _json_segment(parts[1])
