"""The scout against the simulator: sleep, arrival, triggers, back-off, cost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
import itertools
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker import async_remove_config_entry_device
from custom_components.tesla_scout_worker.const import (
    CONF_ARRIVAL_ENTITIES,
    CONF_ASLEEP_INTERVAL,
    CONF_HABIT_INTERVAL,
    CONF_OFF_PEAK_ACTION,
    CONF_OFF_PEAK_LIMIT,
    CONF_PLUGGED_ENTITY,
    DOMAIN,
)
from custom_components.tesla_scout_worker.coordinator import VehicleCoordinator
from custom_components.tesla_scout_worker.scout_habits import Place
from custom_components.tesla_scout_worker.scout_policy import (
    FINAL_APPROACH,
    SHORTEST_WAIT,
    SLEEP_TIMER,
    habit_wait,
    settle_wait,
)
from custom_components.tesla_scout_worker.vehicle import TeslaVehicle
from custom_components.tesla_scout_worker.vehicle_data import home_zone
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import (
    AccountConfig,
    DayPlan,
    Location,
    SimConfig,
    Simulator,
    VehicleConfig,
)

from .common import (
    billed,
    command_requests,
    find_device,
    press_force_update,
    reauth_flows,
    vehicle_data_calls,
)
from .conftest import ACCOUNT
from .scout_common import (
    AT_WORK,
    CAR,
    HOME,
    VIN,
    WORK,
    advance,
    calls,
    commands,
    state,
)

pytestmark = pytest.mark.usefixtures("scout")

OFF_PEAK = {CONF_OFF_PEAK_ACTION: True, CONF_OFF_PEAK_LIMIT: 70}
OFF_PEAK_START = 22 * 60  # the defaults, 22:00-06:00
OFF_PEAK_END = 6 * 60
SECOND_VIN = "7SAYGDEE0PF000002"
TWO_CARS = SimConfig(
    accounts=[
        AccountConfig(
            vehicles=[
                VehicleConfig(),
                VehicleConfig(vin=SECOND_VIN, display_name="Second car"),
            ]
        )
    ]
)


@pytest.fixture
def options() -> dict[str, Any]:
    """Return the entry's options (tests override)."""
    return {}


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    options: dict[str, Any],
) -> MockConfigEntry:
    """Return the entry set up with the options."""
    hass.config_entries.async_update_entry(config_entry, options=options)
    return await setup_entry()


def coordinator(entry: MockConfigEntry, vin: str = VIN) -> VehicleCoordinator:
    """Return the coordinator of a vehicle."""
    vehicles: dict[str, TeslaVehicle] = entry.runtime_data.vehicles
    return vehicles[vin].coordinator


FIXED_ASLEEP = {CONF_HABIT_INTERVAL: 0, CONF_ASLEEP_INTERVAL: 60}


def expected_wait(entry: MockConfigEntry, vin: str = VIN) -> timedelta:
    """Return what the pure policy says for a sleeping car after its last check."""
    watcher = coordinator(entry, vin)
    data = watcher.data
    assert data.state != "online"
    place = None if data.at_home is None else Place.HOME if data.at_home else Place.AWAY
    wait = habit_wait(
        watcher.settings,
        watcher._habits,
        place,
        dt_util.as_local(data.checked_at),
        distance_home_km=data.distance_home_km,
    )
    assert SHORTEST_WAIT <= wait <= timedelta(hours=3)
    return wait


