"""When a car usually sets off: learnt from the scout's own checks, pure.

The scout sees a sleeping car only at its checks. Between two checks it knows
where the car rested (home or away) and whether it was still there at the next
check. From that it learns, per weekday and quarter of an hour of local time,
two numbers for each place:

* ``leaves``: how many times the car set off from there (a departure seen
  between two checks is spread evenly over the time between them, so a
  departure noticed late still counts, only less precisely);
* ``stays``: hours the car was seen resting there.

Their ratio is the car's *hazard* of setting off at that time of the week: the
expected departures per hour while it rests there. The scout's policy
(scout_policy.py) checks a sleeping car more often where the hazard is high and
rarely where it is low (at night, for a commuter). Old knowledge fades with a
half-life of four weeks, so a new routine takes over.

Nothing here knows Home Assistant; times are local wall-clock times (aware
datetimes in the car owner's time zone), so a habit keeps its hour across
daylight-saving changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
import math
from typing import Any, Final

from .geo import distance_km

SLOT_MINUTES: Final = 15
SLOTS_PER_DAY: Final = 24 * 60 // SLOT_MINUTES
DAYS_PER_WEEK: Final = 7
HALF_LIFE_DAYS: Final = 28.0
MAX_SPAN: Final = timedelta(hours=12)
"""A gap between two checks longer than this teaches nothing (downtime)."""
MOVED_KM: Final = 0.3
"""A resting car found this far from where it was seen last has moved."""
KERNEL: Final = (1.0, 2.0, 3.0, 2.0, 1.0)
"""Neighbouring quarters share what they learnt (habits are not punctual)."""
PRIOR_HOURS: Final = 4.0
"""Weight, in hours seen resting, of the prior against what all days taught."""
WEEKDAY_HOURS: Final = 2.0
"""Weight, in hours, of all days' rate against one weekday's own."""
STAY_HORIZON: Final = timedelta(hours=24)
"""expected_stay looks this far ahead."""
DAY_START: Final = 5 * 60
DAY_END: Final = 22 * 60


class Place(StrEnum):
    """Where a resting car is, as far as departures go."""

    HOME = "home"
    AWAY = "away"


PRIOR_RATE: Final[Mapping[Place, tuple[float, float]]] = {
    Place.HOME: (0.15, 0.015),
    Place.AWAY: (0.3, 0.03),
}
"""Departures per hour assumed before anything is learnt: (day, night)."""


@dataclass(frozen=True, slots=True)
class Seen:
    """What one check told about where the car is (local time)."""

    at: datetime
    place: Place | None
    moving: bool = False
    location: tuple[float, float] | None = None


def _grid() -> list[list[float]]:
    return [[0.0] * SLOTS_PER_DAY for _ in range(DAYS_PER_WEEK)]


def _slot(moment: datetime) -> tuple[int, int]:
    return moment.weekday(), (moment.hour * 60 + moment.minute) // SLOT_MINUTES


def _spans(start: datetime, end: datetime) -> Iterator[tuple[int, int, float]]:
    """Split [start, end) into (weekday, slot, hours) pieces of wall-clock time."""
    cursor = start.replace(tzinfo=None)
    stop = end.replace(tzinfo=None)
    while cursor < stop:
        minute = cursor.hour * 60 + cursor.minute
        boundary = cursor.replace(
            minute=minute % 60 // SLOT_MINUTES * SLOT_MINUTES, second=0, microsecond=0
        ) + timedelta(minutes=SLOT_MINUTES)
        piece_end = min(boundary, stop)
        yield (
            cursor.weekday(),
            minute // SLOT_MINUTES,
            (piece_end - cursor).total_seconds() / 3600,
        )
        cursor = piece_end


@dataclass(slots=True)
class Habits:
    """One car's learnt departures and rest hours, per place, weekday and quarter."""

    leaves: dict[Place, list[list[float]]] = field(
        default_factory=lambda: {place: _grid() for place in Place}
    )
    stays: dict[Place, list[list[float]]] = field(
        default_factory=lambda: {place: _grid() for place in Place}
    )
    faded_on: date | None = None

    # --- learning --------------------------------------------------------

    def fade(self, today: date) -> None:
        """Let old knowledge fade (half-life HALF_LIFE_DAYS), once a day."""
        if self.faded_on is None or today <= self.faded_on:
            self.faded_on = today if self.faded_on is None else self.faded_on
            return
        factor = 0.5 ** ((today - self.faded_on).days / HALF_LIFE_DAYS)
        for grids in (self.leaves, self.stays):
            for grid in grids.values():
                for row in grid:
                    row[:] = [value * factor for value in row]
        self.faded_on = today

    def add_stay(self, place: Place, start: datetime, end: datetime) -> None:
        """Count the time from ``start`` to ``end`` as rest at ``place``."""
        grid = self.stays[place]
        for day, slot, hours in _spans(start, end):
            grid[day][slot] += hours

    def add_leave(self, place: Place, earliest: datetime, latest: datetime) -> None:
        """Count a departure from ``place`` between ``earliest`` and ``latest``.

        One departure, spread evenly over the span (its time is not known
        better); the time before it counts as rest at ``place``, by halves.
        """
        if latest <= earliest:
            day, slot = _slot(latest)
            self.leaves[place][day][slot] += 1.0
            return
        total = (latest - earliest).total_seconds() / 3600
        grid, stays = self.leaves[place], self.stays[place]
        for day, slot, hours in _spans(earliest, latest):
            grid[day][slot] += hours / total
            stays[day][slot] += hours / 2

    def learn(self, before: Seen | None, after: Seen) -> None:
        """Learn from two consecutive checks (``before`` may be unknown)."""
        self.fade(after.at.date())
        if before is None or before.moving or before.place is None:
            return
        if not timedelta(0) < after.at - before.at <= MAX_SPAN:
            return
        if left(before, after):
            self.add_leave(before.place, before.at, after.at)
        else:
            self.add_stay(before.place, before.at, after.at)

    # --- what was learnt ----------------------------------------------------

    def rate(self, place: Place, moment: datetime) -> float:
        """Return the expected departures per hour from ``place`` at ``moment``."""
        day, slot = _slot(moment)
        leaves, stays = self.leaves[place], self.stays[place]
        mine_n = mine_h = all_n = all_h = 0.0
        half = len(KERNEL) // 2
        for offset, weight in enumerate(KERNEL, start=-half):
            index = day * SLOTS_PER_DAY + slot + offset
            d, s = divmod(index % (DAYS_PER_WEEK * SLOTS_PER_DAY), SLOTS_PER_DAY)
            mine_n += weight * leaves[d][s]
            mine_h += weight * stays[d][s]
            all_n += weight * sum(row[s] for row in leaves)
            all_h += weight * sum(row[s] for row in stays)
        norm = sum(KERNEL)
        mine_n, mine_h, all_n, all_h = (
            mine_n / norm,
            mine_h / norm,
            all_n / norm,
            all_h / norm,
        )
        day_rate, night_rate = PRIOR_RATE[place]
        prior = day_rate if daytime(moment) else night_rate
        # Rates per quarter (counts and hours of one quarter), then per hour.
        pooled = (all_n + prior * PRIOR_HOURS / 4) / (all_h + PRIOR_HOURS / 4)
        return (mine_n + pooled * WEEKDAY_HOURS / 4) / (mine_h + WEEKDAY_HOURS / 4)

    def expected_stay(self, place: Place, start: datetime) -> timedelta:
        """Return how long a car resting at ``place`` from ``start`` stays there.

        The mean time to its next departure under the learnt hazard, counted
        quarter by quarter up to STAY_HORIZON (a car that arrives home late in
        the evening usually stays the night).
        """
        survival, stay = 1.0, 0.0
        quarter = SLOT_MINUTES / 60
        moment = start
        for _ in range(int(STAY_HORIZON / timedelta(minutes=SLOT_MINUTES))):
            rate = max(self.rate(place, moment), 1e-9)
            leaving = math.exp(-rate * quarter)
            # The time spent in this quarter: the integral of the survival.
            stay += survival * (1 - leaving) / rate
            survival *= leaving
            moment += timedelta(minutes=SLOT_MINUTES)
        return timedelta(hours=stay)

    @property
    def learnt_hours(self) -> float:
        """Hours of rest seen (a measure of how much was learnt)."""
        return sum(sum(map(sum, grid)) for grid in self.stays.values())

    # --- storage ----------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-able form (rounded; sparse rows are kept short)."""
        return {
            "faded_on": None if self.faded_on is None else self.faded_on.isoformat(),
            "leaves": {p.value: _packed(g) for p, g in self.leaves.items()},
            "stays": {p.value: _packed(g) for p, g in self.stays.items()},
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Habits:
        """Rebuild from as_dict(); ValueError or TypeError when unreadable."""
        if not isinstance(raw, Mapping):
            raise TypeError("habits are not a mapping")
        faded = raw.get("faded_on")
        habits = cls(faded_on=None if faded is None else date.fromisoformat(faded))
        for name, grids in (("leaves", habits.leaves), ("stays", habits.stays)):
            stored = raw.get(name, {})
            if not isinstance(stored, Mapping):
                raise TypeError(f"{name} is not a mapping")
            for place in Place:
                if place.value in stored:
                    grids[place] = _unpacked(stored[place.value])
        return habits


def daytime(moment: datetime) -> bool:
    """Whether a local time is in the day (05:00-22:00), when people drive."""
    return DAY_START <= moment.hour * 60 + moment.minute < DAY_END


def left(before: Seen, after: Seen) -> bool:
    """Whether the car set off between two checks (it was resting before)."""
    if after.moving or after.place != before.place:
        return True
    if before.location is None or after.location is None:
        return False
    return distance_km(*before.location, *after.location) > MOVED_KM


def _packed(grid: list[list[float]]) -> list[list[float]]:
    return [[round(value, 4) for value in row] for row in grid]


def _unpacked(raw: Any) -> list[list[float]]:
    if not isinstance(raw, list) or len(raw) != DAYS_PER_WEEK:
        raise ValueError("a habit grid needs 7 days")
    grid = []
    for row in raw:
        if not isinstance(row, list) or len(row) != SLOTS_PER_DAY:
            raise ValueError("a habit day needs 96 quarters")
        grid.append([float(value) for value in row])
    return grid
