"""Scripted events and day plans over simulated weeks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
import time
from zoneinfo import ZoneInfo

import pytest

from tesla_fleet_sim import (
    DEFAULT_HOME,
    DEFAULT_WORK,
    ChargeSchedule,
    DayPlan,
    Location,
    PlanStep,
    SimClock,
    Simulator,
    SimVehicle,
)

WARSAW = ZoneInfo("Europe/Warsaw")
MONDAY = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # 01:00 in Warsaw


def warsaw(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=WARSAW).astimezone(UTC)


def test_commuter_week_runs_fast_with_right_arrivals() -> None:
    clock = SimClock.manual(MONDAY)
    sim = Simulator(clock=clock)
    started = time.perf_counter()
    count = sim.add_daily_plan(None, DayPlan.commuter(), days=7, plug_in_days={0, 2, 4})
    assert count == 14
    # Poll like a careless integration: every 10 minutes, all week.
    car = sim.vehicle()
    end = MONDAY + timedelta(days=7)
    while clock.now() < end:
        clock.advance(timedelta(minutes=10))
        if car.state == "online":
            car.note_activity()
    elapsed = time.perf_counter() - started
    assert elapsed < 2
    assert car.arrivals == [warsaw(day, 17, 30) for day in range(3, 10)]
    assert len(car.trips) == 14
    assert sim.pending_events == 0
    assert sim.event_errors == []
    assert car.location == DEFAULT_HOME


def test_plug_in_days_charge_on_those_nights() -> None:
    clock = SimClock.manual(MONDAY)
    sim = Simulator(clock=clock)
    car = sim.vehicle()
    sim.add_daily_plan(car.vin, DayPlan.commuter(), days=3, plug_in_days={0})
    clock.set(warsaw(3, 17, 31))
    # Read into a local: asserting on car.plugged_in would narrow it to True
    # for mypy, and the later "not plugged in" checks would look unreachable.
    plugged_on_arrival: bool = car.plugged_in
    assert plugged_on_arrival
    assert car.charging_state == "Charging"
    clock.set(warsaw(4, 7, 29))
    assert car.charging_state == "Complete"
    assert car.battery_level == 80
    clock.set(warsaw(4, 7, 31))
    assert not car.plugged_in  # unplugged when it left
    clock.set(warsaw(4, 17, 31))
    assert not car.plugged_in  # Tuesday is not a plug-in day
    # The car slept between the drives.
    assert car.sleep_count >= 4


def test_events_run_at_exact_times_without_requests() -> None:
    clock = SimClock.manual(MONDAY)
    sim = Simulator(clock=clock)
    car = sim.vehicle()
    sim.add_daily_plan(None, DayPlan.commuter(), days=30, plug_in_days={0, 2, 4})
    started = time.perf_counter()
    clock.advance(timedelta(days=30))
    assert sim.update() == MONDAY + timedelta(days=30)
    assert time.perf_counter() - started < 2
    assert len(car.arrivals) == 30
    # Awake: drives, 15 minutes after each arrival, plus charging nights.
    assert 30 * 3600 < car.awake_seconds < 200 * 3600


def test_month_with_night_schedule() -> None:
    clock = SimClock.manual(MONDAY)
    sim = Simulator(clock=clock)
    car = sim.vehicle()
    car.add_charge_schedule(
        ChargeSchedule(
            id=0,
            start_enabled=True,
            start_time=23 * 60,
            end_enabled=True,
            end_time=5 * 60,
            latitude=DEFAULT_HOME.lat,
            longitude=DEFAULT_HOME.lon,
        )
    )
    sim.add_daily_plan(None, DayPlan.commuter(), days=30, plug_in_days={0, 2, 4})
    clock.set(warsaw(3, 22, 59))
    assert car.charging_state == "Stopped"
    clock.set(warsaw(3, 23, 1))
    assert car.charging_state == "Charging"
    clock.advance(timedelta(days=29))
    assert len(car.arrivals) == 30
    assert 20 < car.battery_level <= 80


def test_weekdays_and_start_and_custom_steps() -> None:
    clock = SimClock.manual(MONDAY)
    sim = Simulator(clock=clock)
    shop = Location(52.25, 21.05)
    plan = DayPlan.of(
        ("09:00", "drive_to", 10, shop),
        PlanStep("10:00", "drive_home", 10, plug_in=True),
        ("12:00", "unplug"),
    )
    count = sim.add_daily_plan(
        None, plan, days=7, start=date(2025, 3, 8), weekdays={5, 6}
    )
    assert count == 6
    clock.set(warsaw(8, 9, 5))
    car = sim.vehicle()
    assert car.is_driving
    clock.set(warsaw(8, 10, 30))
    assert car.plugged_in
    clock.set(warsaw(8, 12, 0))
    assert not car.plugged_in


def test_past_steps_are_skipped() -> None:
    clock = SimClock.manual(warsaw(3, 12))
    sim = Simulator(clock=clock)
    assert sim.add_daily_plan(None, DayPlan.commuter(), days=1) == 1


def test_schedule_event_callable_and_errors() -> None:
    clock = SimClock.manual(MONDAY)
    sim = Simulator(clock=clock)
    seen: list[datetime] = []

    def note(car: SimVehicle, label: str) -> None:
        seen.append(car.time)
        assert label == "x"

    sim.schedule_event(MONDAY + timedelta(hours=2), note, label="x")
    sim.schedule_event(MONDAY + timedelta(hours=1), "plug_in")
    sim.schedule_event(MONDAY + timedelta(hours=3), "plug_in")  # driving then: fails
    sim.schedule_event(
        MONDAY + timedelta(hours=2, minutes=50),
        "drive_to_work",
        duration=timedelta(minutes=30),
    )
    with pytest.raises(ValueError, match="unknown action"):
        sim.schedule_event(MONDAY, "explode")
    clock.advance(timedelta(hours=4))
    sim.update()
    assert seen == [MONDAY + timedelta(hours=2)]
    assert len(sim.event_errors) == 1
    assert "plug_in" in sim.event_errors[0]
    assert sim.vehicle().location == DEFAULT_WORK


def test_event_in_the_past_runs_now() -> None:
    clock = SimClock.manual(MONDAY)
    sim = Simulator(clock=clock)
    sim.schedule_event(MONDAY - timedelta(hours=1), "fall_asleep")
    assert sim.vehicle().state == "asleep"
    assert sim.vehicle().asleep_since == MONDAY


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("7:3", "plug_in"), "format"),
        (("07:30", "fly"), "unknown plan action"),
        (("07:30", "drive_home"), "needs minutes"),
        (("07:30", "drive_to", 10), "destination"),
    ],
)
def test_plan_step_validation(
    args: tuple[str, str] | tuple[str, str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PlanStep(*args)
