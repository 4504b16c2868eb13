"""Value types of the simulated car: states, trips, charge sessions, snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .geo import Location, distance_km, interpolate

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
    command_signing: str

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
