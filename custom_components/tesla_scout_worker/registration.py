"""App registration: the one-time step that lets an app call the Fleet API in a region.

Before Tesla answers a user request in a region, the developer app must be
registered there: a partner token (``grant_type=client_credentials`` with the
app's client id and secret, ``audience`` = the region's base URL), then
``POST /api/1/partner_accounts {"domain": ...}``. Tesla downloads the app's
public key from ``https://<domain>/.well-known/appspecific/com.tesla.3p.public-key.pem``
while registering. Until then every user request is answered HTTP 412.

The config flow offers this step when its first request gets a 412, and the
"app not registered" repair offers it when a 412 comes later. The partner
token request is made here with Home Assistant's session because the
library's ``partner_login`` only knows Tesla's own token URLs (a server
override, e.g. a test server, must be honoured too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import re
from typing import Any

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout
from tesla_fleet_api.exceptions import PreconditionFailed, TeslaFleetError
from tesla_fleet_api.tesla.fleet import TeslaFleetApi
from yarl import URL

from .const import LOGGER

PUBLIC_KEY_PATH = "/.well-known/appspecific/com.tesla.3p.public-key.pem"
PARTNER_SCOPES = "openid vehicle_device_data vehicle_cmds vehicle_charging_cmds"
REQUEST_TIMEOUT = ClientTimeout(total=30)
HTTP_BAD_REQUEST = 400
HTTP_FAILED_DEPENDENCY = 424
HTTP_SERVER_ERROR = 500
_DOMAIN_PATTERN = re.compile(
    r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


class RegistrationError(Exception):
    """Registering the app failed; ``reason`` is the config flow's error key."""

    def __init__(self, reason: str, detail: str = "", field: str = "base") -> None:
        """Initialize with the form error key, Tesla's words and the form field."""
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail
        self.field = field


class NotRegisteredError(Exception):
    """Tesla answered 412: the app is not registered in the account's region."""


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """What a partner token is asked with."""

    client_id: str
    client_secret: str
    token_url: str


def public_key_url(domain: str) -> str:
    """Return where Tesla looks for the public key of ``domain``."""
    return f"https://{domain}{PUBLIC_KEY_PATH}"


def normalize_domain(value: str) -> str | None:
    """Return the bare host name a user typed (a URL is accepted); None if malformed.

    Tesla wants the domain alone: "example.com", not "https://example.com/".
    """
    text = value.strip().lower()
    if "://" in text:
        try:
            text = URL(text).host or ""
        except ValueError:
            return None
    text = text.rstrip("/").rstrip(".")
    return text if _DOMAIN_PATTERN.fullmatch(text) else None


def _api(session: ClientSession, server: str, access_token: str) -> TeslaFleetApi:
    return TeslaFleetApi(
        session,
        access_token=access_token,
        server=server,
        charging_scope=False,
        energy_scope=False,
        partner_scope=True,
        user_scope=True,
        vehicle_scope=False,
    )


@dataclass(frozen=True, slots=True)
class RegionAnswer:
    """What ``users/region`` said, and whether Tesla answered (billed)."""

    region: dict[str, Any]
    billed: bool


async def async_account_region(
    session: ClientSession, server: str, access_token: str
) -> RegionAnswer:
    """Ask ``users/region`` (one billed data request) where the account lives.

    Returns Tesla's answer (``region``, ``fleet_api_base_url``), empty when
    the question could not be answered (setup finds out later); ``billed``
    is False when no answer below HTTP 500 came (nothing to pay for).
    Raises NotRegisteredError on a 412: only then is something to be done now.
    """
    try:
        result = await _api(session, server, access_token).user.region()
    except PreconditionFailed as err:
        raise NotRegisteredError from err
    except TeslaFleetError as err:
        LOGGER.debug("Region lookup refused: %s", type(err).__name__)
        billed = err.status is not None and err.status < HTTP_SERVER_ERROR
        return RegionAnswer({}, billed)
    except (ClientError, TimeoutError) as err:
        LOGGER.debug("Region lookup failed: %s", type(err).__name__)
        return RegionAnswer({}, False)
    return RegionAnswer(dict(result.get("response") or {}), True)


async def async_register_app(
    session: ClientSession,
    credentials: AppCredentials,
    server: str,
    domain: str,
) -> None:
    """Register the app in the region of ``server`` with ``domain``.

    Raises RegistrationError whose ``reason`` says what the user must fix.
    """
    token = await _async_partner_token(session, credentials, server)
    try:
        await _api(session, server, token).partner.register(domain)
    except TeslaFleetError as err:
        raise _registration_refused(err, domain) from None
    except (ClientError, TimeoutError) as err:
        raise RegistrationError("cannot_connect", type(err).__name__) from err
    LOGGER.info("The app is registered for this region with its domain")


async def async_register_typed_domain(
    session: ClientSession,
    credentials: Callable[[], Awaitable[AppCredentials]],
    server: str,
    typed: str,
) -> str:
    """Register the app with the domain a user typed; return the bare domain.

    What the config flow's register step and the repair share. Raises
    RegistrationError: ``invalid_domain`` on the domain field for a malformed
    domain (nothing is asked of Tesla then), else what Tesla refused.
    """
    domain = normalize_domain(typed)
    if domain is None:
        raise RegistrationError("invalid_domain", field="domain")
    await async_register_app(session, await credentials(), server, domain)
    return domain


async def _async_partner_token(
    session: ClientSession, credentials: AppCredentials, server: str
) -> str:
    """Return a partner token for the region of ``server`` (client credentials)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
        "audience": server,
        "scope": PARTNER_SCOPES,
    }
    try:
        async with session.post(
            credentials.token_url, data=form, timeout=REQUEST_TIMEOUT
        ) as resp:
            body = await _json(resp)
            if resp.status >= HTTP_SERVER_ERROR:
                raise RegistrationError("cannot_connect", f"HTTP {resp.status}")
            if resp.status >= HTTP_BAD_REQUEST or "access_token" not in body:
                detail = str(body.get("error_description") or body.get("error") or "")
                raise RegistrationError("partner_token_refused", detail)
    except (ClientError, TimeoutError) as err:
        raise RegistrationError("cannot_connect", type(err).__name__) from err
    return str(body["access_token"])


async def _json(resp: ClientResponse) -> dict[str, Any]:
    if resp.content_type != "application/json":
        return {}
    try:
        body = await resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _registration_refused(err: TeslaFleetError, domain: str) -> RegistrationError:
    """Map Tesla's answer to partner_accounts to what the user must fix."""
    data = err.data if isinstance(err.data, dict) else {}
    detail = str(data.get("error") or err.message or "")
    text = detail.lower()
    if err.status == HTTP_FAILED_DEPENDENCY or "download" in text:
        return RegistrationError("public_key_unreachable", public_key_url(domain))
    if "public key" in text:
        return RegistrationError("public_key_invalid", detail)
    if "allowed origin" in text or "root domain" in text:
        return RegistrationError("domain_not_allowed", detail)
    if err.status is not None and err.status >= HTTP_SERVER_ERROR:
        return RegistrationError("cannot_connect", f"HTTP {err.status}")
    return RegistrationError("registration_failed", detail)
