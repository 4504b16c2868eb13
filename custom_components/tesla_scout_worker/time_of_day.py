"""Times of day as the car and the options speak them.

Charge schedules and the legacy scheduled charging time are minutes after local
midnight; days of the week are a bitmask when the car reports them (SUN=1 ...
SAT=64) and day names when a schedule is sent.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Final

from homeassistant.util import dt as dt_util

MINUTES_PER_DAY: Final = 24 * 60
ALL_DAYS: Final = 0b1111111
DAY_NAMES: Final = (
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
)


def parse_time_option(value: Any, default: str) -> time:
    """Return the time of day an option holds ("HH:MM[:SS]"), else the default."""
    parsed = dt_util.parse_time(str(value or default))
    if parsed is None:
        parsed = dt_util.parse_time(default)
    if parsed is None:  # pragma: no cover - the defaults are valid times
        raise ValueError(f"not a time of day: {default!r}")
    return parsed


def time_to_minutes(value: Any) -> int:
    """Return minutes after midnight of "HH:MM[:SS]" (or a number of minutes)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) % MINUTES_PER_DAY
    parsed = dt_util.parse_time(str(value))
    if parsed is None:
        raise ValueError(f"not a time of day: {value!r}")
    return parsed.hour * 60 + parsed.minute


def minutes_after_midnight(moment: datetime) -> int:
    """Return local minutes after midnight of ``moment`` (HA's time zone)."""
    local = dt_util.as_local(moment)
    return local.hour * 60 + local.minute


def day_index(moment: datetime) -> int:
    """Return the local day of the week of ``moment`` (Sunday = 0)."""
    return (dt_util.as_local(moment).weekday() + 1) % 7


def day_bit(moment: datetime) -> int:
    """Return the days_of_week bit of the local day (SUN=1, MON=2 ... SAT=64)."""
    return 1 << day_index(moment)


def day_name(moment: datetime) -> str:
    """Return the name of the local day, as a schedule is sent ("Wednesday")."""
    return DAY_NAMES[day_index(moment)]


def is_all_days(value: Any) -> bool:
    """Return whether a schedule's days_of_week means every day."""
    if isinstance(value, str):
        return value.strip().lower() in {"all", "daily", str(ALL_DAYS)}
    return bool(value == ALL_DAYS)
