"""The scout's polling policy: pure functions, no Home Assistant, no I/O.

Every Fleet API request is billed, and every ``vehicle_data`` request keeps the
car awake for its ~15 minute sleep timer. The policy therefore checks rarely
while nothing happens (longer than the sleep timer, so the car can fall
asleep between two checks) and often only while the car is driving toward
home, where an arrival is worth catching quickly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from .geo import angle_between

HEADING_TOLERANCE_DEG = 60.0
"""A car whose heading is this close to the bearing of home is driving home."""
FALLBACK_SPEED_KMH = 30.0
"""Assumed speed while driving but stopped (traffic light, jam) or unknown."""
MIN_SPEED_KMH = 5.0
DRIVING_SHIFT_STATES = frozenset({"D", "R", "N"})


class VehicleState(StrEnum):
    """Server-side connectivity of a car (GET /vehicles/{vin})."""

    ONLINE = "online"
    ASLEEP = "asleep"
    OFFLINE = "offline"


class Activity(StrEnum):
    """What the car is doing, as far as the policy cares."""

    DRIVING_HOME = "driving_home"
    DRIVING = "driving"
    CHARGING = "charging"
    PARKED = "parked"
    ASLEEP = "asleep"


@dataclass(frozen=True, slots=True)
class PollSettings:
    """The tunable intervals (from the entry's options)."""

    idle: timedelta
    asleep: timedelta
    driving_min: timedelta

    def __post_init__(self) -> None:
        """Keep the bounds consistent: min <= idle."""
        if self.driving_min > self.idle:
            object.__setattr__(self, "driving_min", self.idle)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one check saw (the inputs of the policy)."""

    state: str
    driving: bool = False
    heading_home: bool = False
    charging: bool = False
    distance_home_km: float | None = None
    speed_kmh: float | None = None


def activity(seen: Observation) -> Activity:
    """Classify an observation."""
    if seen.state != VehicleState.ONLINE:
        return Activity.ASLEEP
    if seen.driving:
        return Activity.DRIVING_HOME if seen.heading_home else Activity.DRIVING
    if seen.charging:
        return Activity.CHARGING
    return Activity.PARKED


def eta(distance_km: float, speed_kmh: float | None) -> timedelta:
    """Return the time to cover distance_km at speed_kmh (a fallback if too slow)."""
    speed = speed_kmh if speed_kmh is not None and speed_kmh >= MIN_SPEED_KMH else 0.0
    speed = speed or FALLBACK_SPEED_KMH
    return timedelta(hours=max(distance_km, 0.0) / speed)


def next_interval(settings: PollSettings, seen: Observation) -> timedelta:
    """Return how long to wait before the next check.

    * driving toward home: half the ETA, within [driving_min, idle];
    * driving elsewhere, charging or parked online: idle (longer than the car's
      sleep timer, so a parked car can fall asleep between two checks);
    * asleep or offline: asleep.
    """
    match activity(seen):
        case Activity.DRIVING_HOME:
            if seen.distance_home_km is None:
                return settings.idle
            half = eta(seen.distance_home_km, seen.speed_kmh) / 2
            return min(max(half, settings.driving_min), settings.idle)
        case Activity.ASLEEP:
            return settings.asleep
        case _:
            return settings.idle


def backoff(current: timedelta | None, retry_after: float) -> timedelta:
    """Return the interval after a 429: never shorter than Retry-After."""
    wait = timedelta(seconds=max(retry_after, 1.0))
    return wait if current is None else max(current, wait)


def heading_home(
    *,
    distance_km_now: float,
    previous_distance_km: float | None,
    heading: float | None,
    bearing_home: float,
) -> bool:
    """Decide whether a driving car is coming home.

    With an earlier sample from the same trip the distance decides; without one
    the heading must point within HEADING_TOLERANCE_DEG of home.
    """
    if previous_distance_km is not None:
        return distance_km_now < previous_distance_km
    if heading is None:
        return False
    return angle_between(heading, bearing_home) <= HEADING_TOLERANCE_DEG


def is_driving(shift_state: str | None, speed_kmh: float | None) -> bool:
    """Return whether drive_state says the car is on the move."""
    return shift_state in DRIVING_SHIFT_STATES or bool(speed_kmh)
