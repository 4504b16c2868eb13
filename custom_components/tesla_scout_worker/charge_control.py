"""Car control: the only place that talks to a car about charging.

Special charging sessions and the scout's off-peak action both go through
:class:`ChargeControl`: wake the car and wait until it is online, read its
charge and schedule data, set the charge limit, make sure exactly one one-time
charge schedule of a session is on the car (add, read back, find it again after
a lost answer), fall back to the legacy scheduled charging time, and restore.

Whoever changes a car records that first: the methods that change something
take a ``before`` callback and await it before the command is sent, so the
caller's "save before touching the car" rule stays visible where it is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from homeassistant.core import HomeAssistant

from .api import FleetClient
from .errors import (
    CommandFailedError,
    FleetError,
    KeyNotPairedError,
    SigningRequiredError,
    TransientFleetError,
)
from .geo import distance_km
from .signing import SigningPolicy
from .time_of_day import is_all_days

ONLINE: Final = "online"
WAKE_POLL_DELAYS: Final = (5.0, 10.0, 15.0, 15.0)
"""Seconds between state checks after wake_up (like HA core: 5/10/15 s)."""
CHARGE_LIMIT_MIN: Final = 50
CHARGE_LIMIT_MAX: Final = 100
SCHEDULE_MATCH_KM: Final = 0.5
"""A schedule this close to home counts as the home schedule."""
SESSION_SCHEDULE_NAME: Final = "Special charging"
ALREADY_SET: Final = "already_set"
SCHEDULE_GONE: Final = ("not found", "not_found", "no schedule", "does not exist")
UNSUPPORTED_HINTS: Final = (
    "not supported",
    "not_supported",
    "unsupported",
    "unknown command",
    "invalid_command",
    "invalidcommand",
    "upgrade",
)
UNSUPPORTED_ERRORS: Final = ("InvalidCommand", "UnsupportedVehicle", "NotFound")
SEND_ENDPOINTS: Final = (
    "charge_state",
    "charge_schedule_data",
    "drive_state",
    "location_data",
)
CLEANUP_ENDPOINTS: Final = ("charge_state", "charge_schedule_data")
SCHEDULES_ENDPOINTS: Final = ("charge_schedule_data",)

type WaitFunction = Callable[[float], Awaitable[None]]
type Before = Callable[[], Awaitable[None]]


async def async_wait(seconds: float) -> None:
    """Wait between wake-up checks (tests replace this to move a frozen clock)."""
    await asyncio.sleep(seconds)


class NotAwakeError(TransientFleetError):
    """The car did not come online after wake_up."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("not_awake")


class ScheduleNotConfirmedError(TransientFleetError):
    """The schedule was accepted but is not in the car's list."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("schedule_not_confirmed")


class SchedulesUnsupportedError(FleetError):
    """The car's firmware has no charge schedules (use the legacy start time)."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("schedules_unsupported")


@dataclass(frozen=True, slots=True)
class ScheduleWindow:
    """A one-time charge schedule: local minutes after midnight and its day."""

    start: int
    end: int
    day_bit: int
    day_name: str


