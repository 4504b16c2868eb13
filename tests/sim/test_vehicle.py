"""The car model: sleep, wake, driving, charging and schedules (no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tesla_fleet_sim import (
    DEFAULT_HOME,
    DEFAULT_VIN,
    DEFAULT_WORK,
    AccountConfig,
    ChargeSchedule,
    Location,
    SimClock,
    SimConfig,
    SimulationError,
    Simulator,
    VehicleConfig,
)
from tesla_fleet_sim.geo import distance_km
from tesla_fleet_sim.schedules import WEEKDAYS

from .conftest import START

RATE_PER_HOUR = 11 * 0.9 / 75 * 100  # 13.2 % per hour at 11 kW


WARSAW = ZoneInfo("Europe/Warsaw")


def local(hour: int, minute: int = 0, day: int = 3) -> datetime:
    """A moment in March 2025 given in Warsaw time."""
    return datetime(2025, 3, day, hour, minute, tzinfo=WARSAW).astimezone(UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_defaults(sim: Simulator) -> None:
    car = sim.vehicle()
    assert car.vin == "5YJ3E7EB0KF000001"
    assert car.state == "online"
    assert car.battery_level == 50
    assert car.charge_limit_soc == 80
    assert (car.latitude, car.longitude) == (52.2297, 21.0122)
    assert car.plugged_in is False
    assert car.charging_state == "Disconnected"
    assert car.speed is None
    assert car.shift_state is None
    assert car.heading == 0
    assert car.charger_power == 0
    assert car.charge_amps == 16
    assert car.charge_schedules == []
    assert car.scheduled_charging == {"enabled": False, "time": None}
    assert car.scheduled_departure == {"enable": False}
    assert car.asleep_since is None
    assert car.time == START
    assert 14 < distance_km(DEFAULT_HOME, DEFAULT_WORK) < 16
    assert sim.vehicle(car.vin) is car
    assert sim.vehicles == [car]


def test_falls_asleep_exactly_after_idle(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    clock.advance(minutes(15) - timedelta(seconds=1))
    assert car.state == "online"
    clock.advance(timedelta(seconds=1))
    assert car.state == "asleep"
    assert car.asleep_since == START + minutes(15)
    clock.advance(timedelta(hours=5))
    assert car.awake_seconds == 900
    assert car.sleep_count == 1


def test_activity_keeps_it_awake(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    for _ in range(8):
        clock.advance(minutes(10))
        assert car.note_activity()
    assert car.state == "online"
    assert car.last_activity == START + minutes(80)
    clock.advance(minutes(15))
    assert car.state == "asleep"
    assert car.awake_seconds == 95 * 60
    assert car.note_activity() is False


def test_wake_delay(sim: Simulator, clock: SimClock) -> None:
    """Strict default: asleep for 10-30 s after wake_up, drawn per wake-up."""
    car = sim.vehicle()
    delay = sim.config.wake_delay_for(car.vin, 1)
    assert timedelta(seconds=10) <= delay <= timedelta(seconds=30)
    car.fall_asleep()
    assert car.shift_state is None
    car.request_wake()
    car.request_wake()  # a second request does not extend the delay
    clock.advance(delay - timedelta(seconds=1))
    assert car.state == "asleep"
    clock.advance(timedelta(seconds=1))
    assert car.state == "online"
    assert car.wake_count == 1
    assert car.last_activity == START + delay
    car.request_wake()  # online: only activity
    assert car.wake_count == 1


def test_wake_delays_are_deterministic_per_seed() -> None:
    config = SimConfig()
    delays = [config.wake_delay_for(DEFAULT_VIN, n) for n in range(1, 41)]
    assert delays == [SimConfig().wake_delay_for(DEFAULT_VIN, n) for n in range(1, 41)]
    assert all(timedelta(seconds=10) <= d <= timedelta(seconds=30) for d in delays)
    assert len(set(delays)) > 5  # they vary from one wake-up to the next
    other = SimConfig(seed=7)
    assert delays != [other.wake_delay_for(DEFAULT_VIN, n) for n in range(1, 41)]
    narrow = SimConfig(
        wake_delay_min=timedelta(seconds=12), wake_delay_max=timedelta(seconds=12)
    )
    assert narrow.wake_delay_for(DEFAULT_VIN, 3) == timedelta(seconds=12)
    inverted = SimConfig(
        wake_delay_min=timedelta(seconds=20), wake_delay_max=timedelta(seconds=5)
    )
    assert inverted.wake_delay_for(DEFAULT_VIN, 1) == timedelta(seconds=20)


def test_fixed_wake_delay_is_lenient(clock: SimClock) -> None:
    """A fixed wake_delay (here 10 s) replaces the drawn one."""
    sim = Simulator(SimConfig(wake_delay=timedelta(seconds=10)), clock)
    car = sim.vehicle()
    car.fall_asleep()
    car.request_wake()
    clock.advance(timedelta(seconds=10))
    assert car.state == "online"


def test_zero_wake_delay_wakes_immediately(clock: SimClock) -> None:
    sim = Simulator(SimConfig(wake_delay=timedelta(0)), clock)
    car = sim.vehicle()
    car.fall_asleep()
    car.request_wake()
    assert car.state == "online"


def test_offline_car_ignores_wake(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.go_offline()
    car.request_wake()
    clock.advance(timedelta(hours=1))
    assert car.state == "offline"
    assert car.awake_seconds == 0
    car.come_online()
    assert car.state == "online"
    assert car.self_wake_count == 1


def test_cannot_sleep_while_driving_or_charging(sim: Simulator) -> None:
    car = sim.vehicle()
    car.drive_to_work(minutes(20))
    with pytest.raises(SimulationError):
        car.fall_asleep()
    with pytest.raises(SimulationError):
        car.plug_in()
    with pytest.raises(ValueError, match="positive"):
        car.drive_home(timedelta(0))


def test_drive_interpolates_and_arrives(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.fall_asleep()
    car.drive_to_work(minutes(30))
    assert car.state == "online"
    assert car.shift_state == "D"
    km = distance_km(DEFAULT_HOME, DEFAULT_WORK)
    assert car.speed == pytest.approx(km * 2)
    assert 200 < car.heading < 250  # south-west
    clock.advance(minutes(15))
    assert car.latitude == pytest.approx((DEFAULT_HOME.lat + DEFAULT_WORK.lat) / 2)
    assert car.longitude == pytest.approx((DEFAULT_HOME.lon + DEFAULT_WORK.lon) / 2)
    assert car.is_driving
    used = km * 0.16 / 75 * 100
    assert car.battery_level == pytest.approx(50 - used / 2)
    clock.advance(minutes(15))
    assert car.location == DEFAULT_WORK
    assert car.speed is None
    assert car.shift_state == "P"
    assert car.battery_level == pytest.approx(50 - used)
    assert car.odometer_km == pytest.approx(12345 + km)
    assert car.arrivals == []  # not home
    assert car.trips[-1].arrived == START + minutes(30)
    # Asleep 15 minutes after arriving; awake the whole drive.
    clock.advance(minutes(30))
    assert car.asleep_since == START + minutes(45)
    assert car.awake_seconds == 45 * 60


def test_redirect_mid_drive(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.drive_to_work(minutes(20))
    clock.advance(minutes(10))
    car.drive_home(minutes(10))
    clock.advance(minutes(10))
    assert car.location == DEFAULT_HOME
    assert car.arrivals == [START + minutes(20)]
    km = distance_km(DEFAULT_HOME, DEFAULT_WORK)
    assert car.odometer_km == pytest.approx(12345 + km, rel=1e-3)


def test_battery_does_not_go_negative(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.set_battery(0.5)
    car.drive_to(Location(53.2, 21.0), timedelta(hours=1))
    clock.advance(timedelta(hours=1))
    assert car.battery_level == 0


def test_drive_home_plugs_in_and_charges_to_limit(
    sim: Simulator, clock: SimClock
) -> None:
    car = sim.vehicle()
    car.drive_to_work(minutes(1))  # a short hop so the drive home starts at work
    clock.advance(minutes(1))
    level = car.battery_level
    car.drive_home(minutes(30), plug_in_on_arrival=True)
    clock.advance(minutes(30))
    home_level = car.battery_level
    assert home_level < level
    assert car.plugged_in
    assert car.charging_state == "Charging"
    assert car.charger_power == 11
    arrived = START + minutes(31)
    assert car.arrivals == [arrived]
    hours = (80 - home_level) / RATE_PER_HOUR
    full_at = arrived + timedelta(hours=hours)
    clock.set(full_at - timedelta(seconds=1))
    assert car.charging_state == "Charging"
    assert car.battery_level < 80
    clock.set(full_at + timedelta(seconds=1))
    assert car.charging_state == "Complete"
    assert car.battery_level == 80
    assert car.charge_energy_added == pytest.approx((80 - home_level) * 0.75)
    # Sleeps 15 minutes after the charge ended, not 15 minutes after arrival.
    clock.set(full_at + minutes(14))
    assert car.state == "online"
    clock.set(full_at + minutes(16))
    assert car.state == "asleep"


def test_plugged_in_at_start_charges(clock: SimClock) -> None:
    config = SimConfig(
        accounts=[AccountConfig(vehicles=[VehicleConfig(plugged_in=True)])]
    )
    car = Simulator(config, clock).vehicle()
    assert car.charging_state == "Charging"


def test_unplug_stops_and_wakes(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.plug_in()
    car.plug_in()  # already plugged: nothing changes
    clock.advance(timedelta(hours=1))
    assert car.battery_level == pytest.approx(50 + RATE_PER_HOUR)
    car.unplug()
    car.unplug()
    assert car.charging_state == "Disconnected"
    assert car.charger_power == 0
    clock.advance(minutes(15))
    assert car.state == "asleep"
    car.unplug()
    assert car.state == "asleep"  # not plugged: nothing happened


def test_manual_charge_commands(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    assert car.start_charging() == (False, "not_plugged_in")
    assert car.stop_charging() == (False, "not_charging")
    car.plug_in()
    assert car.start_charging() == (False, "is_charging")
    assert car.stop_charging() == (True, "")
    assert car.charging_state == "Stopped"
    assert car.start_charging() == (True, "")
    car.set_battery(85)
    assert car.charging_state == "Complete"
    assert car.start_charging() == (False, "complete")


def test_charge_limit(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    assert car.set_charge_limit(49) == (False, "invalid charge limit")
    assert car.set_charge_limit(101) == (False, "invalid charge limit")
    assert car.set_charge_limit(80) == (False, "already_set")
    car.plug_in()
    assert car.set_charge_limit(50) == (True, "")
    assert car.charging_state == "Complete"
    assert car.battery_level == 50
    assert car.set_charge_limit(60) == (True, "")  # raising the limit resumes charging
    assert car.charging_state == "Charging"
    clock.advance(timedelta(hours=2))
    assert car.battery_level == 60
    assert car.charging_state == "Complete"


def test_charging_amps(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.plug_in()
    assert car.set_charging_amps(6) == (True, "")
    assert car.charger_power == pytest.approx(6 * 230 * 3 / 1000)
    assert car.set_charging_amps(40) == (True, "")
    assert car.charge_amps == 16
    assert car.set_charging_amps(-1) == (False, "invalid charging amps")
    assert car.set_charging_amps(0) == (True, "")
    clock.advance(timedelta(hours=1))
    assert car.battery_level == 50
    assert car.charging_state == "Charging"


def test_grid_power_cut(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.plug_in()
    car.set_grid_power(False)
    assert car.charging_state == "NoPower"
    clock.advance(minutes(20))
    assert car.state == "asleep"  # no power: nothing keeps it awake
    car.set_grid_power(True)
    assert car.state == "online"
    assert car.charging_state == "Charging"


def test_charge_starting_period(clock: SimClock) -> None:
    sim = Simulator(SimConfig(charge_starting_period=timedelta(seconds=5)), clock)
    car = sim.vehicle()
    car.plug_in()
    assert car.charging_state == "Starting"
    clock.advance(timedelta(seconds=5))
    assert car.charging_state == "Charging"


def schedule(**kwargs: object) -> ChargeSchedule:
    base: dict[str, object] = {
        "id": 0,
        "latitude": DEFAULT_HOME.lat,
        "longitude": DEFAULT_HOME.lon,
    }
    return ChargeSchedule(**(base | kwargs))  # type: ignore[arg-type]


def test_one_time_schedule_starts_and_stops(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    clock.set(local(18))
    car.plug_in()
    assert car.charging_state == "Charging"  # no schedule yet
    ok = car.add_charge_schedule(
        schedule(
            start_enabled=True,
            start_time=22 * 60,
            end_enabled=True,
            end_time=23 * 60,
            one_time=True,
        )
    )
    assert ok == (True, "")
    assert car.charging_state == "Stopped"  # waits for its window
    [stored] = car.charge_schedules
    assert stored["id"] == int(local(18).timestamp())
    level = car.battery_level
    clock.set(local(21, 59))
    assert car.state == "asleep"
    assert car.battery_level == level
    clock.set(local(22))
    assert car.state == "online"  # woke itself to charge
    assert car.self_wake_count == 2  # plugging in woke it too
    assert car.charging_state == "Charging"
    clock.set(local(22, 30))
    assert car.battery_level == pytest.approx(level + RATE_PER_HOUR / 2)
    clock.set(local(23))
    assert car.charging_state == "Stopped"
    assert car.battery_level == pytest.approx(level + RATE_PER_HOUR)
    assert car.charge_schedules == []  # a finished one-time schedule is dropped
    clock.set(local(23, 15))
    assert car.state == "asleep"


def test_one_time_schedule_stops_at_limit(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.set_battery(75)
    clock.set(local(20))
    car.add_charge_schedule(
        schedule(
            start_enabled=True,
            start_time=21 * 60,
            end_enabled=True,
            end_time=2 * 60,
            one_time=True,
        )
    )
    car.plug_in()
    assert car.charging_state == "Stopped"
    clock.set(local(22))
    assert car.charging_state == "Complete"
    assert car.battery_level == 80
    assert len(car.charge_schedules) == 1
    clock.set(local(2, day=4))
    assert car.charge_schedules == []


def test_plug_in_inside_window_charges(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    clock.set(local(22, 30))
    car.add_charge_schedule(
        schedule(
            start_enabled=True, start_time=22 * 60, end_enabled=True, end_time=6 * 60
        )
    )
    car.plug_in()
    assert car.charging_state == "Charging"
    clock.set(local(6, day=4))
    assert car.charging_state == "Complete"


def test_recurring_start_only_schedule(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.add_charge_schedule(
        schedule(start_enabled=True, start_time=60, days_of_week=WEEKDAYS)
    )
    car.plug_in()
    assert car.charging_state == "Stopped"
    clock.set(local(0, 59, day=4))
    assert car.charging_state == "Stopped"
    clock.set(local(1, day=4))
    assert car.charging_state == "Charging"
    clock.set(local(6, day=4))
    assert car.charging_state == "Complete"
    assert len(car.charge_schedules) == 1  # recurring schedules stay


def test_weekend_days_skipped(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    clock.set(local(12, day=8))  # Saturday
    car.add_charge_schedule(
        schedule(start_enabled=True, start_time=13 * 60, days_of_week=WEEKDAYS)
    )
    car.plug_in()
    clock.set(local(14, day=9))  # Sunday afternoon: still waiting
    assert car.charging_state == "Stopped"
    clock.set(local(13, 30, day=10))  # Monday
    assert car.charging_state == "Charging"


def test_end_only_schedule_charges_until_end(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    clock.set(local(20))
    car.add_charge_schedule(schedule(end_enabled=True, end_time=21 * 60))
    car.plug_in()
    assert car.charging_state == "Charging"
    clock.set(local(21))
    assert car.charging_state == "Stopped"
    assert car.battery_level == pytest.approx(50 + RATE_PER_HOUR)


def test_schedule_elsewhere_does_not_apply(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.add_charge_schedule(
        schedule(
            start_enabled=True,
            start_time=60,
            latitude=DEFAULT_WORK.lat,
            longitude=DEFAULT_WORK.lon,
        )
    )
    car.plug_in()
    assert car.charging_state == "Charging"
    car.stop_charging()
    clock.set(local(1, 30, day=4))  # its start passed: ignored away from work
    assert car.charging_state == "Stopped"


def test_schedule_radius_can_be_disabled(clock: SimClock) -> None:
    car = Simulator(SimConfig(schedule_radius_m=None), clock).vehicle()
    car.add_charge_schedule(
        schedule(start_enabled=True, start_time=60, latitude=0, longitude=0)
    )
    car.plug_in()
    assert car.charging_state == "Stopped"


def test_adding_schedule_pauses_and_removing_resumes(
    sim: Simulator, clock: SimClock
) -> None:
    car = sim.vehicle()
    car.plug_in()
    assert car.charging_state == "Charging"
    car.add_charge_schedule(schedule(id=7, start_enabled=True, start_time=120))
    assert car.charging_state == "Stopped"
    assert car.remove_charge_schedule(99) == (False, "schedule not found")
    assert car.remove_charge_schedule(7) == (True, "")
    assert car.charging_state == "Charging"


def test_disabled_schedule_is_ignored(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.add_charge_schedule(
        schedule(id=3, start_enabled=True, start_time=120, enabled=False)
    )
    car.plug_in()
    assert car.charging_state == "Charging"


def test_manual_start_survives_schedule_end(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    clock.set(local(20))
    car.add_charge_schedule(schedule(end_enabled=True, end_time=21 * 60))
    car.plug_in()
    car.stop_charging()
    car.start_charging()
    clock.set(local(21, 30))
    assert car.charging_state == "Charging"


def test_replace_schedule_and_limit(sim: Simulator) -> None:
    car = sim.vehicle()
    for n in range(10):
        assert car.add_charge_schedule(
            schedule(id=n + 1, start_enabled=True, start_time=60)
        ) == (True, "")
    assert car.add_charge_schedule(
        schedule(id=0, start_enabled=True, start_time=60)
    ) == (
        False,
        "too many schedules",
    )
    assert car.add_charge_schedule(
        schedule(id=5, start_enabled=True, start_time=90)
    ) == (True, "")
    assert [s["start_time"] for s in car.charge_schedules if s["id"] == 5] == [90]


def test_new_schedule_ids_are_unique(sim: Simulator) -> None:
    car = sim.vehicle()
    car.add_charge_schedule(schedule(start_enabled=True, start_time=60))
    car.add_charge_schedule(schedule(start_enabled=True, start_time=90))
    ids = [s["id"] for s in car.charge_schedules]
    assert ids[1] == ids[0] + 1


def test_legacy_scheduled_charging(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.set_scheduled_charging(True, 23 * 60)
    assert car.scheduled_charging == {"enabled": True, "time": 23 * 60}
    car.plug_in()
    snap = car.snapshot()
    assert snap.scheduled_charging_pending
    assert snap.scheduled_charging_start == local(23)
    assert snap.scheduled_charging_mode == "StartAt"
    clock.set(local(23))
    assert car.charging_state == "Charging"
    car.set_scheduled_charging(False, None)
    assert car.snapshot().scheduled_charging_mode == "Off"


def test_scheduled_departure_is_stored(sim: Simulator) -> None:
    car = sim.vehicle()
    settings = {
        "enable": True,
        "off_peak_charging_enabled": True,
        "departure_time": 450,
    }
    assert car.set_scheduled_departure(settings) == (True, "")
    assert car.scheduled_departure == settings
    assert car.snapshot().scheduled_charging_mode == "DepartBy"


def test_dst_change_keeps_local_times(clock: SimClock) -> None:
    clock.set(datetime(2025, 3, 29, 12, 0, tzinfo=UTC))
    sim = Simulator(clock=clock)
    car = sim.vehicle()
    car.add_charge_schedule(
        schedule(
            start_enabled=True, start_time=22 * 60, end_enabled=True, end_time=23 * 60
        )
    )
    car.plug_in()
    # 30 March: CEST (UTC+2), so 22:00 local is 20:00 UTC.
    clock.set(datetime(2025, 3, 30, 19, 59, tzinfo=UTC))
    assert car.charging_state == "Stopped"
    clock.set(datetime(2025, 3, 30, 20, 0, tzinfo=UTC))
    assert car.charging_state == "Charging"


def test_to_dict(sim: Simulator, clock: SimClock) -> None:
    car = sim.vehicle()
    car.fall_asleep()
    car.request_wake()
    data = car.to_dict()
    assert data["state"] == "asleep"
    delay = sim.config.wake_delay_for(car.vin, 1)
    assert data["wake_pending_until"] == (START + delay).isoformat()
    assert data["asleep_since"] == START.isoformat()


def test_follow_clock(clock: SimClock) -> None:
    readings = [START]
    sim = Simulator(clock=SimClock.follow(lambda: readings[-1]))
    car = sim.vehicle()
    readings.append(START + minutes(20))
    assert car.state == "asleep"
    readings.append(START)  # the world never runs backwards
    assert car.state == "asleep"
    assert sim.update() == START + minutes(20)
