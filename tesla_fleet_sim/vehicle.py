"""The simulated car: a lazy, event-driven model of sleep, driving and charging.

Nothing ticks. Between two moments the car's state is constant except for
quantities that change linearly (position while driving, battery while driving
or charging, awake time). :meth:`SimVehicle.advance_to` jumps from event to
event (wake done, arrival, battery full, schedule start/end, falling asleep)
and integrates in between, so a simulated month costs only its events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from .config import SimConfig, VehicleConfig
from .errors import SimulationError
from .geo import Location, bearing_deg, distance_km, interpolate
from .schedules import (
    LEGACY_SCHEDULE_ID,
    MAX_SCHEDULES,
    ChargeSchedule,
    EventKind,
    ScheduleBook,
    ScheduleEvent,
)

CommandResult = tuple[bool, str]

HOME_RADIUS_KM = 0.2
FULL_EPSILON = 1e-9
SECONDS_PER_HOUR = 3600.0
MIN_CHARGE_LIMIT = 50
MAX_CHARGE_LIMIT = 100
OK: CommandResult = (True, "")


class CarState(StrEnum):
    """Connectivity state as the Fleet API reports it."""

    ONLINE = "online"
    ASLEEP = "asleep"
    OFFLINE = "offline"


class ChargingState(StrEnum):
    """Values of charge_state.charging_state."""

    DISCONNECTED = "Disconnected"
    STOPPED = "Stopped"
    STARTING = "Starting"
    CHARGING = "Charging"
    COMPLETE = "Complete"
    NO_POWER = "NoPower"


class ChargeOrigin(StrEnum):
    """What started a charging session (decides what may stop it)."""

    PLUG = "plug"  # no schedule constraint: charging starts on plug-in
    SCHEDULE = "schedule"
    MANUAL = "manual"  # charge_start: ignores schedules


@dataclass(slots=True)
class Drive:
    """A trip in progress; the position moves linearly from origin to destination."""

    origin: Location
    destination: Location
    start: datetime
    end: datetime
    plug_in_on_arrival: bool
    distance_km: float = field(init=False)

    def __post_init__(self) -> None:
        """Measure the trip."""
        self.distance_km = distance_km(self.origin, self.destination)

    @property
    def hours(self) -> float:
        """Duration of the trip in hours."""
        return (self.end - self.start).total_seconds() / SECONDS_PER_HOUR

    @property
    def speed_kmh(self) -> float:
        """Constant speed of the trip."""
        return self.distance_km / self.hours

    def fraction(self, moment: datetime) -> float:
        """Share of the trip done at ``moment``."""
        done = (moment - self.start) / (self.end - self.start)
        return min(max(done, 0.0), 1.0)

    def position(self, moment: datetime) -> Location:
        """Where the car is at ``moment``."""
        return interpolate(self.origin, self.destination, self.fraction(moment))


@dataclass(frozen=True, slots=True)
class Trip:
    """A finished trip."""

    departed: datetime
    arrived: datetime
    destination: Location
    distance_km: float
    home: bool


@dataclass(slots=True)
class ChargeSession:
    """Charging in progress (power flows while plugged in and the grid is up)."""

    started_at: datetime
    origin: ChargeOrigin


@dataclass(frozen=True, slots=True)
class VehicleSnapshot:
    """Everything the API reports about a car at one moment."""

    vin: str
    display_name: str
    api_id: int
    api_vehicle_id: int
    time: datetime
    state: str
    battery_level: float
    battery_capacity_kwh: float
    consumption_kwh_per_km: float
    charge_limit_soc: int
    charging_state: str
    charger_power_kw: float
    charger_voltage: int
    charger_phases: int
    charge_amps: int
    charge_amps_max: int
    charging_efficiency: float
    charge_energy_added: float
    plugged_in: bool
    scheduled_charging_mode: str
    scheduled_charging_pending: bool
    scheduled_charging_start: datetime | None
    legacy_schedule_time: int | None
    departure: dict[str, Any]
    charge_schedules: list[dict[str, Any]]
    latitude: float
    longitude: float
    heading: int
    speed_kmh: float | None
    shift_state: str | None
    drive_power_kw: float
    odometer_km: float
    car_version: str
    car_type: str
    color: str | None
    locked: bool
    sentry_mode: bool
    user_present: bool

    @property
    def hours_to_full(self) -> float:
        """Hours until the limit at the present charging power."""
        if self.charger_power_kw <= 0:
            return 0.0
        missing_kwh = (
            max(0.0, self.charge_limit_soc - self.battery_level)
            / 100
            * self.battery_capacity_kwh
        )
        return missing_kwh / (self.charger_power_kw * self.charging_efficiency)


class SimVehicle:
    """One simulated car.

    Readable properties and actions first bring the world up to the clock
    (through the owning simulator), so tests can call them at any time.
    """

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

    # --- readable state --------------------------------------------------

    @property
    def state(self) -> str:
        """Return "online", "asleep" or "offline"."""
        self._sync()
        return str(self._state)

    @property
    def battery_level(self) -> float:
        """State of charge in percent."""
        self._sync()
        return self._battery

    @property
    def charge_limit_soc(self) -> int:
        """Charge limit in percent."""
        self._sync()
        return self._limit

    @property
    def location(self) -> Location:
        """Current position."""
        self._sync()
        return self._here()

    @property
    def latitude(self) -> float:
        """Current latitude."""
        return self.location.lat

    @property
    def longitude(self) -> float:
        """Current longitude."""
        return self.location.lon

    @property
    def heading(self) -> int:
        """Compass heading in degrees."""
        self._sync()
        return self._heading

    @property
    def speed(self) -> float | None:
        """Speed in km/h while driving, else None."""
        self._sync()
        return self._drive.speed_kmh if self._drive is not None else None

    @property
    def shift_state(self) -> str | None:
        """None, "D" while driving or "P" after parking (until it sleeps)."""
        self._sync()
        return self._shift

    @property
    def is_driving(self) -> bool:
        """Whether a trip is in progress."""
        self._sync()
        return self._drive is not None

    @property
    def plugged_in(self) -> bool:
        """Whether a charge cable is connected."""
        self._sync()
        return self._plugged

    @property
    def charging_state(self) -> str:
        """charge_state.charging_state."""
        self._sync()
        return str(self._charging_state())

    @property
    def charger_power(self) -> float:
        """Power drawn from the charger in kW."""
        self._sync()
        return self._power_kw()

    @property
    def charge_amps(self) -> int:
        """Requested charging current in amps."""
        self._sync()
        return self._amps

    @property
    def charge_energy_added(self) -> float:
        """Energy added to the battery since plug-in, in kWh."""
        self._sync()
        return self._energy_added

    @property
    def charge_schedules(self) -> list[dict[str, Any]]:
        """Charge schedules as charge_schedule_data lists them."""
        self._sync()
        return [s.to_api() for s in self.schedules.schedules]

    @property
    def scheduled_charging(self) -> dict[str, Any]:
        """The legacy scheduled charging setting: enabled and time (minutes)."""
        self._sync()
        return {
            "enabled": self.schedules.legacy_enabled,
            "time": self.schedules.legacy_time,
        }

    @property
    def scheduled_departure(self) -> dict[str, Any]:
        """The stored set_scheduled_departure settings."""
        self._sync()
        return dict(self._departure)

    @property
    def asleep_since(self) -> datetime | None:
        """When the car fell asleep (None unless asleep)."""
        self._sync()
        return self._asleep_since if self._state is CarState.ASLEEP else None

    @property
    def awake_seconds(self) -> float:
        """Total simulated seconds spent online."""
        self._sync()
        return self._awake_seconds

    @property
    def last_activity(self) -> datetime:
        """The last moment something kept the car awake."""
        self._sync()
        return self._last_activity

    @property
    def odometer_km(self) -> float:
        """Odometer in km."""
        self._sync()
        return self._odometer_km

    @property
    def wake_count(self) -> int:
        """Wake-ups requested through the API that completed."""
        self._sync()
        return self._wake_count

    @property
    def self_wake_count(self) -> int:
        """Times the car woke by itself (drive, plug event, scheduled charge)."""
        self._sync()
        return self._self_wake_count

    @property
    def sleep_count(self) -> int:
        """Times the car fell asleep."""
        self._sync()
        return self._sleep_count

    @property
    def arrivals(self) -> list[datetime]:
        """Times the car arrived home."""
        self._sync()
        return list(self._arrivals)

    @property
    def trips(self) -> list[Trip]:
        """Finished trips."""
        self._sync()
        return list(self._trips)

    # --- actions (tests, scripts, admin) ------------------------------

    def drive_to(
        self, location: Location, duration: timedelta, plug_in_on_arrival: bool = False
    ) -> None:
        """Start driving now; arrive after ``duration`` (unplugs first)."""
        if duration <= timedelta(0):
            raise ValueError("a drive needs a positive duration")
        self._sync()
        now = self._t
        origin = self._here()
        if self._plugged:
            self._unplug()
        self._self_wake()
        self._drive = Drive(origin, location, now, now + duration, plug_in_on_arrival)
        self._heading = bearing_deg(origin, location)
        self._shift = "D"
        self._touch()
        self._settle()

    def drive_home(self, duration: timedelta, plug_in_on_arrival: bool = False) -> None:
        """Drive to the configured home location."""
        self.drive_to(self.config.home, duration, plug_in_on_arrival)

    def drive_to_work(
        self, duration: timedelta, plug_in_on_arrival: bool = False
    ) -> None:
        """Drive to the configured work location."""
        self.drive_to(self.config.work, duration, plug_in_on_arrival)

    def plug_in(self) -> None:
        """Connect the charge cable (wakes the car; may start charging)."""
        self._sync()
        if self._drive is not None:
            raise SimulationError("cannot plug in while driving")
        if not self._plugged:
            self._connect()
        self._settle()

    def unplug(self) -> None:
        """Disconnect the charge cable (wakes the car; ends charging)."""
        self._sync()
        if self._plugged:
            self._unplug()
        self._settle()

    def fall_asleep(self) -> None:
        """Put the car to sleep now (not while driving or charging)."""
        self._sync()
        if self._drive is not None or self._charging():
            raise SimulationError("a driving or charging car stays awake")
        self._sleep()

    def go_offline(self) -> None:
        """Lose connectivity (e.g. underground garage) until come_online()."""
        self._sync()
        self._state = CarState.OFFLINE
        self._wake_at = None
        self._settle()

    def come_online(self) -> None:
        """Regain connectivity / wake up by itself."""
        self._sync()
        self._self_wake()
        self._touch()
        self._settle()

    def set_battery(self, level: float) -> None:
        """Set the state of charge (percent, clamped to 0..100)."""
        self._sync()
        self._battery = min(max(float(level), 0.0), 100.0)
        self._reconsider_charging()
        self._settle()

    def set_grid_power(self, available: bool) -> None:
        """Simulate a power cut at the charger (charging_state "NoPower")."""
        self._sync()
        self._grid_up = available
        if available and self._session is not None:
            self._self_wake()
            self._touch()
        self._settle()

    # --- Fleet API interactions ----------------------------------------

    def request_wake(self) -> None:
        """Handle wake_up: an asleep car comes online after the wake delay."""
        self._sync()
        if self._state is CarState.ONLINE:
            self._touch()
        elif self._state is CarState.ASLEEP and self._wake_at is None:
            self._wake_at = self._t + self._sim_config.wake_delay
        self._process_due()

    def note_activity(self) -> bool:
        """Register an API call that reaches the car; False when it is not online."""
        self._sync()
        if self._state is not CarState.ONLINE:
            return False
        self._touch()
        return True

    def set_charge_limit(self, percent: int) -> CommandResult:
        """Handle set_charge_limit."""
        self._sync()
        if not MIN_CHARGE_LIMIT <= percent <= MAX_CHARGE_LIMIT:
            return False, "invalid charge limit"
        if percent == self._limit:
            return False, "already_set"
        self._limit = percent
        self._reconsider_charging()
        self._settle()
        return OK

    def start_charging(self) -> CommandResult:
        """Handle charge_start (overrides schedules until stopped)."""
        self._sync()
        if not self._plugged:
            return False, "not_plugged_in"
        if self._session is not None:
            return False, "is_charging"
        if self._battery >= self._limit - FULL_EPSILON:
            return False, "complete"
        self._start_session(ChargeOrigin.MANUAL)
        self._settle()
        return OK

    def stop_charging(self) -> CommandResult:
        """Handle charge_stop."""
        self._sync()
        if self._session is None:
            return False, "not_charging"
        self._end_session()
        self._settle()
        return OK

    def set_charging_amps(self, amps: int) -> CommandResult:
        """Handle set_charging_amps (clamped to the car's maximum)."""
        self._sync()
        if amps < 0:
            return False, "invalid charging amps"
        self._amps = min(amps, self.config.charge_current_max)
        self._settle()
        return OK

    def add_charge_schedule(self, schedule: ChargeSchedule) -> CommandResult:
        """Handle add_charge_schedule; id 0 gets a new id."""
        self._sync()
        replacing = self.schedules.get(schedule.id) is not None
        if not replacing and len(self.schedules.schedules) >= MAX_SCHEDULES:
            return False, "too many schedules"
        if schedule.id == 0:
            schedule.id = self._new_schedule_id()
        self.schedules.put(schedule, self._t)
        self._reconsider_charging()
        self._settle()
        return OK

    def remove_charge_schedule(self, schedule_id: int) -> CommandResult:
        """Handle remove_charge_schedule."""
        self._sync()
        if not self.schedules.remove(schedule_id):
            return False, "schedule not found"
        self._reconsider_charging()
        self._settle()
        return OK

    def set_scheduled_charging(
        self, enable: bool, minutes: int | None
    ) -> CommandResult:
        """Handle the legacy set_scheduled_charging (daily start time)."""
        self._sync()
        self.schedules.set_legacy(enable, minutes)
        self._reconsider_charging()
        self._settle()
        return OK

    def set_scheduled_departure(self, settings: dict[str, Any]) -> CommandResult:
        """Handle set_scheduled_departure (stored and reported, not simulated)."""
        self._sync()
        self._departure = dict(settings)
        self._settle()
        return OK

    def set_locked(self, locked: bool) -> CommandResult:
        """Handle door_lock / door_unlock."""
        self._locked = locked
        return OK

    def set_sentry_mode(self, on: bool) -> CommandResult:
        """Handle set_sentry_mode."""
        self._sentry = on
        return OK

    # --- snapshots -------------------------------------------------------

    def snapshot(self) -> VehicleSnapshot:
        """Return everything the API reports, as of now."""
        self._sync()
        here = self._here()
        radius = self._sim_config.schedule_radius_m
        pending = (
            self._plugged
            and self._session is None
            and self._battery < self._limit - FULL_EPSILON
            and self.schedules.constrains(here, radius)
        )
        next_start = (
            self.schedules.next_start_after(self._t, here, radius) if pending else None
        )
        return VehicleSnapshot(
            vin=self.vin,
            display_name=self.config.display_name,
            api_id=self.config.api_id,
            api_vehicle_id=self.config.api_vehicle_id,
            time=self._t,
            state=str(self._state),
            battery_level=self._battery,
            battery_capacity_kwh=self.config.battery_capacity_kwh,
            consumption_kwh_per_km=self.config.consumption_kwh_per_km,
            charge_limit_soc=self._limit,
            charging_state=str(self._charging_state()),
            charger_power_kw=self._power_kw(),
            charger_voltage=self.config.charger_voltage,
            charger_phases=self.config.charger_phases,
            charge_amps=self._amps,
            charge_amps_max=self.config.charge_current_max,
            charging_efficiency=self.config.charging_efficiency,
            charge_energy_added=self._energy_added,
            plugged_in=self._plugged,
            scheduled_charging_mode=self._scheduled_charging_mode(),
            scheduled_charging_pending=pending,
            scheduled_charging_start=next_start,
            legacy_schedule_time=self.schedules.legacy_time,
            departure=dict(self._departure),
            charge_schedules=[s.to_api() for s in self.schedules.schedules],
            latitude=here.lat,
            longitude=here.lon,
            heading=self._heading,
            speed_kmh=self._drive.speed_kmh if self._drive is not None else None,
            shift_state=self._shift,
            drive_power_kw=self._drive_power_kw(),
            odometer_km=self._odometer_km,
            car_version=self.config.car_version,
            car_type=self.config.car_type,
            color=self.config.color,
            locked=self._locked,
            sentry_mode=self._sentry,
            user_present=self._drive is not None,
        )

    def to_dict(self) -> dict[str, Any]:
        """Describe the car for the admin endpoint."""
        snap = self.snapshot()
        return {
            "vin": snap.vin,
            "time": snap.time.isoformat(),
            "state": snap.state,
            "battery_level": round(snap.battery_level, 4),
            "charge_limit_soc": snap.charge_limit_soc,
            "charging_state": snap.charging_state,
            "charger_power": snap.charger_power_kw,
            "charge_amps": snap.charge_amps,
            "charge_energy_added": round(snap.charge_energy_added, 4),
            "plugged_in": snap.plugged_in,
            "location": {"lat": snap.latitude, "lon": snap.longitude},
            "heading": snap.heading,
            "speed": snap.speed_kmh,
            "shift_state": snap.shift_state,
            "odometer_km": round(snap.odometer_km, 3),
            "charge_schedules": snap.charge_schedules,
            "scheduled_charging": self.scheduled_charging,
            "scheduled_departure": snap.departure,
            "wake_pending_until": self._wake_at.isoformat() if self._wake_at else None,
            "asleep_since": _iso(self.asleep_since),
            "last_activity": self._last_activity.isoformat(),
            "awake_seconds": round(self._awake_seconds, 3),
            "wake_count": self._wake_count,
            "self_wake_count": self._self_wake_count,
            "sleep_count": self._sleep_count,
            "arrivals": [a.isoformat() for a in self._arrivals],
            "trips": len(self._trips),
        }

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
