"""Fleet API client: tokens from the worker, every billed call counted.

Library errors never leave this module: they become the errors of errors.py.
A 401 makes the token manager refresh and the call is retried once; a 421
switches to the account's region; a 412 reports the app as unregistered.

Commands may go to a tesla-http-proxy (the commands URL), through a session of
their own when its certificate needs its own trust (see commands_tls.py).
Without a proxy, cars that need signing get their commands signed here, with
the installation's key (signed_commands.py keeps each car's session).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiohttp import ClientError, ClientSession
from cryptography.hazmat.primitives.asymmetric import ec
from tesla_fleet_api.exceptions import (
    InvalidRegion,
    InvalidToken,
    LibraryError,
    LoginRequired,
    OAuthExpired,
    PreconditionFailed,
    TeslaFleetError,
)
from tesla_fleet_api.tesla.fleet import TeslaFleetApi
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet

from .const import LOGGER
from .errors import (
    SERVER_ERROR,
    UNSIGNED_HARDLOCKED,
    CommandFailedError,
    FleetError,
    FleetUnavailableError,
    MissingScopesError,
    NotRegisteredFleetError,
    SigningFaultError,
    SigningRequiredError,
    TokenNotReadyError,
    UnauthorizedError,
    WrongRegionError,
    translate_error,
)
from .servers import regional_server
from .signed_commands import SignedVehicles, UnreadableReplyError
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
UNAUTHORIZED_ERRORS = (OAuthExpired, InvalidToken, LoginRequired)

_TOKENS_USED: ContextVar[list[str]] = ContextVar("tesla_scout_worker_tokens_used")
"""The access tokens handed to the library during the current request."""


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
                raise translate_error(err, commands=commands) from None
            except (TimeoutError, ClientError) as err:
                raise FleetUnavailableError(type(err).__name__) from err
            except LibraryError as err:
                raise SigningFaultError(type(err).__name__) from err
            except UnreadableReplyError as err:
                raise FleetUnavailableError(str(err)) from err
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


def _without_location(endpoints: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(e for e in endpoints if e != LOCATION_DATA)
