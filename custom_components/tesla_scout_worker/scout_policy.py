"""The scout's polling policy: pure functions, no Home Assistant, no I/O.

Every Fleet API request is billed, and every ``vehicle_data`` request keeps the
car awake for its ~15 minute sleep timer. The policy therefore checks rarely
while nothing happens (longer than the sleep timer, so the car can fall
asleep between two checks) and often only while the car is driving toward
home, where an arrival is worth catching quickly.

A sleeping car is checked by what the scout learnt of its habits
(scout_habits.py): often where it usually sets off, rarely where it never
does. A state check never reaches the car, so it neither wakes it nor keeps it
awake; only a car found online is asked for its data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
import math

from .geo import angle_between
from .scout_habits import Habits, Place, daytime

HEADING_TOLERANCE_DEG = 60.0
"""A car whose heading is this close to the bearing of home is driving home."""
FALLBACK_SPEED_KMH = 30.0
"""Assumed speed while driving but stopped (traffic light, jam) or unknown."""
MIN_SPEED_KMH = 5.0
DRIVING_SHIFT_STATES = frozenset({"D", "R", "N"})
SHORTEST_WAIT = timedelta(minutes=3)
"""A sleeping car is never checked more often than this."""
DAYTIME_LONGEST_WAIT = timedelta(minutes=30)
"""By day (05:00-22:00) a sleeping car is checked at least this often: a drive
keeps it online for the drive plus its ~15 min sleep timer, and a drive no
check sees online is a departure missed until the car is online again."""
REFERENCE_RATE_PER_HOUR = 1.0
"""The habit interval applies where the car sets off about once an hour."""


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
    habit: timedelta = timedelta(0)
    """Check interval where the car usually sets off about once an hour; 0:
    a sleeping car is checked every ``asleep``, whatever its habits."""

    def __post_init__(self) -> None:
        """Keep the bounds consistent: min <= idle, SHORTEST_WAIT <= habit."""
        if self.driving_min > self.idle:
            object.__setattr__(self, "driving_min", self.idle)
        if timedelta(0) < self.habit < SHORTEST_WAIT:
            object.__setattr__(self, "habit", SHORTEST_WAIT)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one check saw (the inputs of the policy)."""

    state: str
    driving: bool = False
    heading_home: bool = False
    charging: bool = False
    distance_home_km: float | None = None
    speed_kmh: float | None = None
    at_home: bool | None = None


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


def next_interval(
    settings: PollSettings,
    seen: Observation,
    *,
    habits: Habits | None = None,
    now: datetime | None = None,
) -> timedelta:
    """Return how long to wait before the next check.

    * driving toward home: half the ETA, within [driving_min, idle];
    * driving elsewhere, charging or parked online: idle (longer than the car's
      sleep timer, so a parked car can fall asleep between two checks);
    * asleep or offline: by the car's habits (see habit_wait) when they are
      given with the local time ``now`` and the habit interval is set;
      otherwise asleep.
    """
    match activity(seen):
        case Activity.DRIVING_HOME:
            if seen.distance_home_km is None:
                return settings.idle
            half = eta(seen.distance_home_km, seen.speed_kmh) / 2
            return min(max(half, settings.driving_min), settings.idle)
        case Activity.ASLEEP:
            if habits is None or now is None or not settings.habit:
                return settings.asleep
            return habit_wait(settings, habits, _place(seen.at_home), now)
        case _:
            return settings.idle


def _place(at_home: bool | None) -> Place | None:
    if at_home is None:
        return None
    return Place.HOME if at_home else Place.AWAY


def habit_wait(
    settings: PollSettings, habits: Habits, place: Place | None, now: datetime
) -> timedelta:
    """Return when to check a sleeping car again, from its habits.

    A departure seen at the next check was missed for the time since it
    happened; the expected missed time since ``now`` grows as the integral
    of the departure rate. The check is due when that reaches what the habit
    interval accepts where the car sets off once an hour (at a constant rate
    r the wait is habit * sqrt(1/h / r): a quarter of the rate, twice the
    wait). Within [SHORTEST_WAIT, asleep], and by day within
    DAYTIME_LONGEST_WAIT; ``now`` is local time. Where the car is unknown,
    both places' rates count.
    """
    places = tuple(Place) if place is None else (place,)
    reference = settings.habit.total_seconds() / 60
    budget = REFERENCE_RATE_PER_HOUR / 60 * reference**2 / 2
    longest = max(settings.asleep, SHORTEST_WAIT)
    limit = math.ceil(longest.total_seconds() / 60)
    daytime_limit = DAYTIME_LONGEST_WAIT.total_seconds() / 60
    rates: dict[int, float] = {}
    seen_rate = missed = 0.0
    for minute in range(1, limit + 1):
        moment = now + timedelta(minutes=minute - 0.5)
        quarter = int((moment - now).total_seconds() // 60 + now.minute) // 15
        if quarter not in rates:
            rates[quarter] = max(habits.rate(p, moment) for p in places) / 60
        seen_rate += rates[quarter]
        missed += seen_rate
        if missed >= budget or (minute >= daytime_limit and daytime(moment)):
            return max(timedelta(minutes=minute), SHORTEST_WAIT)
    return longest


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
