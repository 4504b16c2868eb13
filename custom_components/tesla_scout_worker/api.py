"""Fleet API client: tokens from the worker, every billed call counted.

Library errors (which derive from BaseException) never leave this module: they
become the HomeAssistantError subclasses below. A 401 makes the token manager
refresh and the call is retried once.

This module decides what is transient: every error a later retry may fix (the
car asleep, rate limits, Tesla's outages, no usable access token right now)
derives from :class:`TransientFleetError`, so callers catch that one class and
never look into the token manager.

Commands may go to a tesla-http-proxy (the commands URL), through a session of
their own when its certificate needs its own trust (see commands_tls.py). The
proxy reports the car's faults as HTTP 500/503: "vehicle unavailable: vehicle
is offline or asleep" is a sleeping car (VehicleAsleepError, transient, so
the wake/retry logic applies); "your public key has not been paired with the
vehicle" is :class:`KeyNotPairedError`, which no retry fixes: the owner must
add the key to the car. Any other 5xx stays FleetUnavailableError.

Without a proxy, cars that need signing get their commands signed here, with
the installation's key (signed_commands.py keeps each car's session). The
car's message faults are mapped below: a key the car does not know is
:class:`KeyNotPairedError`; turned-off mobile access is
:class:`RemoteAccessDisabledError`; a busy car or a session the car no longer
accepts is transient.
"""

from __future__ import annotations

import asyncio
import binascii
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

from aiohttp import ClientError, ClientSession
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import DecodeError
from tesla_fleet_api.exceptions import (
    Forbidden,
    InvalidRegion,
    InvalidScope,
    InvalidToken,
    LibraryError,
    LoginRequired,
    OAuthExpired,
    PreconditionFailed,
    RateLimited,
    TeslaFleetError,
    VehicleOffline,
)
from tesla_fleet_api.tesla.fleet import TeslaFleetApi
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet
from yarl import URL

from homeassistant.exceptions import HomeAssistantError

from .const import (
    CONF_FLEET_API_URL,
    CONF_REGION,
    CONF_SERVER_URL,
    DOMAIN,
    FLEET_API_SERVERS,
    LOGGER,
    TESLA_API_HOST_SUFFIXES,
)
from .signed_commands import (
    ACCESS_FAULTS,
    KEY_FAULTS,
    SIGNING_FAULTS,
    TRANSIENT_FAULTS,
    SignedVehicles,
)
from .token_manager import TeslaTokenManager, TokenUnavailableError
from .usage import ApiCategory, ApiUsage

REQUEST_TIMEOUT = 30.0  # seconds
VEHICLE_DATA_ENDPOINTS = (
    "charge_state",
    "drive_state",
    "location_data",
    "vehicle_state",
    "charge_schedule_data",
)
LOCATION_DATA = "location_data"
SERVER_ERROR = 500
PROXY_FAULT_STATUSES = (500, 503)
PROXY_ASLEEP_HINTS = ("asleep", "offline", "vehicle unavailable")
PROXY_NOT_PAIRED_HINTS = ("not been paired", "not paired")
FORBIDDEN = 403
VCP_REQUIRED = "vehicle command protocol required"
"""In the error of Tesla's 403 to an unsigned command for a car that needs signing."""
UNSIGNED_HARDLOCKED = "unsigned_cmds_hardlocked"
"""The reason some cars give (result false) for an unsigned command."""
UNAUTHORIZED_ERRORS = (OAuthExpired, InvalidToken, LoginRequired)
SIGNED_REPLY_ERRORS = (DecodeError, binascii.Error, KeyError, TypeError)
"""A signed_command reply that cannot be read (not the car's message)."""

_TOKENS_USED: ContextVar[list[str]] = ContextVar("tesla_scout_worker_tokens_used")
"""The access tokens handed to the library during the current request."""


class FleetError(HomeAssistantError):
    """A Fleet API request failed."""

    def __init__(self, key: str = "api_error", **placeholders: str) -> None:
        """Initialize with a translation key."""
        super().__init__(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders or None,
        )


class TransientFleetError(FleetError):
    """A request failed in a way a later retry may fix."""


class VehicleAsleepError(TransientFleetError):
    """The car is asleep or offline (HTTP 408); not a failure of ours."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("vehicle_asleep")


class RateLimitedError(TransientFleetError):
    """Tesla asked us to slow down (HTTP 429)."""

    def __init__(self, retry_after: float) -> None:
        """Initialize with the seconds to wait."""
        super().__init__("rate_limited", seconds=str(int(retry_after)))
        self.retry_after = retry_after


class FleetUnavailableError(TransientFleetError):
    """Tesla's servers did not answer usefully (5xx, timeout, network)."""

    def __init__(self, what: str) -> None:
        """Initialize with what went wrong."""
        super().__init__("api_unavailable", error=what)


