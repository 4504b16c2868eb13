"""Schedule parsing and windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tesla_fleet_sim import ChargeSchedule, Location
from tesla_fleet_sim.schedules import (
    ALL_DAYS,
    FRIDAY,
    MONDAY,
    SATURDAY,
    SUNDAY,
    THURSDAY,
    TUESDAY,
    WEDNESDAY,
    WEEKDAYS,
    WEEKENDS,
    ScheduleBook,
    Window,
    day_bit,
    local_moment,
    parse_days_of_week,
)

WARSAW = ZoneInfo("Europe/Warsaw")
T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("All", ALL_DAYS),
        ("ALL", ALL_DAYS),
        ("Weekdays", WEEKDAYS),
        ("weekdays", WEEKDAYS),
        ("Monday,Friday", MONDAY | FRIDAY),
        ("sun, SAT", SUNDAY | SATURDAY),
        ("Sun,Sunday,Mon,Monday", SUNDAY | MONDAY),
        ("Tues,Tuesday,Wed,Wednesday", TUESDAY | WEDNESDAY),
        ("thurs,Thursday,fri,FRIDAY,sat,saturday", THURSDAY | FRIDAY | SATURDAY),
        (" Thursday ", THURSDAY),
        ("Weekdays,Sat", WEEKDAYS | SATURDAY),
    ],
)
def test_parse_days(value: str, expected: int) -> None:
    """The names tesla-http-proxy accepts, in any case, comma separated."""
    assert parse_days_of_week(value) == expected


@pytest.mark.parametrize(
    "value",
    ["tue", "Thu", "thur", "daily", "weekends", "Funday", "127", "", "Monday;Friday"],
)
def test_parse_days_errors(value: str) -> None:
    """What the proxy refuses: its error names the day."""
    with pytest.raises(ValueError, match="unrecognized day name"):
        parse_days_of_week(value)


def test_day_bits() -> None:
    assert day_bit(date(2025, 3, 2)) == SUNDAY
    assert day_bit(date(2025, 3, 3)) == MONDAY
    assert day_bit(date(2025, 3, 8)) == SATURDAY


def test_local_moment_is_utc() -> None:
    moment = local_moment(date(2025, 3, 3), 22 * 60, WARSAW)
    assert moment == datetime(2025, 3, 3, 21, 0, tzinfo=UTC)
    assert moment.tzinfo is UTC


def test_windows() -> None:
    start, end = T0, T0 + timedelta(hours=2)
    assert Window(start, end).contains(start)
    assert not Window(start, end).contains(end)
    assert not Window(start, None).contains(start)
    assert Window(None, end).contains(end - timedelta(hours=23))
    assert not Window(None, end).contains(end - timedelta(hours=25))
    assert Window(start, None).finished_at == start
    assert Window(None, end).finished_at == end


def test_window_on() -> None:
    wraps = ChargeSchedule(
        id=1, start_enabled=True, start_time=22 * 60, end_enabled=True, end_time=6 * 60
    )
    window = wraps.window_on(date(2025, 3, 3), WARSAW)
    assert window == Window(
        local_moment(date(2025, 3, 3), 22 * 60, WARSAW),
        local_moment(date(2025, 3, 4), 6 * 60, WARSAW),
    )
    assert (
        ChargeSchedule(id=2, days_of_week=0, start_enabled=True).window_on(
            date(2025, 3, 3), WARSAW
        )
        is None
    )
    assert ChargeSchedule(id=3).window_on(date(2025, 3, 3), WARSAW) is None
    assert (
        ChargeSchedule(id=4, days_of_week=WEEKENDS, end_enabled=True).window_on(
            date(2025, 3, 3), WARSAW
        )
        is None
    )


def test_one_time_anchor() -> None:
    schedule = ChargeSchedule(
        id=1, one_time=True, days_of_week=0, start_enabled=True, start_time=13 * 60
    )
    schedule.anchor_one_time(T0, WARSAW)  # 13:00 local: starts right now
    assert schedule.one_time_window == Window(T0, None)
    schedule.anchor_one_time(T0 + timedelta(minutes=1), WARSAW)
    assert schedule.one_time_window == Window(T0 + timedelta(days=1), None)
    never = ChargeSchedule(id=2, one_time=True, start_enabled=False)
    never.anchor_one_time(T0, WARSAW)
    assert never.one_time_window is None
    recurring = ChargeSchedule(id=3, start_enabled=True)
    recurring.anchor_one_time(T0, WARSAW)
    assert recurring.one_time_window is None
    assert list(never.windows_near(T0, WARSAW)) == []


def test_book_queries() -> None:
    book = ScheduleBook(WARSAW)
    assert book.next_event_after(T0) is None
    assert book.events_between(T0, T0) == []
    assert not book.constrains(Location(0, 0), None)
    assert book.may_charge(T0, Location(0, 0), None)
    assert not book.applies(99, Location(0, 0), None)
    book.set_legacy(True, 23 * 60)
    assert book.applies(-1, Location(0, 0), None)
    assert book.next_event_after(T0) == datetime(2025, 3, 3, 22, 0, tzinfo=UTC)
    assert book.next_start_after(T0, Location(0, 0), 1000) == datetime(
        2025, 3, 3, 22, 0, tzinfo=UTC
    )
    assert not book.remove(5)


def test_day_cache_is_bounded() -> None:
    book = ScheduleBook(WARSAW)
    book.put(ChargeSchedule(id=1, start_enabled=True, start_time=60), T0)
    for week in range(20):
        assert book.next_event_after(T0 + timedelta(weeks=week)) is not None
    assert len(book._day_cache) <= 64
