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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
import math
from typing import Final

from .geo import angle_between
from .scout_habits import Habits, Place

HEADING_TOLERANCE_DEG = 60.0
"""A car whose heading is this close to the bearing of home is driving home."""
FALLBACK_SPEED_KMH = 30.0
"""Assumed speed while driving but stopped (traffic light, jam) or unknown."""
MIN_SPEED_KMH = 5.0
DRIVING_SHIFT_STATES = frozenset({"D", "R", "N"})
SHORTEST_WAIT = timedelta(minutes=3)
"""A sleeping car is never checked more often than this."""
SLEEP_TIMER = timedelta(minutes=15)
"""A parked car stays online this long after a drive before it falls asleep."""
SHORTEST_DRIVE = timedelta(minutes=3)
"""No drive is shorter: a departure keeps the car online at least this plus
SLEEP_TIMER, the window in which a state check still sees it."""
LEAVING_WAIT = timedelta(minutes=3)
"""A car seen driving inside the home zone is leaving: it is checked again
this soon, when it is out of the zone."""
FASTEST_KMH = 100.0
"""A car this far from home (straight line) cannot be home sooner than at this
speed."""
UNSEEN_COST: Final[Mapping[Place, timedelta]] = {
    Place.HOME: timedelta(hours=2),
    Place.AWAY: timedelta(hours=4),
}
"""What a departure no check saw online costs at least: the car is believed
where it is not until it drives again, about the length of the stay that
follows (an errand after leaving home; after coming back, the stay at home,
which unseen_cost learns: a car that comes home in the evening usually stays
the night)."""
FINAL_APPROACH = timedelta(minutes=5)
"""A car driving home this close to its arrival is checked at the ETA, not
at half of it: a check that finds it still on the road sets the next one."""
REFERENCE_RATE_PER_HOUR = 0.7
"""The habit interval applies where the car sets off this often (per hour)."""


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
    stayed_awake: bool = False
    """The previous check, too, found the car parked online at the same place
    (not charging): something keeps it awake (Sentry Mode, climate, ...)."""
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

    * driving toward home: half the ETA, or the ETA itself within
      FINAL_APPROACH of it, within [driving_min, idle] (longer than idle only
      where the car is too far to be home sooner, see home_lead);
    * driving inside the home zone (leaving): LEAVING_WAIT;
    * driving elsewhere: idle, or longer where it is too far to be home sooner;
    * parked online: just after the car's sleep timer (see settle_wait), so
      it can fall asleep first and a drive home or away made meanwhile is
      still seen online; idle if it stayed awake since the previous check;
    * charging: idle (longer than the car's sleep timer);
    * asleep or offline: by the car's habits (see habit_wait) when they are
      given with the local time ``now`` and the habit interval is set;
      otherwise asleep.
    """
    match activity(seen):
        case Activity.DRIVING_HOME:
            if seen.distance_home_km is None:
                return settings.idle
            left = eta(seen.distance_home_km, seen.speed_kmh)
            wait = max(left / 2, min(left, FINAL_APPROACH))
            longest = max(settings.idle, home_lead(seen.distance_home_km))
            return min(max(wait, settings.driving_min), longest)
        case Activity.DRIVING:
            if seen.at_home:
                return LEAVING_WAIT
            return max(settings.idle, home_lead(seen.distance_home_km))
        case Activity.ASLEEP:
            if habits is None or now is None or not settings.habit:
                return settings.asleep
            return habit_wait(
                settings,
                habits,
                _place(seen.at_home),
                now,
                distance_home_km=seen.distance_home_km,
            )
        case Activity.PARKED if not seen.stayed_awake:
            return min(settings.idle, settle_wait(seen.at_home, seen.distance_home_km))
        case _:
            return settings.idle


def settle_wait(at_home: bool | None, distance_home_km: float | None) -> timedelta:
    """Return when to check a car just seen parked online.

    A car that stays falls asleep SLEEP_TIMER after the read (the check then
    costs a state check and keeps nothing awake). A car that sets off stays
    online during its drive and SLEEP_TIMER after it, so a check this soon
    still sees a departure, and an arrival home from away (the drive home is
    at least home_lead of the distance). A longer wait could miss both: a
    car that drives home and falls asleep there in between would be believed
    away until it drives again.
    """
    return SLEEP_TIMER + shortest_drive(
        away=at_home is False, distance_home_km=distance_home_km
    )


def shortest_drive(*, away: bool, distance_home_km: float | None) -> timedelta:
    """Return the shortest drive that can follow a departure.

    SHORTEST_DRIVE; from away, the drive home (home_lead of the distance) if
    that is longer.
    """
    if not away:
        return SHORTEST_DRIVE
    return max(SHORTEST_DRIVE, home_lead(distance_home_km))


def _place(at_home: bool | None) -> Place | None:
    if at_home is None:
        return None
    return Place.HOME if at_home else Place.AWAY


def home_lead(distance_home_km: float | None) -> timedelta:
    """Return the shortest drive home from ``distance_home_km`` (straight line).

    Roads are longer than the straight line and no drive averages more than
    FASTEST_KMH on it, so a car this far away cannot be home sooner.
    """
    if distance_home_km is None:
        return timedelta(0)
    return timedelta(hours=max(distance_home_km, 0.0) / FASTEST_KMH)


def habit_wait(
    settings: PollSettings,
    habits: Habits,
    place: Place | None,
    now: datetime,
    *,
    distance_home_km: float | None = None,
) -> timedelta:
    """Return when to check a sleeping car again, from its habits.

    What matters is where the car is believed to be. A departure from home
    makes that wrong from the moment it happens; a departure from away only
    once the car can be home (after the drive home: SHORTEST_DRIVE, or
    home_lead of ``distance_home_km`` if longer). A check still sees the car
    online, and sets the belief right, until SLEEP_TIMER after that drive; a
    departure older than that is seen only when the car drives again and
    costs unseen_cost.

    The expected cost of the departures since ``now`` (the integral of the
    departure rate times that cost) grows with the wait; the check is due
    when it reaches what the habit interval accepts where the car sets off
    REFERENCE_RATE_PER_HOUR (with a constant rate r and no unseen departures,
    the wait is habit * sqrt(reference / r): a quarter of the rate, twice the
    wait). Where departures are likely, the wait stays within the window in
    which a check still sees them; where they are not (at night, or a car far
    from home), it grows up to ``asleep``. Never shorter than SHORTEST_WAIT;
    ``now`` is local time. Where the car is unknown, both places' rates
    count, at the cost of a departure from home.
    """
    places = tuple(Place) if place is None else (place,)
    reference = settings.habit.total_seconds() / 60
    budget = REFERENCE_RATE_PER_HOUR / 60 * reference**2 / 2
    longest = max(settings.asleep, SHORTEST_WAIT)
    limit = math.ceil(longest.total_seconds() / 60)
    away = place is Place.AWAY
    drive = shortest_drive(away=away, distance_home_km=distance_home_km)
    # Minutes after a departure from which the belief is wrong.
    lead = round(drive.total_seconds() / 60) if away else 0
    window = round((drive + SLEEP_TIMER).total_seconds() / 60)
    # Where the car is not known, nothing is believed wrongly: the cheaper
    # cost, a departure from home's.
    unseen_for = Place.HOME if place is None else place
    unseen = unseen_cost(habits, unseen_for, now).total_seconds() / 60
    rates: dict[int, float] = {}
    # Prefix sums over the minutes k < m of rate_k and k * rate_k: a departure
    # in minute k is (m - k - 0.5) minutes old at a check after m minutes.
    total = [0.0]
    weighted = [0.0]
    for minute in range(1, limit + 1):
        moment = now + timedelta(minutes=minute - 0.5)
        quarter = int((moment - now).total_seconds() // 60 + now.minute) // 15
        if quarter not in rates:
            rates[quarter] = max(habits.rate(p, moment) for p in places) / 60
        rate = rates[quarter]
        total.append(total[-1] + rate)
        weighted.append(weighted[-1] + rate * (minute - 1))
        old = max(minute - window, 0)  # minutes k < old: no longer seen online
        recent = max(minute - lead, old)  # minutes k >= recent: not home yet
        cost = unseen * total[old]
        cost += (minute - 0.5 - lead) * (total[recent] - total[old])
        cost -= weighted[recent] - weighted[old]
        if cost >= budget:
            return max(timedelta(minutes=minute), SHORTEST_WAIT)
    return longest


def unseen_cost(habits: Habits, place: Place, now: datetime) -> timedelta:
    """Return what a departure from ``place`` that no check saw costs.

    The car is believed at ``place`` until it drives again: for the stay at
    the other place that follows. After coming home that is the learnt stay
    at home (the night, after an evening errand). After leaving home it is
    an errand, UNSEEN_COST: where a car is rarely away, the stay away the
    habits would tell is mostly their prior's, which would make every night
    at home costly to watch.
    """
    if place is Place.HOME:
        return UNSEEN_COST[Place.HOME]
    return max(UNSEEN_COST[Place.AWAY], habits.expected_stay(Place.HOME, now))


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

    Coming closer than the earlier sample of a drive says so; so does a
    heading within HEADING_TOLERANCE_DEG of home. The earlier sample may be
    from an earlier drive (the car parked and turned back between two
    checks), so a farther distance alone does not rule it out: a drive home
    taken for one elsewhere is missed, one elsewhere taken for a drive home
    costs a check.
    """
    if previous_distance_km is not None and distance_km_now < previous_distance_km:
        return True
    if heading is None:
        return False
    return angle_between(heading, bearing_home) <= HEADING_TOLERANCE_DEG


def is_driving(shift_state: str | None, speed_kmh: float | None) -> bool:
    """Return whether drive_state says the car is on the move."""
    return shift_state in DRIVING_SHIFT_STATES or bool(speed_kmh)