def charge_schedules(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the charge schedules of a vehicle_data answer."""
    block = data.get("charge_schedule_data") or {}
    schedules = block.get("charge_schedules") if isinstance(block, Mapping) else None
    if not isinstance(schedules, list):
        return []
    return [s for s in schedules if isinstance(s, dict)]


def schedule_ids(data: Mapping[str, Any]) -> list[int]:
    """Return the ids of the car's charge schedules."""
    return [int(s["id"]) for s in charge_schedules(data) if _has_id(s)]


def _has_id(schedule: Mapping[str, Any]) -> bool:
    value = schedule.get("id")
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def find_session_schedule(
    schedules: list[dict[str, Any]],
    window: ScheduleWindow,
    *,
    known_id: int | None,
    not_ours: Collection[int],
) -> int | None:
    """Return the id of a session's schedule in the car's list.

    The known id wins. Without it, a one-time schedule for the same window
    counts only if it was not on the car before this session added its own
    (``not_ours``): the driver's identical schedule is never adopted.
    """
    if known_id is not None:
        for schedule in schedules:
            if _has_id(schedule) and schedule["id"] == known_id:
                return known_id
        return None
    for schedule in schedules:
        if (
            _has_id(schedule)
            and schedule["id"] not in not_ours
            and schedule.get("one_time")
            and schedule.get("start_time") == window.start
            and schedule.get("end_time") == window.end
            and int(schedule.get("days_of_week") or 0) & window.day_bit
        ):
            return int(schedule["id"])
    return None


def has_off_peak_schedule(
    schedules: list[dict[str, Any]],
    start: int,
    end: int,
    home: tuple[float, float, float],
) -> bool:
    """Return whether a repeating all-days schedule start..end exists at home.

    ``home`` is latitude, longitude and radius in km.
    """
    lat_home, lon_home, radius_km = home
    for schedule in schedules:
        lat = schedule.get("latitude")
        lon = schedule.get("longitude")
        if (
            schedule.get("enabled")
            and not schedule.get("one_time")
            and schedule.get("start_enabled")
            and schedule.get("start_time") == start
            and schedule.get("end_enabled")
            and schedule.get("end_time") == end
            and is_all_days(schedule.get("days_of_week"))
            and isinstance(lat, int | float)
            and isinstance(lon, int | float)
            and distance_km(float(lat), float(lon), lat_home, lon_home)
            <= max(radius_km, SCHEDULE_MATCH_KM)
        ):
            return True
    return False


def target_limit(percent: int) -> int:
    """Return a charge limit the car accepts (Tesla's range is 50-100 %)."""
    return min(max(percent, CHARGE_LIMIT_MIN), CHARGE_LIMIT_MAX)


def _is_unsupported(err: FleetError) -> bool:
    """Whether a failed add_charge_schedule means old firmware."""
    if isinstance(err, TransientFleetError):
        return False
    if isinstance(err, CommandFailedError):
        reason = err.reason.lower()
        return any(hint in reason for hint in UNSUPPORTED_HINTS)
    error = (err.translation_placeholders or {}).get("error", "")
    return error in UNSUPPORTED_ERRORS


class ChargeControl:
    """Charging commands for the cars of one account."""

    def __init__(
        self,
        hass: HomeAssistant,
        client: FleetClient,
        signing: SigningPolicy,
        *,
        wait: WaitFunction | None = None,
    ) -> None:
        """Initialize; ``wait`` replaces the sleep between wake-up checks.

        ``signing`` says which cars can get commands now: a command for a car
        that cannot is refused before it is sent.
        """
        self.hass = hass
        self.client = client
        self.signing = signing
        self._wait = wait

    # ------------------------------------------------------------ reading

    async def async_wake(self, vin: str) -> None:
        """Wake the car and check the server state until it is online."""
        if await self.client.async_wake_up(vin) == ONLINE:
            return
        wait = self._wait or async_wait
        for delay in WAKE_POLL_DELAYS:
            await wait(delay)
            summary = await self.client.async_vehicle_state(vin)
            if summary.get("state") == ONLINE:
                return
        raise NotAwakeError

    async def async_read(self, vin: str, endpoints: tuple[str, ...]) -> dict[str, Any]:
        """Read live data of an awake car."""
        return await self.client.async_vehicle_data(vin, endpoints)

    def location(self, data: Mapping[str, Any]) -> tuple[float, float]:
        """Return where the car is (home when the car does not say)."""
        drive = data.get("drive_state") or {}
        lat = drive.get("latitude")
        lon = drive.get("longitude")
        if lat is None or lon is None:
            return self.hass.config.latitude, self.hass.config.longitude
        return float(lat), float(lon)

    # ------------------------------------------------------------ commands

    def ensure_commands(self, vin: str) -> None:
        """Raise when no command can reach the car now.

        SigningRequiredError: it needs signing and nothing here can sign;
        KeyNotPairedError: it does not know the installation's key. Call it
        before waking a car for commands: a car that cannot get them is not
        woken (a billed wake-up) for nothing.
        """
        self.signing.async_check(vin)

    async def _async_send(self, vin: str, command: str, **params: Any) -> None:
        """Send a command the way the car takes it (signed here, proxy or REST).

        A car that refuses an unsigned command needs signing from then on: the
        command is signed and sent once more when a key is here to sign it. A
        car that refuses the key makes the signing policy find out why.
        """
        self.signing.async_check(vin)
        signed = self.signing.signs(vin)
        try:
            await self.client.async_command(vin, command, signed=signed, **params)
        except SigningRequiredError:
            self.signing.async_refused(vin)
            if signed or not self.signing.signs(vin):
                raise
        except KeyNotPairedError:
            if signed:
                await self.signing.async_key_refused(vin)
            raise
        else:
            return
        await self._async_send(vin, command, **params)

    async def _async_command_ok(self, vin: str, command: str, **params: Any) -> None:
        """Send a command; "already set" counts as done."""
        try:
            await self._async_send(vin, command, **params)
        except CommandFailedError as err:
            if ALREADY_SET not in err.reason.lower():
                raise

    async def async_set_limit(
        self,
        vin: str,
        data: Mapping[str, Any],
        percent: int,
        before: Before | None = None,
    ) -> bool:
        """Set the charge limit unless it already is; return whether sent."""
        charge = data.get("charge_state") or {}
        if charge.get("charge_limit_soc") == percent:
            return False
        if before is not None:
            await before()
        await self._async_command_ok(vin, "set_charge_limit", percent=percent)
        return True

    async def async_set_legacy_start(
        self, vin: str, *, enable: bool, minutes: int
    ) -> None:
        """Set (or clear) the older scheduled charging start time."""
        await self._async_command_ok(
            vin, "set_scheduled_charging", enable=enable, time=minutes
        )

    async def async_ensure_session_schedule(
        self,
        vin: str,
        data: Mapping[str, Any],
        window: ScheduleWindow,
        *,
        known_id: int | None,
        not_ours: Collection[int] | None,
        before_add: Callable[[list[int]], Awaitable[None]],
    ) -> int:
        """Make sure exactly one one-time schedule of a session is on the car.

        ``not_ours`` lists the schedule ids that were on the car before this
        session added its own (None when it never tried). When the schedule
        is already there (an answer was lost, or HA restarted) it is adopted,
        otherwise ``before_add`` gets the ids on the car now and is awaited
        before the add. Returns the schedule's id; raises
        SchedulesUnsupportedError for firmware without charge schedules and
        ScheduleNotConfirmedError when the new schedule is not listed.
        """
        schedules = charge_schedules(data)
        if known_id is not None or not_ours is not None:
            found = find_session_schedule(
                schedules, window, known_id=known_id, not_ours=not_ours or ()
            )
            if found is not None:
                return found
        existing = schedule_ids(data)
        await before_add(existing)
        lat, lon = self.location(data)
        try:
            await self._async_send(
                vin,
                "add_charge_schedule",
                days_of_week=window.day_name,
                enabled=True,
                lat=lat,
                lon=lon,
                start_time=window.start,
                end_time=window.end,
                one_time=True,
                name=SESSION_SCHEDULE_NAME,
            )
        except FleetError as err:
            if _is_unsupported(err):
                raise SchedulesUnsupportedError from err
            raise
        readback = await self.async_read(vin, SCHEDULES_ENDPOINTS)
        found = find_session_schedule(
            charge_schedules(readback), window, known_id=None, not_ours=existing
        )
        if found is None:
            raise ScheduleNotConfirmedError
        return found

    async def async_remove_schedule(self, vin: str, schedule_id: int) -> None:
        """Remove a schedule; one the car already dropped counts as removed."""
        try:
            await self._async_send(vin, "remove_charge_schedule", id=schedule_id)
        except CommandFailedError as err:
            if not any(hint in err.reason.lower() for hint in SCHEDULE_GONE):
                raise

    async def async_ensure_off_peak(
        self,
        vin: str,
        data: Mapping[str, Any],
        *,
        limit: int,
        start: int,
        end: int,
        home: tuple[float, float, float],
    ) -> None:
        """Set the off-peak limit and a repeating home schedule, if missing.

        ``home`` is latitude, longitude and radius in km; nothing already in
        place is sent again.
        """
        await self.async_set_limit(vin, data, limit)
        if start == end:
            return
        if has_off_peak_schedule(charge_schedules(data), start, end, home):
            return
        await self._async_send(
            vin,
            "add_charge_schedule",
            days_of_week="All",
            enabled=True,
            lat=home[0],
            lon=home[1],
            start_time=start,
            end_time=end,
            one_time=False,
        )