class TokenNotReadyError(TransientFleetError):
    """No usable access token right now; the token manager retries on its own."""

    def __init__(self, reason: str) -> None:
        """Initialize with the token manager's reason."""
        super().__init__("token_unavailable", reason=reason)


class UnauthorizedError(FleetError):
    """A fresh access token was still refused."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("unauthorized")


class WrongRegionError(FleetError):
    """The account lives in another region (HTTP 421)."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("wrong_region")


class NotRegisteredFleetError(FleetError):
    """The app is not registered in the account's region (HTTP 412)."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("app_not_registered")


class MissingScopesError(FleetError):
    """Tesla refused a request for a scope the user did not grant (HTTP 403)."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("missing_scopes")


class KeyNotPairedError(FleetError):
    """The car does not know the key that signs its commands.

    A proxy says so with an HTTP 500; the car itself with a message fault
    (unknown key, key not on its whitelist). Not transient: the owner must
    add the key to the car first.
    """

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("key_not_paired")


class RemoteAccessDisabledError(FleetError):
    """The car refuses signed commands: mobile access is turned off in it."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("remote_access_disabled")


class SigningFaultError(FleetError):
    """The car refused a signed message for a reason no retry fixes."""

    def __init__(self, fault: str) -> None:
        """Initialize with the fault's name."""
        super().__init__("signing_fault", fault=fault)


class VehicleBusyError(TransientFleetError):
    """The car could not take a signed message now (busy, session lost)."""

    def __init__(self, fault: str) -> None:
        """Initialize with the fault's name."""
        super().__init__("vehicle_busy", fault=fault)


class CommandFailedError(FleetError):
    """The car refused a command (result false)."""

    def __init__(self, command: str, reason: str) -> None:
        """Initialize with the command and the car's reason."""
        super().__init__("command_failed", command=command, reason=reason or "-")
        self.command = command
        self.reason = reason


class SigningRequiredError(FleetError):
    """The car accepts only signed commands and none can be signed here.

    Raised before a command is sent to a car that Tesla lists as requiring
    signed commands while no Commands URL (a signing proxy) is set, and when
    the car refuses an unsigned command (HTTP 403 "Tesla Vehicle Command
    Protocol required", or ``unsigned_cmds_hardlocked``). A retry cannot fix it.
    """

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("signing_required")


def _retry_after(err: RateLimited) -> float:
    data = err.data if isinstance(err.data, dict) else {}
    for key in ("after", "reset"):
        try:
            return max(1.0, float(data.get(key) or ""))
        except ValueError:
            continue
    return 60.0


def is_tesla_url(url: str) -> bool:
    """Return True for an https URL on one of Tesla's API hosts."""
    try:
        parsed = URL(url)
    except ValueError:
        return False
    host = parsed.host or ""
    return parsed.scheme == "https" and host.endswith(TESLA_API_HOST_SUFFIXES)


def regional_server(named: str, override: str | None) -> str | None:
    """Return the base URL to use for the base URL Tesla named (users/region).

    Without a server override only Tesla's own https hosts are followed. With
    one (e.g. the simulator) its origin is kept and the path Tesla named is
    followed, so requests never leave the server the user chose. None when
    ``named`` cannot be used.
    """
    try:
        url = URL(named)
    except ValueError:
        return None
    if override is None:
        return str(url).rstrip("/") if is_tesla_url(named) else None
    if not url.is_absolute():
        return None
    origin = URL(override).origin()
    return str(origin.with_path(url.path)).rstrip("/")


def server_for(data: Mapping[str, Any]) -> str:
    """Return the Fleet API base URL for a config entry's data.

    The base URL Tesla named after a 421 (users/region) wins; with a server
    override only its path is followed. Otherwise the override, or Tesla's
    server of the entry's region.
    """
    override = data.get(CONF_SERVER_URL)
    override = str(override).rstrip("/") if override else None
    if (named := data.get(CONF_FLEET_API_URL)) and (
        server := regional_server(str(named), override)
    ):
        return server
    if override:
        return override
    return FLEET_API_SERVERS.get(data.get(CONF_REGION, "na"), FLEET_API_SERVERS["na"])


