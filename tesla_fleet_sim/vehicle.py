"""The simulated car as tests, scripts and the Fleet API see it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .config import SimConfig, VehicleConfig
from .errors import SimulationError
from .geo import Location, bearing_deg
from .schedules import MAX_SCHEDULES, ChargeSchedule
from .vcp import Keychain, VehicleVerifier
from .vehicle_core import VehicleCore, _iso
from .vehicle_types import (
    FULL_EPSILON,
    MAX_CHARGE_LIMIT,
    MIN_CHARGE_LIMIT,
    OK,
    CarState,
    ChargeOrigin,
    CommandResult,
    Drive,
    Trip,
    VehicleSnapshot,
)

__all__ = ["OK", "CommandResult", "SimVehicle", "Trip", "VehicleSnapshot"]


class SimVehicle(VehicleCore):
    """One simulated car.

    Readable properties and actions first bring the world up to the clock
    (through the owning simulator), so tests can call them at any time.

    For signed commands (Vehicle Command Protocol) the car has a key pair and
    per-domain sessions (:attr:`verifier`) and a :attr:`keychain` of the
    public keys it accepts commands from.
    """

    def __init__(
        self,
        config: VehicleConfig,
        sim_config: SimConfig,
        now: datetime,
        sync: Callable[[], object] | None = None,
    ) -> None:
        """Create the car, its command-protocol key and its keychain."""
        super().__init__(config, sim_config, now, sync)
        self.keychain = Keychain(app_key_paired=config.key_paired)
        self.verifier = VehicleVerifier(config.vin, sim_config.seed, now)

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

    # --- virtual keys (Vehicle Command Protocol) --------------------------

    @property
    def vehicle_public_key(self) -> bytes:
        """The car's own public key (uncompressed P-256 point)."""
        return self.verifier.public_key

    def pair_key(self, public_key: bytes | str) -> bytes:
        """Put a public key (point, hex or PEM) on the keychain; returns the point.

        Stands for the owner approving the key in the Tesla app.
        """
        return self.keychain.pair(public_key)

    def unpair_key(self, public_key: bytes | str) -> bool:
        """Remove an explicitly paired key; returns whether it was there."""
        return self.keychain.unpair(public_key)

    def set_app_key_paired(self, paired: bool) -> None:
        """Pair or remove the key of the app's registered domain."""
        self.keychain.app_key_paired = paired

    def reboot(self) -> None:
        """Restart the car's computers: new epochs, apps must resync sessions."""
        self._sync()
        self.verifier.reboot(self._t)

    # --- Fleet API interactions ----------------------------------------

    def request_wake(self) -> None:
        """Handle wake_up: an asleep car comes online after the wake delay."""
        self._sync()
        if self._state is CarState.ONLINE:
            self._touch()
        elif self._state is CarState.ASLEEP and self._wake_at is None:
            self._wake_requests += 1
            delay = self._sim_config.wake_delay_for(self.vin, self._wake_requests)
            self._wake_at = self._t + delay
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
            command_signing=self.config.command_signing,
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
            "vehicle_public_key": self.verifier.public_key.hex(),
            "keychain": {
                "app_key_paired": self.keychain.app_key_paired,
                "keys": [key.hex() for key in self.keychain.keys],
            },
        }
