"""What the scout knows about a car: the vehicle data model.

A check's answer (``vehicle_data``) is combined with what was known before:
the payload pieces of the last answer are kept while the car sleeps, so
entities keep their last values; derived values (at home, plugged in,
charging, driving, heading home) are computed here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from homeassistant.const import ATTR_LATITUDE, ATTR_LONGITUDE, STATE_HOME
from homeassistant.core import HomeAssistant

from .const import CONF_HOME_ZONE, DEFAULT_HOME_ZONE
from .geo import bearing_deg, distance_km, mph_to_kmh
from .scout_habits import MOVED_KM
from .scout_policy import Observation, VehicleState, heading_home, is_driving

DEFAULT_ZONE_RADIUS_M: Final = 100.0
CHARGING_STATES: Final = frozenset({"charging", "starting"})


@dataclass(frozen=True, slots=True)
class HomeZone:
    """Where home is."""

    latitude: float
    longitude: float
    radius_km: float
    name: str = STATE_HOME


@dataclass(slots=True)
class VehicleData:
    """The last known state of one vehicle.

    The payload pieces are those of the last vehicle_data answer; they are kept
    while the car sleeps, so entities keep their last values. ``restored`` data
    comes from the scout's memory after a restart (scout_memory.py): it is
    never fresh, whatever its times say.
    """

    state: str
    checked_at: datetime
    fetched_at: datetime | None = None
    charge_state: dict[str, Any] = field(default_factory=dict)
    drive_state: dict[str, Any] = field(default_factory=dict)
    vehicle_state: dict[str, Any] = field(default_factory=dict)
    charge_schedule_data: dict[str, Any] = field(default_factory=dict)
    location: tuple[float, float] | None = None
    distance_home_km: float | None = None
    at_home: bool | None = None
    plugged_in: bool | None = None
    charging: bool | None = None
    driving: bool = False
    heading_home: bool = False
    stayed_awake: bool = False
    speed_kmh: float | None = None
    next_update: datetime | None = None
    restored: bool = False

    @property
    def fresh(self) -> bool:
        """Whether the payload was fetched in the latest cycle (the car is awake)."""
        return (
            not self.restored
            and self.fetched_at is not None
            and self.fetched_at == self.checked_at
        )

    @property
    def charging_state(self) -> str | None:
        """Return charge_state.charging_state lower-cased, None when unknown."""
        value = self.charge_state.get("charging_state")
        if not isinstance(value, str):
            return None
        state = value.lower()
        if state in CHARGING_STATES and not self.fresh:
            return None  # the car stopped charging since; we cannot tell how
        return state

    @property
    def charger_power(self) -> float | None:
        """Return the charger power in kW (0 while asleep)."""
        if self.state == VehicleState.ASLEEP:
            return 0.0
        if self.state != VehicleState.ONLINE:
            return None
        value = self.charge_state.get("charger_power")
        return float(value) if isinstance(value, int | float) else None

    def observation(self) -> Observation:
        """Return what the polling policy needs."""
        return Observation(
            state=self.state,
            driving=self.driving,
            heading_home=self.heading_home,
            charging=bool(self.charging),
            stayed_awake=self.stayed_awake,
            distance_home_km=self.distance_home_km,
            speed_kmh=self.speed_kmh,
            at_home=self.at_home,
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def build_vehicle_data(
    *,
    state: str,
    now: datetime,
    payload: dict[str, Any] | None,
    previous: VehicleData | None,
    home: HomeZone | None,
    restored: bool = False,
) -> VehicleData:
    """Combine a check's result with what was known before.

    ``restored``: ``now`` and ``state`` are those of a check before a restart
    and ``previous`` holds what was remembered (see scout_memory.py).
    """
    data = VehicleData(state=state, checked_at=now, restored=restored)
    if payload is not None:
        data.fetched_at = now
        data.charge_state = dict(payload.get("charge_state") or {})
        data.drive_state = dict(payload.get("drive_state") or {})
        data.vehicle_state = dict(payload.get("vehicle_state") or {})
        data.charge_schedule_data = dict(payload.get("charge_schedule_data") or {})
    elif previous is not None:
        data.fetched_at = previous.fetched_at
        data.charge_state = previous.charge_state
        data.drive_state = previous.drive_state
        data.vehicle_state = previous.vehicle_state
        data.charge_schedule_data = previous.charge_schedule_data

    drive = data.drive_state
    lat, lon = _number(drive.get("latitude")), _number(drive.get("longitude"))
    if lat is not None and lon is not None:
        data.location = (lat, lon)
        if home is not None:
            data.distance_home_km = distance_km(lat, lon, home.latitude, home.longitude)
            data.at_home = data.distance_home_km <= home.radius_km

    charging_state = data.charge_state.get("charging_state")
    if isinstance(charging_state, str):
        data.plugged_in = charging_state.lower() != "disconnected"
        if data.fresh:
            data.charging = charging_state.lower() in CHARGING_STATES
    if not data.fresh and state == VehicleState.ASLEEP:
        data.charging = False  # a charging car stays awake

    if data.fresh:
        data.speed_kmh = mph_to_kmh(_number(drive.get("speed")))
        shift = drive.get("shift_state")
        data.driving = is_driving(
            shift if isinstance(shift, str) else None, data.speed_kmh
        )
    if data.driving and data.location is not None and home is not None:
        assert data.distance_home_km is not None  # noqa: S101 - set with location
        earlier = (
            previous.distance_home_km
            if previous is not None and previous.driving and previous.fresh
            else None
        )
        data.heading_home = heading_home(
            distance_km_now=data.distance_home_km,
            previous_distance_km=earlier,
            heading=_number(drive.get("heading")),
            bearing_home=bearing_deg(*data.location, home.latitude, home.longitude),
        )
    data.stayed_awake = _stayed_awake(data, previous)
    return data


def _stayed_awake(data: VehicleData, previous: VehicleData | None) -> bool:
    """Whether this and the previous check found the car parked online, unmoved.

    A car that was charging at the previous check does not count: charging
    kept it awake, and it falls asleep once the charge is over.
    """
    if previous is None or not (data.fresh and previous.fresh):
        return False
    if data.driving or previous.driving or previous.charging:
        return False
    if data.location is None or previous.location is None:
        return False
    return distance_km(*data.location, *previous.location) <= MOVED_KM


def home_zone(hass: HomeAssistant, options: Mapping[str, Any]) -> HomeZone | None:
    """Return the home zone chosen in the options, None when it does not exist."""
    zone_id = str(options.get(CONF_HOME_ZONE) or DEFAULT_HOME_ZONE)
    zone = hass.states.get(zone_id)
    if zone is None:
        return None
    lat = _number(zone.attributes.get(ATTR_LATITUDE))
    lon = _number(zone.attributes.get(ATTR_LONGITUDE))
    if lat is None or lon is None:
        return None
    radius = _number(zone.attributes.get("radius")) or DEFAULT_ZONE_RADIUS_M
    name = STATE_HOME if zone_id == DEFAULT_HOME_ZONE else zone.name
    return HomeZone(lat, lon, radius / 1000, name)