async def test_asleep_car_is_never_woken(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """A sleeping car gets state checks and nothing else for a day."""
    car = sim.vehicle()
    car.fall_asleep()
    entry = await setup_entry()
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "asleep"

    await advance(hass, freezer, timedelta(hours=23, minutes=59))

    assert car.wake_count == 0
    assert car.state == "asleep"
    assert sim.ledger.counts["wake"] == 0
    assert calls(sim, "wake") == 0
    assert vehicle_data_calls(sim) == 0
    # Nothing learnt yet and the car's place unknown: checks by the assumed
    # habits (the likelier place's), more by day than by night, under a
    # 10-min poll's 144.
    checks = sim.api_requests("state_check")
    assert 24 < len(checks) < 24 * 6 * 0.75
    gaps = [b.time - a.time for a, b in itertools.pairwise(checks)]
    assert min(gaps) >= SHORTEST_WAIT
    assert max(gaps) <= timedelta(hours=3)
    assert coordinator(entry).update_interval == expected_wait(entry)


async def test_without_habits_a_sleeping_car_is_checked_every_asleep_interval(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """With the habit interval 0 the asleep interval is fixed, as it used to be."""
    car = sim.vehicle()
    car.fall_asleep()
    hass.config_entries.async_update_entry(config_entry, options=FIXED_ASLEEP)
    entry = await setup_entry()

    await advance(hass, freezer, timedelta(hours=23, minutes=59))

    assert calls(sim, "wake") == 0
    assert vehicle_data_calls(sim) == 0
    # The account listing at setup, then one check per asleep interval (60 min).
    assert calls(sim, "state_check") == 1 + 23
    assert coordinator(entry).update_interval == timedelta(minutes=60)


async def test_habits_are_learnt_and_kept(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """Two weeks of commuting: checks gather at the usual departures."""
    car = sim.vehicle()
    car.fall_asleep()
    sim.add_daily_plan(None, DayPlan.commuter(), days=15)
    entry = await setup_entry()
    await advance(hass, freezer, timedelta(days=14), step=timedelta(hours=1))
    watcher = coordinator(entry)
    habits = watcher._habits
    assert habits.learnt_hours > 24 * 7
    assert len(car.trips) >= 26
    leaves = dt_util.as_local(car.trips[-2].departed)  # the last one from home
    # Where the scout saw the car rest at night (the fixture's home zone is
    # not where the simulated car sleeps).
    rested = max(Place, key=lambda place: sum(map(sum, habits.stays[place])))
    before = habit_wait(
        watcher.settings, habits, rested, leaves - timedelta(minutes=10)
    )
    night = habit_wait(watcher.settings, habits, rested, leaves - timedelta(hours=6))
    assert before <= timedelta(minutes=30)
    # Two weeks teach little about nights: the prior's small rate still
    # counts, as a departure missed there is believed wrong for hours.
    assert night > before
    assert calls(sim, "wake") == 0


async def test_parked_car_is_left_to_fall_asleep(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
) -> None:
    """No vehicle_data before the car's sleep timer runs out."""
    car = sim.vehicle()
    assert car.state == "online"
    assert vehicle_data_calls(sim) == 1  # the first check: the car was online
    assert calls(sim, "state_check") == 1  # the listing's state was used
    data = coordinator(entry).data
    wait = settle_wait(data.at_home, data.distance_home_km)
    assert coordinator(entry).update_interval == wait
    assert SLEEP_TIMER < wait < timedelta(minutes=30)
    battery = state(hass, f"sensor.{CAR}_battery")

    await advance(hass, freezer, wait - timedelta(minutes=1))
    assert vehicle_data_calls(sim) == 1
    assert calls(sim, "state_check") == 1
    assert car.state == "asleep"
    assert car.asleep_since is not None

    await advance(hass, freezer, timedelta(minutes=2))
    assert calls(sim, "state_check") == 2
    assert vehicle_data_calls(sim) == 1
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "asleep"
    assert state(hass, f"sensor.{CAR}_battery") == battery  # the last value stays
    assert coordinator(entry).update_interval == expected_wait(entry)
    assert car.wake_count == 0


AT_THE_SHOP = SimConfig(
    accounts=[
        AccountConfig(
            vehicles=[VehicleConfig(location=Location(HOME.lat + 0.02, HOME.lon))]
        )
    ]
)  # about 2 km north of home


@pytest.mark.parametrize("sim_config", [AT_THE_SHOP], ids=["at_the_shop"])
async def test_a_short_drive_home_is_seen_before_the_car_sleeps(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
) -> None:
    """A car seen parked near home drives home and parks: still seen arriving.

    It is online for its sleep timer after parking; the check after a parked
    car comes within that (it came after the idle interval, when the car was
    asleep at home and believed away until it drove again).
    """
    car = sim.vehicle()
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "off"
    car.drive_home(timedelta(minutes=5))

    await advance(hass, freezer, timedelta(minutes=5, seconds=30))
    assert car.arrivals
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "off"  # not checked yet
    await advance(hass, freezer, SLEEP_TIMER + timedelta(minutes=1))
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "on"
    assert vehicle_data_calls(sim) == 2
    # The car is left to fall asleep at home.
    await advance(hass, freezer, SLEEP_TIMER + timedelta(minutes=1))
    assert car.state == "asleep"
    assert vehicle_data_calls(sim) == 2
    assert car.wake_count == 0


def schedules_like_off_peak(sim: Simulator) -> list[dict[str, Any]]:
    """Return the car's schedules that match the default off-peak window."""
    return [
        s
        for s in sim.vehicle().charge_schedules
        if s["start_time"] == OFF_PEAK_START
        and s["end_time"] == OFF_PEAK_END
        and s["start_enabled"]
        and s["end_enabled"]
        and s["enabled"]
        and not s["one_time"]
        and s["days_of_week"] == 0b1111111
        and abs(s["latitude"] - HOME.lat) < 1e-6
        and abs(s["longitude"] - HOME.lon) < 1e-6
    ]


@pytest.mark.parametrize("sim_config", [AT_WORK], ids=["at_work"])
@pytest.mark.parametrize("options", [OFF_PEAK])
async def test_arrival_sends_off_peak_action_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
) -> None:
    """Driving home speeds the checks up; at home and plugged in: one action."""
    car = sim.vehicle()
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "off"
    car.drive_home(timedelta(minutes=40), plug_in_on_arrival=True)

    await advance(hass, freezer, timedelta(minutes=31))
    # The check after the car's sleep timer found it driving toward home,
    # as did the one after; the next comes after about half of what is left.
    data = coordinator(entry).data
    assert data.driving
    assert data.heading_home
    interval = coordinator(entry).update_interval
    assert interval is not None
    assert timedelta(minutes=4) < interval < timedelta(minutes=10)
    assert commands(sim) == []

    await advance(hass, freezer, timedelta(minutes=8))
    # A few minutes away: the next check comes at the ETA, not half of it.
    interval = coordinator(entry).update_interval
    assert interval is not None
    assert timedelta(minutes=1) < interval <= FINAL_APPROACH
    assert not car.arrivals
    await advance(hass, freezer, timedelta(minutes=3))
    assert car.arrivals
    assert commands(sim) == ["set_charge_limit", "add_charge_schedule"]
    arrival_seen = max(r.time for r in sim.api_requests("command"))
    assert arrival_seen - car.arrivals[-1] <= timedelta(minutes=1, seconds=1)
    assert car.charge_limit_soc == 70
    assert len(schedules_like_off_peak(sim)) == 1
    assert car.wake_count == 0
    assert state(hass, f"sensor.{CAR}_charge_limit") == "70"
    assert coordinator(entry).update_interval == timedelta(minutes=30)

    # Further checks while the car stays home send nothing again.
    await advance(hass, freezer, timedelta(hours=3), step=timedelta(minutes=5))
    assert len(commands(sim)) == 2

    # The next arrival counts again, but everything is already set. (Checks
    # by the Force update button: the asleep interval could miss the short
    # awake time of a car that does not charge.)
    car.drive_to(WORK, timedelta(minutes=20))
    await advance(hass, freezer, timedelta(minutes=10))
    await press_force_update(hass, CAR)
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "off"
    assert coordinator(entry).data.driving
    assert not coordinator(entry).data.heading_home
    await advance(hass, freezer, timedelta(minutes=15))
    car.drive_home(timedelta(minutes=20), plug_in_on_arrival=True)
    await advance(hass, freezer, timedelta(minutes=21))
    await press_force_update(hass, CAR)
    assert len(car.arrivals) == 2
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "on"
    assert state(hass, f"binary_sensor.{CAR}_plugged_in") == "on"
    assert len(commands(sim)) == 2
    assert sim.ledger.counts["wake"] == 0


@pytest.mark.parametrize("sim_config", [AT_WORK], ids=["at_work"])
@pytest.mark.parametrize("options", [OFF_PEAK])
async def test_arrival_action_skipped_during_session(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
) -> None:
    """A special charging session owns the car: the scout sends nothing."""
    asked: list[str] = []

    def session_active(vin: str) -> bool:
        asked.append(vin)
        return True

    coordinator(entry)._session_active = session_active
    sim.vehicle().drive_home(timedelta(minutes=30), plug_in_on_arrival=True)
    await advance(hass, freezer, timedelta(hours=2), step=timedelta(minutes=1))
    assert sim.vehicle().arrivals
    assert state(hass, f"binary_sensor.{CAR}_plugged_in") == "on"
    assert asked == [VIN]  # asked once per arrival
    assert commands(sim) == []
    assert sim.vehicle().charge_limit_soc == 80


@pytest.mark.parametrize("sim_config", [AT_WORK], ids=["at_work"])
async def test_arrival_action_off_by_default(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
) -> None:
    """Without the option the scout only watches."""
    sim.vehicle().drive_home(timedelta(minutes=30), plug_in_on_arrival=True)
    await advance(hass, freezer, timedelta(hours=1))
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "on"
    assert commands(sim) == []


@pytest.mark.parametrize("sim_config", [AT_WORK], ids=["at_work"])
@pytest.mark.parametrize("options", [OFF_PEAK])
@pytest.mark.parametrize(
    ("command", "failures", "then", "limit", "sent", "attempts"),
    [
        pytest.param(
            "set_charge_limit",
            3,
            timedelta(hours=2),
            80,
            [],
            3,
            id="limit_fails_3x-gives_up",
        ),
        pytest.param(
            "add_charge_schedule",
            1,
            timedelta(minutes=40),
            70,
            ["set_charge_limit", "add_charge_schedule"],
            1,
            id="schedule_fails_1x-next_check_finishes",
        ),
    ],
)
async def test_failed_arrival_action_is_retried(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
    command: str,
    failures: int,
    then: timedelta,
    limit: int,
    sent: list[str],
    attempts: int,
) -> None:
    """A failing command is tried again at the next check, up to three times.

    The car keeps charging (awake), so every idle check sees it; the third
    failure gives up for this arrival.
    """
    sim.faults.fail_next(f"/command/{command}", 503, count=failures)
    sim.vehicle().drive_home(timedelta(minutes=30), plug_in_on_arrival=True)
    await advance(hass, freezer, timedelta(minutes=35))
    assert "trying again at the next check" in caplog.text
    assert sim.vehicle().charge_limit_soc == limit
    assert not schedules_like_off_peak(sim)
    await advance(hass, freezer, then, step=timedelta(minutes=5))
    assert sim.vehicle().charge_limit_soc == limit
    schedules = 1 if "add_charge_schedule" in sent else 0
    assert len(schedules_like_off_peak(sim)) == schedules
    assert commands(sim) == sent  # 5xx answers are not billed, not logged as sent
    statuses = [r.status for r in command_requests(sim, command)]
    assert statuses == [503] * failures + [200] * (command in sent)
    assert coordinator(entry)._arrival_attempts == attempts


TRIGGERS = {
    CONF_ARRIVAL_ENTITIES: ["person.driver", "binary_sensor.gate"],
    CONF_PLUGGED_ENTITY: "sensor.wallbox",
}


@pytest.mark.parametrize("options", [TRIGGERS])
async def test_trigger_entities_check_at_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    options: dict[str, Any],
) -> None:
    """Arrival, departure and plugged-in entities make the scout check at once."""
    hass.states.async_set("person.driver", "not_home")
    hass.states.async_set("binary_sensor.gate", "off")
    hass.states.async_set("sensor.wallbox", "available")
    sim.vehicle().fall_asleep()
    hass.config_entries.async_update_entry(config_entry, options=options)
    entry = await setup_entry()
    checks = calls(sim, "state_check")

    hass.states.async_set("person.driver", "home")
    await hass.async_block_till_done()
    assert calls(sim, "state_check") == checks + 1
    last = sim.api_requests("state_check")[-1]
    assert last.time == dt_util.utcnow()  # within the same tick

    await advance(hass, freezer, timedelta(seconds=15), step=timedelta(seconds=15))
    hass.states.async_set("binary_sensor.gate", "on")
    await hass.async_block_till_done()
    assert calls(sim, "state_check") == checks + 2

    await advance(hass, freezer, timedelta(seconds=15), step=timedelta(seconds=15))
    hass.states.async_set("sensor.wallbox", "charging")
    await hass.async_block_till_done()
    assert calls(sim, "state_check") == checks + 3

    # Leaving home is a departure: one check sees the car leave.
    await advance(hass, freezer, timedelta(seconds=15), step=timedelta(seconds=15))
    hass.states.async_set("person.driver", "not_home")
    await hass.async_block_till_done()
    assert calls(sim, "state_check") == checks + 4

    # Changes that mean neither arriving, leaving nor plugging in cost nothing.
    await advance(hass, freezer, timedelta(seconds=15), step=timedelta(seconds=15))
    hass.states.async_set("person.driver", "Work")
    hass.states.async_set("binary_sensor.gate", "off")
    hass.states.async_set("sensor.wallbox", "unavailable")
    hass.states.async_set("person.driver", "Work", {"changed": True})
    await hass.async_block_till_done()
    assert calls(sim, "state_check") == checks + 4
    assert vehicle_data_calls(sim) == 0
    assert sim.vehicle().wake_count == 0

    # Unloading stops listening.
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.states.async_set("person.driver", "home")
    await hass.async_block_till_done()
    assert calls(sim, "state_check") == checks + 4


async def test_rate_limit_backs_off_to_retry_after(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 429 pushes the next check to Retry-After (2 h here), not sooner."""
    sim.vehicle().fall_asleep()
    hass.config_entries.async_update_entry(config_entry, options=FIXED_ASLEEP)
    entry = await setup_entry()
    sim.config.rate_limits.window = timedelta(hours=2)  # Retry-After: 7200 s
    sim.faults.fail_next(f"/api/1/vehicles/{VIN}", 429)

    await advance(hass, freezer, timedelta(minutes=61))
    assert calls(sim, "state_check") == 2  # listing + the rate-limited check
    assert sim.api_requests("state_check")[-1].status == 429
    assert coordinator(entry).update_interval == timedelta(hours=2)
    assert not coordinator(entry).last_update_success
    assert "Tesla asked to slow down" in caplog.text
    # Still available: the car's last values do not go stale that fast.
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "asleep"
    next_check = dt_util.parse_datetime(state(hass, f"sensor.{CAR}_next_check"))
    assert next_check is not None
    assert next_check - dt_util.utcnow() > timedelta(hours=1, minutes=58)

    await advance(hass, freezer, timedelta(hours=1, minutes=58))
    assert calls(sim, "state_check") == 2
    await advance(hass, freezer, timedelta(minutes=3))
    assert calls(sim, "state_check") == 3
    assert coordinator(entry).last_update_success
    assert coordinator(entry).update_interval == timedelta(minutes=60)
    # The back-off was paid for by the usage counters like any billed call.
    assert entry.runtime_data.usage.counts["state_check"] == 3


async def test_entities_go_stale_after_a_day_without_contact(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unavailable once Tesla's server was unreachable for 24 h; back after."""
    sim.faults.api_status = 503
    await advance(hass, freezer, timedelta(hours=23), step=timedelta(minutes=10))
    assert state(hass, f"sensor.{CAR}_battery") != STATE_UNAVAILABLE
    assert caplog.text.count("Error fetching Sim Model 3 data") == 1  # logged once
    await advance(hass, freezer, timedelta(hours=2), step=timedelta(minutes=10))
    assert state(hass, f"sensor.{CAR}_battery") == STATE_UNAVAILABLE
    assert state(hass, f"button.{CAR}_force_update") != STATE_UNAVAILABLE

    sim.faults.api_status = None
    await advance(hass, freezer, timedelta(minutes=31), step=timedelta(minutes=10))
    assert state(hass, f"sensor.{CAR}_battery") != STATE_UNAVAILABLE
    assert "Fetching Sim Model 3 data recovered" in caplog.text
    assert VIN not in caplog.text


@pytest.mark.parametrize("sim_config", [TWO_CARS], ids=["two_cars"])
async def test_vehicles_come_and_go_with_the_daily_list(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A car added to the account appears within a day; a removed one leaves."""
    owners = sim._owners
    owners[SECOND_VIN] = "someone-else"  # not on this account yet
    entry = await setup_entry()
    assert set(entry.runtime_data.vehicles) == {VIN}
    assert find_device(hass, SECOND_VIN) is None

    owners[SECOND_VIN] = ACCOUNT
    await advance(hass, freezer, timedelta(hours=23), step=timedelta(minutes=30))
    assert set(entry.runtime_data.vehicles) == {VIN}
    lists_before = len([r for r in sim.requests if r.path == "/api/1/vehicles"])
    await advance(hass, freezer, timedelta(hours=1, minutes=1))
    lists = [r for r in sim.requests if r.path == "/api/1/vehicles"]
    assert len(lists) == lists_before + 1  # one listing a day
    assert set(entry.runtime_data.vehicles) == {VIN, SECOND_VIN}
    device = find_device(hass, SECOND_VIN)
    assert device is not None
    assert device.name == "Second car"
    assert device.model == "Model Y"
    # It slept through the day and is not woken to fill its entities.
    assert state(hass, "sensor.second_car_vehicle_state") == "asleep"
    assert state(hass, "sensor.second_car_battery") == "unknown"
    assert sim.vehicle(SECOND_VIN).wake_count == 0
    sim.vehicle(SECOND_VIN).come_online()
    await press_force_update(hass, "second_car")
    assert state(hass, "sensor.second_car_battery") == "50"
    assert state(hass, "device_tracker.second_car_location") == "home"

    # The device of a car still on the account cannot be deleted by hand.
    assert not await async_remove_config_entry_device(hass, entry, device)

    owners[SECOND_VIN] = "someone-else"
    await advance(hass, freezer, timedelta(hours=24), step=timedelta(minutes=30))
    assert set(entry.runtime_data.vehicles) == {VIN}
    assert find_device(hass, SECOND_VIN) is None
    assert entity_registry.async_get("sensor.second_car_battery") is None
    assert hass.states.get("sensor.second_car_battery") is None
    assert find_device(hass, VIN) is not None
    requests = len(sim.api_requests())
    await advance(hass, freezer, timedelta(hours=3), step=timedelta(minutes=30))
    assert all(r.vin != SECOND_VIN for r in sim.api_requests()[requests:])


async def test_stale_devices_removed_at_setup(
    hass: HomeAssistant,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    device_registry: dr.DeviceRegistry,
) -> None:
    """A vehicle that left while HA was down is removed at the next start."""
    gone = device_registry.async_get_or_create(
        config_entry_id=config_entry.entry_id,
        identifiers={(DOMAIN, SECOND_VIN)},
        name="Sold car",
    )
    other = device_registry.async_get_or_create(
        config_entry_id=config_entry.entry_id,
        identifiers={("other", "x")},
        name="Not ours",
    )
    entry = await setup_entry()
    assert device_registry.async_get(gone.id) is None
    assert device_registry.async_get(other.id) is not None
    # Removal by hand: allowed only for vehicles no longer on the account.
    car = find_device(hass, VIN)
    account = find_device(hass, ACCOUNT)
    assert car is not None
    assert account is not None
    assert car.via_device_id == account.id
    assert not await async_remove_config_entry_device(hass, entry, car)
    assert not await async_remove_config_entry_device(hass, entry, account)
    assert not await async_remove_config_entry_device(hass, entry, other)
    sold = dr.DeviceEntry(
        config_entry_id=entry.entry_id,
        # The attrs plugin leaves the set converter's _T unsolved (as in HA itself).
        identifiers={(DOMAIN, SECOND_VIN)},  # type: ignore[arg-type]
    )
    assert await async_remove_config_entry_device(hass, entry, sold)


async def test_relist_failure_is_quiet(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
) -> None:
    """A failed daily listing changes nothing and is tried again the next day."""
    await advance(hass, freezer, timedelta(hours=23, minutes=50))
    sim.faults.api_status = 503
    lists = len([r for r in sim.requests if r.path == "/api/1/vehicles"])
    await advance(hass, freezer, timedelta(minutes=20))
    assert len([r for r in sim.requests if r.path == "/api/1/vehicles"]) == lists + 1
    sim.faults.api_status = None
    assert set(entry.runtime_data.vehicles) == {VIN}
    assert entry.state is ConfigEntryState.LOADED


async def test_polling_disabled_means_no_checks(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """With the system option "polling" off only the setup's calls happen."""
    hass.config_entries.async_update_entry(config_entry, pref_disable_polling=True)
    await setup_entry()
    assert state(hass, f"sensor.{CAR}_next_check") == "unknown"
    before = len(sim.api_requests())
    await advance(hass, freezer, timedelta(hours=25), step=timedelta(hours=1))
    assert len(sim.api_requests()) == before


async def test_commuter_day_costs_far_less_than_fixed_polling(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """A day of commuting: a fraction of the calls of a 10-minute poll."""
    car = sim.vehicle()
    car.fall_asleep()
    sim.add_daily_plan(
        None, DayPlan.commuter(), days=1, plug_in_days=range(7)
    )  # 07:30 to work (25 min), 17:00 home (30 min), plugged in on arrival
    # A fixed hourly check of the sleeping car: the first day, before the
    # scout learnt anything, costs more with habits (the month is benched).
    hass.config_entries.async_update_entry(
        config_entry, options=OFF_PEAK | FIXED_ASLEEP
    )
    entry = await setup_entry()

    await advance(hass, freezer, timedelta(hours=24) - timedelta(minutes=1))

    assert len(car.trips) == 2
    assert car.wake_count == 0
    counts = sim.ledger.counts
    ours = sum(counts.values())

    # Baseline: HA core's fixed poll, every 10 minutes a state check, then
    # vehicle_data whenever the car is online. Its vehicle_data calls (every
    # 10 min < the 15 min sleep timer) keep the car awake from the first
    # drive (07:30) to the end of the day.
    checks = 24 * 6
    awake_ticks = (24 * 60 - (7 * 60 + 30)) // 10
    baseline = checks + awake_ticks
    baseline_cost = baseline * 0.002

    # Measured: 27 state checks, 6 data requests, 2 commands (35) against 243.
    assert ours * 4 < baseline, (ours, baseline)
    assert counts["data"] < 10
    cost = sim.ledger.cost_usd(bill_state_checks=True)
    assert cost * 4 < baseline_cost
    assert counts["wake"] == 0
    # The arrival at home set the off-peak limit and schedule.
    assert commands(sim) == ["set_charge_limit", "add_charge_schedule"]

    # The usage sensors equal the simulator's ledger.
    prefix = "sensor.driver_example_com"
    assert state(hass, f"{prefix}_data_requests_this_month") == str(counts["data"])
    assert state(hass, f"{prefix}_commands_this_month") == str(counts["command"])
    assert state(hass, f"{prefix}_wake_ups_this_month") == str(counts["wake"])
    assert state(hass, f"{prefix}_state_checks_this_month") == str(
        counts["state_check"]
    )
    assert billed(entry.runtime_data.usage.counts) == counts


async def test_car_falling_asleep_between_state_and_data(
    hass: HomeAssistant,
    sim: Simulator,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """A 408 from vehicle_data means asleep: not an error, no wake-up."""
    sim.faults.fail_next("/vehicle_data", 408)
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    assert coordinator(entry).last_update_success
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "asleep"
    assert vehicle_data_calls(sim) == 1  # the 408 is billed
    assert calls(sim, "wake") == 0
    assert coordinator(entry).update_interval == expected_wait(entry)


async def test_rejected_token_starts_reauth(
    hass: HomeAssistant,
    sim: Simulator,
    entry: MockConfigEntry,
) -> None:
    """A refused refresh token is an auth failure, not a vehicle problem."""
    sim.revoke_account(ACCOUNT)
    await coordinator(entry).async_refresh()
    await hass.async_block_till_done()
    assert not coordinator(entry).last_update_success
    assert type(coordinator(entry).last_exception).__name__ == "ConfigEntryAuthFailed"
    assert len(reauth_flows(hass)) == 1


@pytest.mark.parametrize("options", [{"home_zone": "zone.nowhere", **OFF_PEAK}])
async def test_missing_home_zone(
    hass: HomeAssistant, sim: Simulator, entry: MockConfigEntry
) -> None:
    """Without the chosen zone nothing is "at home" and no action is sent."""
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "unknown"
    assert state(hass, f"sensor.{CAR}_distance_from_home") == "unknown"
    assert commands(sim) == []
    # A "zone" without coordinates does not count either.
    hass.states.async_set("input_text.place", "somewhere", {"radius": 100})
    placeless = MockConfigEntry(
        domain=DOMAIN, options={"home_zone": "input_text.place"}
    )
    assert home_zone(hass, placeless.options) is None
    assert home_zone(hass, MockConfigEntry(domain=DOMAIN).options) is not None


COTTAGE = {
    "home_zone": "zone.cottage",
    CONF_ARRIVAL_ENTITIES: ["person.driver"],
    **OFF_PEAK,
}


@pytest.mark.parametrize("sim_config", [AT_WORK], ids=["at_work"])
@pytest.mark.parametrize("options", [COTTAGE])
async def test_other_home_zone(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    options: dict[str, Any],
) -> None:
    """Any zone can be home; people entering it are named by the zone's name."""
    hass.states.async_set(
        "zone.cottage",
        "0",
        {
            "latitude": WORK.lat,
            "longitude": WORK.lon,
            "radius": 200,
            "friendly_name": "Cottage",
        },
    )
    hass.states.async_set("person.driver", "not_home")
    hass.config_entries.async_update_entry(config_entry, options=options)
    await setup_entry()
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "on"
    checks = calls(sim, "state_check")
    hass.states.async_set("person.driver", "Cottage")
    await hass.async_block_till_done()
    assert calls(sim, "state_check") == checks + 1
    # Plugged in at the cottage: the schedule is placed there.
    sim.vehicle().plug_in()
    await advance(hass, freezer, timedelta(seconds=11), step=timedelta(seconds=11))
    await press_force_update(hass, CAR)
    assert commands(sim) == ["set_charge_limit", "add_charge_schedule"]
    placed = sim.vehicle().charge_schedules[0]
    assert abs(placed["latitude"] - WORK.lat) < 1e-6


async def test_thirty_days_of_tokens_and_commuting(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """A month of 8 h tokens while the scout follows a commuting car.

    No Fleet API call ever goes out with an expired token, every refresh is
    the scheduled one (about three a day, one per token lifetime), and the
    car is never woken.
    """
    days = 30
    car = sim.vehicle()
    sim.add_daily_plan(None, DayPlan.commuter(), days=days, plug_in_days=(0, 2, 4))
    entry = await setup_entry()
    tokens = entry.runtime_data.tokens

    await advance(hass, freezer, timedelta(days=days), step=timedelta(minutes=10))

    refreshes = sim.token_requests("refresh_token")
    lifetime_hours = 8
    assert days * 24 / lifetime_hours <= len(refreshes) <= days * 24 / 7.5 + 1
    assert all(r.status == 200 for r in refreshes)
    assert tokens.stats.refresh_count == len(refreshes)
    assert tokens.stats.failed_count == 0
    assert tokens.stats.last_tier == "proactive"
    assert sim.api_requests("data")
    assert not [r for r in sim.api_requests() if r.expired]
    assert car.wake_count == 0
    assert len(car.trips) == 2 * days
