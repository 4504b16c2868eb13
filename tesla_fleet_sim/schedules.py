"""Charge schedules: days-of-week bitmasks and their windows in car-local time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from typing import Any
from zoneinfo import ZoneInfo

from .geo import Location, distance_km

SUNDAY, MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY = (
    1 << i for i in range(7)
)
ALL_DAYS = 0b1111111
WEEKDAYS = MONDAY | TUESDAY | WEDNESDAY | THURSDAY | FRIDAY
WEEKENDS = SATURDAY | SUNDAY
MINUTES_PER_DAY = 24 * 60
MAX_SCHEDULES = 10
SEARCH_DAYS_BACK = 2
SEARCH_DAYS_AHEAD = 9

# The names tesla-http-proxy accepts (any case, comma separated).
DAY_NAMES = {
    "SUN": SUNDAY,
    "SUNDAY": SUNDAY,
    "MON": MONDAY,
    "MONDAY": MONDAY,
    "TUES": TUESDAY,
    "TUESDAY": TUESDAY,
    "WED": WEDNESDAY,
    "WEDNESDAY": WEDNESDAY,
    "THURS": THURSDAY,
    "THURSDAY": THURSDAY,
    "FRI": FRIDAY,
    "FRIDAY": FRIDAY,
    "SAT": SATURDAY,
    "SATURDAY": SATURDAY,
    "ALL": ALL_DAYS,
    "WEEKDAYS": WEEKDAYS,
}


def day_bit(day: date) -> int:
    """Return the bit of ``day`` in a days_of_week mask (SUN=1 ... SAT=64)."""
    return 1 << ((day.weekday() + 1) % 7)


def parse_days_of_week(value: str) -> int:
    """Parse day names as tesla-http-proxy does ("Monday,Wed", "All") to a bitmask.

    Raises ValueError("unrecognized day name: ...") for anything else, "tue"
    and "thu" included.
    """
    mask = 0
    for part in value.split(","):
        bit = DAY_NAMES.get(part.strip().upper())
        if bit is None:
            raise ValueError(f"unrecognized day name: {part}")
        mask |= bit
    return mask


def local_moment(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """Return (in UTC) the moment ``minutes`` after local midnight of ``day``."""
    clock_time = time(minutes // 60 % 24, minutes % 60)
    return datetime.combine(day, clock_time, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """One occurrence of a schedule. ``start`` None: end only; ``end`` None: start only."""

    start: datetime | None
    end: datetime | None

    def contains(self, moment: datetime) -> bool:
        """Whether a car plugged in at ``moment`` may charge in this window."""
        if self.end is None:
            return False  # start-only windows need their start trigger
        begin = self.start if self.start is not None else self.end - timedelta(days=1)
        return begin <= moment < self.end

    @property
    def finished_at(self) -> datetime:
        """When the occurrence is over (a one-time schedule is dropped then)."""
        moment = self.end if self.end is not None else self.start
        assert moment is not None  # noqa: S101 - a window has a start or an end
        return moment


@dataclass(slots=True)
class ChargeSchedule:
    """A charge schedule as stored by the car (add_charge_schedule)."""

    id: int
    days_of_week: int = ALL_DAYS
    enabled: bool = True
    start_enabled: bool = False
    start_time: int = 0
    end_enabled: bool = False
    end_time: int = 0
    one_time: bool = False
    latitude: float = 0.0
    longitude: float = 0.0
    name: str = ""
    one_time_window: Window | None = (
        None  # the single occurrence of a one-time schedule
    )

    @property
    def location(self) -> Location:
        """Where the schedule applies."""
        return Location(self.latitude, self.longitude)

    def to_api(self) -> dict[str, Any]:
        """Return the schedule as charge_schedule_data lists it."""
        return {
            "id": self.id,
            "name": self.name,
            "days_of_week": self.days_of_week,
            "start_enabled": self.start_enabled,
            "start_time": self.start_time,
            "end_enabled": self.end_enabled,
            "end_time": self.end_time,
            "one_time": self.one_time,
            "enabled": self.enabled,
            "latitude": self.latitude,
            "longitude": self.longitude,
        }

    def window_on(self, day: date, tz: ZoneInfo) -> Window | None:
        """Return the occurrence starting on local ``day`` (None if not that day)."""
        days = (self.days_of_week or ALL_DAYS) if self.one_time else self.days_of_week
        if not days & day_bit(day) or not (self.start_enabled or self.end_enabled):
            return None
        start = local_moment(day, self.start_time, tz) if self.start_enabled else None
        end = None
        if self.end_enabled:
            wraps = self.start_enabled and self.end_time <= self.start_time
            end = local_moment(day + timedelta(days=int(wraps)), self.end_time, tz)
        return Window(start, end)

    def windows_near(self, moment: datetime, tz: ZoneInfo) -> Iterator[Window]:
        """Yield the occurrences around ``moment`` (a few days back, a week ahead)."""
        if self.one_time:
            if self.one_time_window is not None:
                yield self.one_time_window
            return
        today = moment.astimezone(tz).date()
        for offset in range(-SEARCH_DAYS_BACK, SEARCH_DAYS_AHEAD):
            window = self.window_on(today + timedelta(days=offset), tz)
            if window is not None:
                yield window

    def anchor_one_time(self, created: datetime, tz: ZoneInfo) -> None:
        """Fix the single occurrence of a one-time schedule: the first not yet over."""
        self.one_time_window = None
        if not self.one_time:
            return
        today = created.astimezone(tz).date()
        for offset in range(-1, SEARCH_DAYS_AHEAD):
            window = self.window_on(today + timedelta(days=offset), tz)
            if window is not None and _still_ahead(window, created):
                self.one_time_window = window
                return


def _still_ahead(window: Window, moment: datetime) -> bool:
    if window.end is not None:
        return window.end > moment
    assert window.start is not None  # noqa: S101 - a window has a start or an end
    return window.start >= moment


LEGACY_SCHEDULE_ID = -1  # the legacy set_scheduled_charging "StartAt" time
DAY_CACHE_SIZE = 64


class EventKind(IntEnum):
    """What happens at a schedule event; the value orders events at one instant."""

    END = 0
    START = 1
    REMOVE = 2


@dataclass(frozen=True, slots=True, order=True)
class ScheduleEvent:
    """A moment where a schedule starts or ends charging, or is dropped."""

    at: datetime
    kind: EventKind
    schedule_id: int


class ScheduleBook:
    """The car's charge schedules plus the legacy scheduled-charging time."""

    def __init__(self, tz: ZoneInfo) -> None:
        """Start empty; ``tz`` is the car's timezone."""
        self.tz = tz
        self.schedules: list[ChargeSchedule] = []
        self.legacy_enabled = False
        self.legacy_time: int | None = None
        self._day_cache: dict[date, list[ScheduleEvent]] = {}
        self._one_time_events: list[ScheduleEvent] = []

    # --- edits -----------------------------------------------------------

    def get(self, schedule_id: int) -> ChargeSchedule | None:
        """Return the schedule with ``schedule_id``."""
        return next((s for s in self.schedules if s.id == schedule_id), None)

    def put(self, schedule: ChargeSchedule, now: datetime) -> None:
        """Add a schedule, replacing one with the same id."""
        schedule.anchor_one_time(now, self.tz)
        self.schedules = [s for s in self.schedules if s.id != schedule.id]
        self.schedules.append(schedule)
        self._changed()

    def remove(self, schedule_id: int) -> bool:
        """Drop a schedule; False when there is none with that id."""
        kept = [s for s in self.schedules if s.id != schedule_id]
        found = len(kept) != len(self.schedules)
        self.schedules = kept
        self._changed()
        return found

    def set_legacy(self, enabled: bool, minutes: int | None) -> None:
        """Set the legacy daily start time (minutes after local midnight)."""
        self.legacy_enabled = enabled
        self.legacy_time = minutes
        self._changed()

    def _changed(self) -> None:
        self._day_cache.clear()
        self._one_time_events = sorted(
            event
            for schedule in self.schedules
            if schedule.one_time and schedule.one_time_window is not None
            for event in _window_events(schedule, schedule.one_time_window, True)
        )

    # --- queries ---------------------------------------------------------

    def applicable(
        self, here: Location, radius_m: float | None
    ) -> list[ChargeSchedule]:
        """Return the enabled schedules that apply where the car is."""
        return [s for s in self.schedules if s.enabled and _near(s, here, radius_m)]

    def applies(self, schedule_id: int, here: Location, radius_m: float | None) -> bool:
        """Whether an event of ``schedule_id`` concerns a car at ``here``."""
        if schedule_id == LEGACY_SCHEDULE_ID:
            return self.legacy_enabled
        schedule = self.get(schedule_id)
        return (
            schedule is not None
            and schedule.enabled
            and _near(schedule, here, radius_m)
        )

    def constrains(self, here: Location, radius_m: float | None) -> bool:
        """Whether charging waits for schedules (else it starts on plug-in)."""
        return self.legacy_enabled or bool(self.applicable(here, radius_m))

    def may_charge(
        self, moment: datetime, here: Location, radius_m: float | None
    ) -> bool:
        """Whether a car plugged in now may start charging right away."""
        if not self.constrains(here, radius_m):
            return True
        return any(
            window.contains(moment)
            for schedule in self.applicable(here, radius_m)
            for window in schedule.windows_near(moment, self.tz)
        )

    def events_between(self, low: datetime, high: datetime) -> list[ScheduleEvent]:
        """Events with ``low < at <= high``, in order."""
        if high <= low:
            return []
        return sorted(e for e in self._events_around(low, high) if low < e.at <= high)

    def next_event_after(self, moment: datetime) -> datetime | None:
        """Return the first event strictly after ``moment``."""
        horizon = moment + timedelta(days=SEARCH_DAYS_AHEAD - 1)
        return min(
            (e.at for e in self._events_around(moment, horizon) if e.at > moment),
            default=None,
        )

    def next_start_after(
        self, moment: datetime, here: Location, radius_m: float | None
    ) -> datetime | None:
        """Return the next moment a schedule that applies here starts charging."""
        horizon = moment + timedelta(days=SEARCH_DAYS_AHEAD - 1)
        return min(
            (
                e.at
                for e in self._events_around(moment, horizon)
                if e.kind is EventKind.START
                and e.at > moment
                and self.applies(e.schedule_id, here, radius_m)
            ),
            default=None,
        )

    def _events_around(self, low: datetime, high: datetime) -> Iterator[ScheduleEvent]:
        first = low.astimezone(self.tz).date() - timedelta(days=1)
        last = high.astimezone(self.tz).date()
        day = first
        while day <= last:
            yield from self._events_of_day(day)
            day += timedelta(days=1)
        yield from self._one_time_events

    def _events_of_day(self, day: date) -> list[ScheduleEvent]:
        cached = self._day_cache.get(day)
        if cached is not None:
            return cached
        events: list[ScheduleEvent] = []
        for schedule in self.schedules:
            window = None if schedule.one_time else schedule.window_on(day, self.tz)
            if window is not None:
                events.extend(_window_events(schedule, window, False))
        if self.legacy_enabled and self.legacy_time is not None:
            moment = local_moment(day, self.legacy_time, self.tz)
            events.append(ScheduleEvent(moment, EventKind.START, LEGACY_SCHEDULE_ID))
        if len(self._day_cache) >= DAY_CACHE_SIZE:
            self._day_cache.clear()
        self._day_cache[day] = events
        return events


def _window_events(
    schedule: ChargeSchedule, window: Window, one_time: bool
) -> list[ScheduleEvent]:
    events = []
    if schedule.enabled and window.start is not None:
        events.append(ScheduleEvent(window.start, EventKind.START, schedule.id))
    if schedule.enabled and window.end is not None:
        events.append(ScheduleEvent(window.end, EventKind.END, schedule.id))
    if one_time:
        events.append(ScheduleEvent(window.finished_at, EventKind.REMOVE, schedule.id))
    return events


def _near(schedule: ChargeSchedule, here: Location, radius_m: float | None) -> bool:
    if radius_m is None:
        return True
    return distance_km(schedule.location, here) * 1000 <= radius_m