class FleetClient:
    """Make Fleet API requests for one account."""

    def __init__(
        self,
        session: ClientSession,
        tokens: TeslaTokenManager,
        usage: ApiUsage,
        server: str,
        commands_server: str | None = None,
        *,
        commands_session: ClientSession | None = None,
        server_override: str | None = None,
        location_granted: bool = True,
        on_region: Callable[[str, str], None] | None = None,
        on_location_refused: Callable[[], None] | None = None,
        on_not_registered: Callable[[], None] | None = None,
    ) -> None:
        """Initialize; commands_server is e.g. a tesla-http-proxy that signs.

        ``commands_session``: the session for commands when the commands
        server needs its own TLS trust (None: the shared ``session``).

        ``server_override``: the server URL the user entered (None: Tesla).
        A 421 (wrong region) asks ``users/region`` for the account's base URL,
        switches to it and calls ``on_region(region, base_url)``, once per
        switch. ``location_granted``: whether the token has the
        vehicle_location scope; when a 403 says otherwise location data is
        no longer asked for and ``on_location_refused`` is called.
        A 412 (app not registered in the account's region) calls
        ``on_not_registered``.
        """
        self.tokens = tokens
        self.usage = usage
        self._session = session
        self._commands_session = commands_session or session
        self._server = server.rstrip("/")
        self._commands_server = (
            commands_server.rstrip("/") if commands_server else self._server
        )
        self._server_override = server_override
        self._region_lock = asyncio.Lock()
        self._on_region = on_region
        self._on_location_refused = on_location_refused
        self._on_not_registered = on_not_registered
        self.location_granted = location_granted
        self._signed: SignedVehicles | None = None

    @property
    def server(self) -> str:
        """Return the Fleet API base URL in use."""
        return self._server

    def _make_api(self, server: str, session: ClientSession) -> TeslaFleetApi:
        """Return a library client.

        The library asks for the access token before every request; the token
        manager answers (refreshing by tier when it runs out), and each token
        handed out is noted for the request under way, so a 401 can tell
        whether someone else has refreshed since.
        """

        async def access_token() -> str:
            token = await self.tokens.async_get_access_token()
            if (used := _TOKENS_USED.get(None)) is not None:
                used.append(token)
            return token

        return TeslaFleetApi(
            session,
            access_token=access_token,
            server=server,
            charging_scope=False,
            energy_scope=False,
            partner_scope=False,
            user_scope=True,
            vehicle_scope=False,
        )

    @property
    def can_sign(self) -> bool:
        """Whether commands can be signed here (a signing key is set)."""
        return self._signed is not None

    def set_signing_key(self, key: ec.EllipticCurvePrivateKey) -> None:
        """Sign commands with ``key`` from now on (cars' sessions start anew)."""
        api = self._make_api(self._server, self._session)
        api.private_key = key
        self._signed = SignedVehicles(api, self.usage.record)

    async def _call(
        self,
        category: ApiCategory,
        request: Callable[[TeslaFleetApi], Awaitable[dict[str, Any]]],
        *,
        commands: bool = False,
        follow_region: bool = True,
        signed: bool = False,
    ) -> dict[str, Any]:
        """Run request, count it when billed, refresh and retry once on 401.

        A 421 switches to the account's region and retries once (unless
        ``follow_region`` is False, as for the region lookup itself).
        ``signed``: the request runs on the signing client, which counts each
        of its requests itself (a command may need a handshake first).
        """
        try:
            return await self._call_once_or_twice(
                category, request, commands, follow_region, signed
            )
        except TokenUnavailableError as err:
            reason = (err.translation_placeholders or {}).get("reason", "")
            raise TokenNotReadyError(str(reason)) from err

    def _api_for(self, commands: bool, signed: bool) -> TeslaFleetApi:
        if signed and self._signed is not None:
            api = self._signed.api
            api.server = self._server
            return api
        if commands:
            return self._make_api(self._commands_server, self._commands_session)
        return self._make_api(self._server, self._session)

    async def _call_once_or_twice(
        self,
        category: ApiCategory,
        request: Callable[[TeslaFleetApi], Awaitable[dict[str, Any]]],
        commands: bool,
        follow_region: bool,
        signed: bool,
    ) -> dict[str, Any]:
        refreshed = relocated = False
        while True:
            api = self._api_for(commands, signed)
            server = api.server or ""
            used: list[str] = []
            token = _TOKENS_USED.set(used)
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    result = await request(api)
            except UNAUTHORIZED_ERRORS:
                self.usage.record(category)
                if refreshed:
                    raise UnauthorizedError from None
                refreshed = True
                LOGGER.debug("Fleet API answered 401; refreshing and retrying once")
                if used:
                    await self.tokens.async_handle_unauthorized(used[-1])
                continue
            except InvalidRegion as err:
                self._record_error(category, err)
                if relocated or not follow_region:
                    raise WrongRegionError from None
                relocated = True
                await self._async_follow_region(server)
                continue
            except PreconditionFailed:
                self.usage.record(category)
                LOGGER.warning(
                    "Tesla answered 412: the app is not registered in this region"
                )
                if self._on_not_registered is not None:
                    self._on_not_registered()
                raise NotRegisteredFleetError from None
            except TeslaFleetError as err:
                self._record_error(category, err)
                raise _translate(err, commands=commands) from None
            except (TimeoutError, ClientError) as err:
                raise FleetUnavailableError(type(err).__name__) from err
            except LibraryError as err:
                raise SigningFaultError(type(err).__name__) from err
            except SIGNED_REPLY_ERRORS as err:
                if not signed:
                    raise
                raise FleetUnavailableError(type(err).__name__) from err
            finally:
                _TOKENS_USED.reset(token)
            if not signed:
                self.usage.record(category)
            return result

    async def _async_follow_region(self, refused_by: str) -> None:
        """Ask Tesla for the account's base URL after a 421 and switch to it.

        ``users/region`` answers in every region, so it is asked where the
        421 came from. Raises WrongRegionError when no other base URL is named.
        """
        async with self._region_lock:
            if refused_by not in (self._server, self._commands_server):
                return  # another request switched already
            try:
                result = await self._call(
                    ApiCategory.DATA,
                    lambda api: self._region_of(api, refused_by),
                    follow_region=False,
                )
            except NotRegisteredFleetError:
                raise
            except FleetError as err:
                raise WrongRegionError from err
            response = result.get("response") or {}
            region = str(response.get("region") or "")
            named = str(response.get("fleet_api_base_url") or "")
            server = regional_server(named, self._server_override)
            if not region or server is None or server == self._server:
                raise WrongRegionError
            LOGGER.info(
                "The Tesla account lives in region %s; using its Fleet API server",
                region,
            )
            if self._commands_server == self._server:
                self._commands_server = server
            self._server = server
            if self._on_region is not None:
                self._on_region(region, named)

    @staticmethod
    async def _region_of(api: TeslaFleetApi, server: str) -> dict[str, Any]:
        api.server = server
        return await api.user.region()

    def _record_error(self, category: ApiCategory, err: TeslaFleetError) -> None:
        if err.status is not None and err.status < SERVER_ERROR:
            self.usage.record(category)

    @staticmethod
    def _vehicle(api: TeslaFleetApi, vin: str) -> VehicleFleet[TeslaFleetApi]:
        return VehicleFleet(api, vin)

    async def async_list_vehicles(self) -> list[dict[str, Any]]:
        """Return the account's vehicles with their server-side state."""
        result = await self._call(
            ApiCategory.STATE_CHECK, lambda api: self._vehicle(api, "").list()
        )
        return list(result.get("response") or [])

    async def async_vehicle_state(self, vin: str) -> dict[str, Any]:
        """Return one vehicle's summary (state online/asleep/offline); no wake."""
        result = await self._call(
            ApiCategory.STATE_CHECK, lambda api: self._vehicle(api, vin).vehicle()
        )
        return dict(result.get("response") or {})

    async def async_vehicle_data(
        self, vin: str, endpoints: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Return live data; raises VehicleAsleepError when the car sleeps.

        Without ``endpoints``: what a check needs. Location data is asked
        for only while the vehicle_location scope is granted; a
        403 "missing scopes" while location data was asked for means the
        vehicle_location scope is gone: it is not asked for again and the
        request is repeated without it.
        """
        wanted = VEHICLE_DATA_ENDPOINTS if endpoints is None else endpoints
        if not self.location_granted:
            wanted = _without_location(wanted)
        try:
            return await self._vehicle_data(vin, wanted)
        except MissingScopesError:
            if LOCATION_DATA not in wanted:
                raise
            self._location_refused()
            return await self._vehicle_data(vin, _without_location(wanted))

    async def _vehicle_data(
        self, vin: str, endpoints: tuple[str, ...]
    ) -> dict[str, Any]:
        result = await self._call(
            ApiCategory.DATA,
            lambda api: self._vehicle(api, vin).vehicle_data(list(endpoints)),
        )
        return dict(result.get("response") or {})

    def _location_refused(self) -> None:
        LOGGER.warning(
            "Tesla refused location data: the vehicle_location scope is not granted"
        )
        self.location_granted = False
        if self._on_location_refused is not None:
            self._on_location_refused()

    async def async_wake_up(self, vin: str) -> str:
        """Ask the car to wake; return the state reported right now."""
        result = await self._call(
            ApiCategory.WAKE, lambda api: self._vehicle(api, vin).wake_up()
        )
        return str((result.get("response") or {}).get("state", "unknown"))

    async def async_fleet_status(self, vins: list[str]) -> dict[str, bool]:
        """Return whether the app's key is paired, per car (one data request).

        Cars Tesla lists in neither ``key_paired_vins`` nor ``unpaired_vins``
        are left out.
        """

        async def status(api: TeslaFleetApi) -> dict[str, Any]:
            return dict(await self._vehicle(api, "").fleet_status(vins))

        result = await self._call(ApiCategory.DATA, status)
        response = result.get("response") or {}
        paired = dict.fromkeys(response.get("unpaired_vins") or [], False)
        paired.update(dict.fromkeys(response.get("key_paired_vins") or [], True))
        return {vin: value for vin, value in paired.items() if vin in vins}

    async def async_command(
        self, vin: str, command: str, *, signed: bool = False, **params: Any
    ) -> dict[str, Any]:
        """Send a command; raise CommandFailedError when the car says no.

        Only the charging commands this integration uses can be sent.
        ``signed``: sign it here with the installation's key (Fleet API's
        signed_command) instead of the REST command or the proxy.
        """
        if command not in COMMANDS:
            raise ValueError(f"Not a command this integration sends: {command}")
        if signed:
            signer = self._signed
            if signer is None:
                raise SigningRequiredError
            result = await self._call(
                ApiCategory.COMMAND,
                lambda api: signer.async_send(vin, command, params),
                signed=True,
            )
        else:

            async def send(api: TeslaFleetApi) -> dict[str, Any]:
                method = getattr(self._vehicle(api, vin), command)
                return dict(await method(**params))

            result = await self._call(ApiCategory.COMMAND, send, commands=True)
        response = result.get("response") or {}
        if not response.get("result", False):
            if str(response.get("reason") or "") == UNSIGNED_HARDLOCKED:
                raise SigningRequiredError
            raise CommandFailedError(command, str(response.get("reason") or ""))
        return dict(response)


COMMANDS = frozenset(
    {
        "set_charge_limit",
        "charge_start",
        "charge_stop",
        "set_charging_amps",
        "add_charge_schedule",
        "remove_charge_schedule",
        "set_scheduled_charging",
    }
)


def _translate(err: TeslaFleetError, *, commands: bool = False) -> FleetError:
    """Map a library error to ours (a 421 is handled where it is caught).

    ``commands``: the request went to the commands server, whose 500/503 may
    be a signing proxy's report of the car (asleep, key not paired).
    """
    if isinstance(err, VehicleOffline):
        return VehicleAsleepError()
    if isinstance(err, KEY_FAULTS):
        return KeyNotPairedError()
    if isinstance(err, ACCESS_FAULTS):
        return RemoteAccessDisabledError()
    if isinstance(err, TRANSIENT_FAULTS):
        return VehicleBusyError(type(err).__name__)
    if isinstance(err, SIGNING_FAULTS):
        return SigningFaultError(type(err).__name__)
    if isinstance(err, RateLimited):
        return RateLimitedError(_retry_after(err))
    if err.status == FORBIDDEN and VCP_REQUIRED in _error_text(err).lower():
        return SigningRequiredError()
    if isinstance(err, InvalidScope) or (
        isinstance(err, Forbidden) and "missing scope" in _error_text(err).lower()
    ):
        return MissingScopesError()
    if commands and err.status in PROXY_FAULT_STATUSES:
        text = _error_text(err).lower()
        if any(hint in text for hint in PROXY_NOT_PAIRED_HINTS):
            return KeyNotPairedError()
        if any(hint in text for hint in PROXY_ASLEEP_HINTS):
            return VehicleAsleepError()
    if err.status is not None and err.status >= SERVER_ERROR:
        return FleetUnavailableError(f"HTTP {err.status}")
    return FleetError("api_error", error=type(err).__name__)


def _without_location(endpoints: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(e for e in endpoints if e != LOCATION_DATA)


def _error_text(err: TeslaFleetError) -> str:
    """Return the error field of the body Tesla sent (empty when none)."""
    if isinstance(err.data, dict):
        return str(err.data.get("error") or "")
    return str(err.data or "")
