"""The car's engine: a lazy, event-driven model of sleep, driving and charging.

Nothing ticks. Between two moments the car's state is constant except for
quantities that change linearly (position while driving, battery while driving
or charging, awake time). :meth:`VehicleCore.advance_to` jumps from event to
event (wake done, arrival, battery full, schedule start/end, falling asleep)
and integrates in between, so a simulated month costs only its events.
:class:`~tesla_fleet_sim.vehicle.SimVehicle` adds the public surface.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .config import SimConfig, VehicleConfig
from .geo import Location, distance_km
from .schedules import LEGACY_SCHEDULE_ID, EventKind, ScheduleBook, ScheduleEvent
from .vehicle_types import (
    FULL_EPSILON,
    HOME_RADIUS_KM,
    SECONDS_PER_HOUR,
    CarState,
    ChargeOrigin,
    ChargeSession,
    ChargingState,
    Drive,
    Trip,
)


class VehicleCore:
    """State and engine of one simulated car (see the module docstring)."""

    def __init__(
        self,
        config: VehicleConfig,
        sim_config: SimConfig,
        now: datetime,
        sync: Callable[[], object] | None = None,
    ) -> None:
        """Create the car in its configured initial state at ``now``."""
        self.config = config
        self._sim_config = sim_config
        self._sync_world = sync
        self._tz = ZoneInfo(config.timezone)
        self._t = now
        self._cursor = now
        self._state = CarState(config.state)
        self._wake_at: datetime | None = None
        self._asleep_since: datetime | None = None if config.state == "online" else now
        self._last_activity = now
        self._position = config.location or config.home
        self._heading = 0
        self._drive: Drive | None = None
        self._shift: str | None = None
        self._battery = float(config.battery_level)
        self._limit = config.charge_limit_soc
        self._plugged = config.plugged_in
        self._grid_up = True
        self._session: ChargeSession | None = None
        self._amps = config.charge_current_max
        self._energy_added = 0.0
        self._odometer_km = config.odometer_km
        self._awake_seconds = 0.0
        self._departure: dict[str, Any] = {"enable": False}
        self._locked = True
        self._sentry = False
        self.schedules = ScheduleBook(self._tz)
        self._wake_count = 0
        self._wake_requests = 0
        self._self_wake_count = 0
        self._sleep_count = 0
        self._arrivals: list[datetime] = []
        self._trips: list[Trip] = []
        if self._plugged:
            self._reconsider_charging()

    # --- world synchronisation -----------------------------------------

    @property
    def vin(self) -> str:
        """The car's VIN."""
        return self.config.vin

    @property
    def time(self) -> datetime:
        """The moment the car's model has been advanced to."""
        return self._t

    def _sync(self) -> None:
        if self._sync_world is not None:
            self._sync_world()

    def advance_to(self, target: datetime) -> None:
        """Run the car's life up to ``target`` (no-op for earlier moments)."""
        while True:
            self._process_due()
            upcoming = self._next_event_after()
            if upcoming is None or upcoming > target:
                break
            self._integrate_to(upcoming)
        self._integrate_to(target)
        # Nothing was due in between, so schedule events up to here are handled.
        self._cursor = self._t

    # --- engine: events -------------------------------------------------

    def _next_event_after(self) -> datetime | None:
        now = self._t
        candidates = (
            self._wake_at,
            self._drive.end if self._drive is not None else None,
            self._full_at(),
            self._sleep_at(),
            self.schedules.next_event_after(now),
        )
        return min((c for c in candidates if c is not None and c > now), default=None)

    def _process_due(self) -> None:
        now = self._t
        if self._wake_at is not None and self._wake_at <= now:
            self._finish_wake()
        if self._drive is not None and self._drive.end <= now:
            self._arrive()
        for event in self.schedules.events_between(self._cursor, now):
            self._on_schedule_event(event)
        self._cursor = now
        self._settle()

    def _settle(self) -> None:
        """Apply consequences that are immediate at the current moment."""
        if self._session is not None and self._battery >= self._limit - FULL_EPSILON:
            self._battery = max(self._battery, float(self._limit))
            self._end_session()
        sleep_at = self._sleep_at()
        if sleep_at is not None and sleep_at <= self._t:
            self._sleep()

    def _on_schedule_event(self, event: ScheduleEvent) -> None:
        if event.kind is EventKind.REMOVE:
            self.schedules.remove(event.schedule_id)
            return
        radius = self._sim_config.schedule_radius_m
        if not self.schedules.applies(event.schedule_id, self._here(), radius):
            return
        if event.kind is EventKind.END:
            if (
                self._session is not None
                and self._session.origin is not ChargeOrigin.MANUAL
            ):
                self._end_session()
        elif self._can_start_charging():
            self._self_wake()
            self._start_session(ChargeOrigin.SCHEDULE)

    def _finish_wake(self) -> None:
        # A pending wake exists only while asleep (sleep, offline and self-wake clear it).
        self._wake_at = None
        self._state = CarState.ONLINE
        self._asleep_since = None
        self._wake_count += 1
        self._touch()

    def _arrive(self) -> None:
        drive = self._drive
        assert drive is not None  # noqa: S101 - only called with a drive
        self._position = drive.destination
        self._drive = None
        self._shift = "P"
        self._touch()
        home = distance_km(drive.destination, self.config.home) <= HOME_RADIUS_KM
        self._trips.append(
            Trip(drive.start, self._t, drive.destination, drive.distance_km, home)
        )
        if home:
            self._arrivals.append(self._t)
        if drive.plug_in_on_arrival:
            self._connect()

    def _sleep(self) -> None:
        self._state = CarState.ASLEEP
        self._asleep_since = self._t
        self._wake_at = None
        self._shift = None
        self._sleep_count += 1

    def _self_wake(self) -> None:
        if self._state is not CarState.ONLINE:
            self._state = CarState.ONLINE
            self._asleep_since = None
            self._wake_at = None
            self._self_wake_count += 1
            self._touch()

    def _touch(self) -> None:
        self._last_activity = self._t

    def _connect(self) -> None:
        self._plugged = True
        self._energy_added = 0.0
        self._self_wake()
        self._touch()
        self._reconsider_charging()

    def _unplug(self) -> None:
        self._plugged = False
        self._session = None
        self._self_wake()
        self._touch()

    # --- engine: charging -------------------------------------------------

    def _can_start_charging(self) -> bool:
        return (
            self._plugged
            and self._session is None
            and self._battery < self._limit - FULL_EPSILON
        )

    def _reconsider_charging(self) -> None:
        """Start or stop charging after plug-in, limit or schedule changes."""
        radius = self._sim_config.schedule_radius_m
        allowed = self.schedules.may_charge(self._t, self._here(), radius)
        session = self._session
        if session is None:
            if self._can_start_charging() and allowed:
                self._self_wake()
                self._start_session(ChargeOrigin.PLUG)
        elif session.origin is ChargeOrigin.PLUG and not allowed:
            self._end_session()

    def _start_session(self, origin: ChargeOrigin) -> None:
        self._session = ChargeSession(self._t, origin)
        self._touch()

    def _end_session(self) -> None:
        self._session = None
        self._touch()

    def _charging(self) -> bool:
        return self._session is not None and self._grid_up

    def _power_kw(self) -> float:
        if not self._charging():
            return 0.0
        cfg = self.config
        return min(
            cfg.charger_kw, self._amps * cfg.charger_voltage * cfg.charger_phases / 1000
        )

    def _charge_rate(self) -> float:
        """Battery percent gained per second."""
        kw = self._power_kw() * self.config.charging_efficiency
        return kw / self.config.battery_capacity_kwh * 100 / SECONDS_PER_HOUR

    def _full_at(self) -> datetime | None:
        rate = self._charge_rate()
        if rate <= 0:
            return None
        seconds = max(0.0, self._limit - self._battery) / rate
        return self._t + timedelta(seconds=seconds, microseconds=1)

    def _charging_state(self) -> ChargingState:
        if not self._plugged:
            return ChargingState.DISCONNECTED
        if self._session is not None:
            if not self._grid_up:
                return ChargingState.NO_POWER
            if (
                self._t - self._session.started_at
                < self._sim_config.charge_starting_period
            ):
                return ChargingState.STARTING
            return ChargingState.CHARGING
        if self._battery >= self._limit - FULL_EPSILON:
            return ChargingState.COMPLETE
        return ChargingState.STOPPED

    def _scheduled_charging_mode(self) -> str:
        if self._departure.get("enable") and self._departure.get(
            "off_peak_charging_enabled"
        ):
            return "DepartBy"
        if self.schedules.legacy_enabled:
            return "StartAt"
        return "Off"

    def _new_schedule_id(self) -> int:
        candidate = int(self._t.timestamp())
        while (
            self.schedules.get(candidate) is not None or candidate == LEGACY_SCHEDULE_ID
        ):
            candidate += 1
        return candidate

    # --- engine: integration ---------------------------------------------

    def _sleep_at(self) -> datetime | None:
        if (
            self._state is not CarState.ONLINE
            or self._drive is not None
            or self._charging()
        ):
            return None
        return self._last_activity + self._sim_config.sleep_after

    def _here(self) -> Location:
        if self._drive is not None:
            return self._drive.position(self._t)
        return self._position

    def _drive_power_kw(self) -> float:
        if self._drive is not None:
            kwh = self._drive.distance_km * self.config.consumption_kwh_per_km
            return kwh / self._drive.hours
        return -self._power_kw()

    def _integrate_to(self, target: datetime) -> None:
        seconds = (target - self._t).total_seconds()
        if seconds <= 0:
            return
        if self._state is CarState.ONLINE:
            self._awake_seconds += seconds
        if self._drive is not None:
            self._integrate_drive(target)
        else:
            gained = min(
                self._charge_rate() * seconds, max(0.0, self._limit - self._battery)
            )
            self._battery += gained
            self._energy_added += gained / 100 * self.config.battery_capacity_kwh
        self._t = target

    def _integrate_drive(self, target: datetime) -> None:
        drive = self._drive
        assert drive is not None  # noqa: S101 - only called while driving
        share = drive.fraction(target) - drive.fraction(self._t)
        km = drive.distance_km * share
        self._odometer_km += km
        used = (
            km
            * self.config.consumption_kwh_per_km
            / self.config.battery_capacity_kwh
            * 100
        )
        self._battery = max(0.0, self._battery - used)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
