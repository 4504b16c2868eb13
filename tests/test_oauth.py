"""OAuth helpers."""

from __future__ import annotations

import base64
import json

from custom_components.tesla_scout_worker.oauth import decode_jwt_claims
from custom_components.tesla_scout_worker.redact import redact_text


def _jwt(claims: object) -> str:
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return f"eyJhbGciOiJIUzI1NiJ9.{body.decode()}.sig"


def test_decode_claims() -> None:
    """Claims are read without verification; junk gives an empty dict."""
    assert decode_jwt_claims(_jwt({"sub": "a", "ou_code": "EU"})) == {
        "sub": "a",
        "ou_code": "EU",
    }
    assert decode_jwt_claims("not-a-jwt") == {}
    assert decode_jwt_claims("a.!!!.c") == {}
    assert decode_jwt_claims(_jwt(["list"])) == {}


def test_redact_text() -> None:
    """VINs, bearer tokens and JWTs are masked."""
    jwt = _jwt({"sub": "a"})
    text = f"GET /api/1/vehicles/5YJ3E7EB0KF000001 Bearer abc.def {jwt}"
    redacted = redact_text(text)
    assert "5YJ3E7EB0KF000001" not in redacted
    assert "abc.def" not in redacted
    assert jwt not in redacted
    assert redact_text("nothing secret") == "nothing secret"
