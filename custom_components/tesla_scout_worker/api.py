"""Fleet API client: tokens from the worker, every billed call counted.

Library errors (which derive from BaseException) never leave this module: they
become the HomeAssistantError subclasses below. A 401 makes the token manager
refresh and the call is retried once.

This module decides what is transient: every error a later retry may fix (the
car asleep, rate limits, Tesla's outages, no usable access token right now)
derives from :class:`TransientFleetError`, so callers catch that one class and
never look into the token manager.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientError, ClientSession
from tesla_fleet_api.exceptions import (
    InvalidRegion,
    InvalidToken,
    LoginRequired,
    OAuthExpired,
    RateLimited,
    TeslaFleetError,
    VehicleOffline,
)
from tesla_fleet_api.tesla.fleet import TeslaFleetApi
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet

from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN, LOGGER
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
SERVER_ERROR = 500
UNAUTHORIZED_ERRORS = (OAuthExpired, InvalidToken, LoginRequired)


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


class CommandFailedError(FleetError):
    """The car refused a command (result false)."""

    def __init__(self, command: str, reason: str) -> None:
        """Initialize with the command and the car's reason."""
        super().__init__("command_failed", command=command, reason=reason or "-")
        self.command = command
        self.reason = reason


def _retry_after(err: RateLimited) -> float:
    data = err.data if isinstance(err.data, dict) else {}
    for key in ("after", "reset"):
        try:
            return max(1.0, float(data.get(key) or ""))
        except ValueError:
            continue
    return 60.0


class FleetClient:
    """Make Fleet API requests for one account."""

    def __init__(
        self,
        session: ClientSession,
        tokens: TeslaTokenManager,
        usage: ApiUsage,
        server: str,
        commands_server: str | None = None,
    ) -> None:
        """Initialize; commands_server is e.g. a tesla-http-proxy that signs."""
        self.tokens = tokens
        self.usage = usage
        self._session = session
        self._server = server.rstrip("/")
        self._commands_server = (
            commands_server.rstrip("/") if commands_server else self._server
        )

    def _make_api(self, server: str, used: list[str]) -> TeslaFleetApi:
        """Return a library client for one request.

        The library asks for the access token before every request; the token
        manager answers (refreshing by tier when it runs out), and the token
        handed out is remembered so a 401 can tell whether someone else has
        refreshed since.
        """

        async def access_token() -> str:
            token = await self.tokens.async_get_access_token()
            used.append(token)
            return token

        return TeslaFleetApi(
            self._session,
            access_token=access_token,
            server=server,
            charging_scope=False,
            energy_scope=False,
            partner_scope=False,
            user_scope=False,
            vehicle_scope=False,
        )

    async def _call(
        self,
        category: ApiCategory,
        request: Callable[[TeslaFleetApi], Awaitable[dict[str, Any]]],
        *,
        commands: bool = False,
    ) -> dict[str, Any]:
        """Run request, count it when billed, refresh and retry once on 401."""
        try:
            return await self._call_once_or_twice(category, request, commands)
        except TokenUnavailableError as err:
            reason = (err.translation_placeholders or {}).get("reason", "")
            raise TokenNotReadyError(str(reason)) from err

    async def _call_once_or_twice(
        self,
        category: ApiCategory,
        request: Callable[[TeslaFleetApi], Awaitable[dict[str, Any]]],
        commands: bool,
    ) -> dict[str, Any]:
        server = self._commands_server if commands else self._server
        for attempt in (1, 2):
            used: list[str] = []
            api = self._make_api(server, used)
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    result = await request(api)
            except UNAUTHORIZED_ERRORS:
                self.usage.record(category)
                if attempt == 2:
                    raise UnauthorizedError from None
                LOGGER.debug("Fleet API answered 401; refreshing and retrying once")
                if used:
                    await self.tokens.async_handle_unauthorized(used[-1])
                continue
            except TeslaFleetError as err:
                self._record_error(category, err)
                raise _translate(err) from None
            except (TimeoutError, ClientError) as err:
                raise FleetUnavailableError(type(err).__name__) from err
            self.usage.record(category)
            return result
        raise UnauthorizedError  # pragma: no cover - the loop always returns

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
        self, vin: str, endpoints: tuple[str, ...] = VEHICLE_DATA_ENDPOINTS
    ) -> dict[str, Any]:
        """Return live data; raises VehicleAsleepError when the car sleeps."""
        result = await self._call(
            ApiCategory.DATA,
            lambda api: self._vehicle(api, vin).vehicle_data(list(endpoints)),
        )
        return dict(result.get("response") or {})

    async def async_wake_up(self, vin: str) -> str:
        """Ask the car to wake; return the state reported right now."""
        result = await self._call(
            ApiCategory.WAKE, lambda api: self._vehicle(api, vin).wake_up()
        )
        return str((result.get("response") or {}).get("state", "unknown"))

    async def async_command(
        self, vin: str, command: str, **params: Any
    ) -> dict[str, Any]:
        """Send a command; raise CommandFailedError when the car says no.

        Only the charging commands this integration uses can be sent.
        """
        if command not in COMMANDS:
            raise ValueError(f"Not a command this integration sends: {command}")

        async def send(api: TeslaFleetApi) -> dict[str, Any]:
            method = getattr(self._vehicle(api, vin), command)
            return dict(await method(**params))

        result = await self._call(ApiCategory.COMMAND, send, commands=True)
        response = result.get("response") or {}
        if not response.get("result", False):
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


def _translate(err: TeslaFleetError) -> FleetError:
    """Map a library error to ours."""
    if isinstance(err, VehicleOffline):
        return VehicleAsleepError()
    if isinstance(err, RateLimited):
        return RateLimitedError(_retry_after(err))
    if isinstance(err, InvalidRegion):
        return WrongRegionError()
    if err.status is not None and err.status >= SERVER_ERROR:
        return FleetUnavailableError(f"HTTP {err.status}")
    return FleetError("api_error", error=type(err).__name__)
