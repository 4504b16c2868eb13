"""OAuth helpers."""

from __future__ import annotations

import base64
import json
import logging
import sys
import threading

from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
import pytest

from custom_components.tesla_scout_worker.application_credentials import (
    async_get_description_placeholders,
)
from custom_components.tesla_scout_worker.oauth import (
    TeslaOAuth2Implementation,
    TokenRejectedError,
    TokenTransientError,
    _parse_retry_after,
    decode_jwt_claims,
)
from custom_components.tesla_scout_worker.redact import (
    RedactingFilter,
    install_log_redaction,
    redact_text,
)
from homeassistant.components.application_credentials import ClientCredential
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryNotReady,
    OAuth2TokenRequestReauthError,
    OAuth2TokenRequestTransientError,
)
from homeassistant.helpers.config_entry_oauth2_flow import HEADER_FRONTEND_BASE
from homeassistant.helpers.http import current_request
from tesla_fleet_sim import Simulator

from .conftest import AUTH_DOMAIN, CLIENT_ID, CLIENT_SECRET


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


def test_redaction_reaches_child_loggers(caplog: pytest.LogCaptureFixture) -> None:
    """Records of child loggers (a module's own logger) are redacted too."""
    child = logging.getLogger("custom_components.tesla_scout_worker.some_module")
    library_child = logging.getLogger("tesla_fleet_api.tesla.vehicle")
    install_log_redaction()
    with caplog.at_level(logging.DEBUG):
        child.warning("car %s", "5YJ3E7EB0KF000001")
        library_child.debug("Bearer %s", "secret-token")
    assert "5YJ3E7EB0KF000001" not in caplog.text
    assert "secret-token" not in caplog.text
    assert "**VIN**" in caplog.text


def test_redaction_installs_while_another_thread_adds_loggers() -> None:
    """Setup survives modules being imported (and loggers made) in an executor.

    Home Assistant imports other integrations' platforms in executor threads
    while ours sets up; iterating the live logger table then raised
    "dictionary changed size during iteration" and failed the setup.
    """
    child = logging.getLogger("custom_components.tesla_scout_worker.race_module")
    stop = threading.Event()
    made: list[str] = []

    def make_loggers() -> None:
        for number in range(20_000):
            if stop.is_set():
                return
            name = f"test_redaction_race.{number}"
            logging.getLogger(name)
            made.append(name)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    worker = threading.Thread(target=make_loggers)
    worker.start()
    try:
        while worker.is_alive():
            install_log_redaction()
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(interval)
        for name in made:
            logging.Logger.manager.loggerDict.pop(name, None)
        logging.Logger.manager.loggerDict.pop("test_redaction_race", None)
    assert made, "the other thread made no loggers"
    redacting = [f for f in child.filters if isinstance(f, RedactingFilter)]
    assert len(redacting) == 1


def _implementation(hass: HomeAssistant, server_url: str) -> TeslaOAuth2Implementation:
    return TeslaOAuth2Implementation(
        hass, AUTH_DOMAIN, ClientCredential(CLIENT_ID, CLIENT_SECRET), server_url
    )


async def test_rate_limited_token_request(
    hass: HomeAssistant, sim: Simulator, sim_url: str
) -> None:
    """A 429 from the token endpoint carries its error code and Retry-After."""
    implementation = _implementation(hass, sim_url)
    token = sim.issue_tokens()
    sim.faults.fail_next("/oauth2/v3/token", 429)
    with pytest.raises(TokenTransientError) as caught:
        await implementation.async_refresh_token(dict(token))
    assert caught.value.status == 429
    assert caught.value.error_code == "rate_limited"
    assert caught.value.retry_after == 60
    # Home Assistant's helpers see a transient OAuth error: setup retries.
    assert isinstance(caught.value, OAuth2TokenRequestTransientError)
    assert isinstance(caught.value, ConfigEntryNotReady)
    # The same refresh token still works: a failed request spends nothing.
    refreshed = await implementation.async_refresh_token(dict(token))
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert [r.status for r in sim.token_requests("refresh_token")] == [429, 200]


@pytest.mark.parametrize("error_code", ["login_required", "invalid_grant"])
async def test_rejected_refresh_token(
    hass: HomeAssistant, sim: Simulator, sim_url: str, error_code: str
) -> None:
    """A refused grant is Home Assistant's "reauthentication needed" error."""
    implementation = _implementation(hass, sim_url)
    token = sim.issue_tokens()
    sim.faults.fail_next("/oauth2/v3/token", 401, body={"error": error_code})
    with pytest.raises(TokenRejectedError) as caught:
        await implementation.async_refresh_token(dict(token))
    assert caught.value.status == 401
    assert caught.value.error_code == error_code
    assert isinstance(caught.value, OAuth2TokenRequestReauthError)
    assert isinstance(caught.value, ConfigEntryAuthFailed)


async def test_error_page_without_json(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """A proxy's HTML error page (no JSON, junk Retry-After) is an unknown error."""

    async def bad_gateway(request: web.Request) -> web.Response:
        return web.Response(
            status=502,
            text="<html>Bad gateway</html>",
            content_type="text/html",
            headers={"Retry-After": "soon"},
        )

    async def odd_json(request: web.Request) -> web.Response:
        return web.json_response(["not", "an", "object"], status=400)

    app = web.Application()
    app.router.add_post("/oauth2/v3/token", bad_gateway)
    app.router.add_post("/odd/oauth2/v3/token", odd_json)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("")).rstrip("/")
        with pytest.raises(TokenTransientError) as caught:
            await _implementation(hass, base).async_refresh_token(
                {"refresh_token": "x", "expires_in": 1}
            )
        assert caught.value.error_code == "unknown"
        assert caught.value.retry_after is None
        with pytest.raises(TokenTransientError) as caught:
            await _implementation(hass, f"{base}/odd").async_refresh_token(
                {"refresh_token": "x", "expires_in": 1}
            )
        assert caught.value.error_code == "unknown"
        assert caught.value.status == 400


async def test_credentials_dialog_placeholders(hass: HomeAssistant) -> None:
    """The credentials dialog links Tesla's dashboard and names the redirect URL."""
    request = make_mocked_request(
        "GET", "/", headers={HEADER_FRONTEND_BASE: "http://127.0.0.1:8123"}
    )
    token = current_request.set(request)
    try:
        placeholders = await async_get_description_placeholders(hass)
    finally:
        current_request.reset(token)
    assert placeholders == {
        "developer_url": "https://developer.tesla.com/dashboard",
        "redirect_url": "http://127.0.0.1:8123/auth/external/callback",
    }


def test_parse_retry_after() -> None:
    """Retry-After in seconds; negative clamps to 0; missing or junk is None."""
    assert _parse_retry_after("120") == 120
    assert _parse_retry_after("-5") == 0
    assert _parse_retry_after(None) is None
    assert _parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT") is None
