"""The scout's memory: what it knew about a car survives a restart.

A car seen at 17:00 (at home, plugged in, 41 %) falls asleep; Home Assistant
restarts while it sleeps. Entities, planning and the off-peak action then
work from what the scout remembered, without a request to the car.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
import json
from typing import Any, cast

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.const import (
    CONF_BATTERY_CAPACITY,
    CONF_OFF_PEAK_ACTION,
    CONF_OFF_PEAK_LIMIT,
    DOMAIN,
)
from custom_components.tesla_scout_worker.plan_inputs import (
    SOC_MARGIN_MAX,
    conservative_soc,
    soc_margin,
)
from custom_components.tesla_scout_worker.scout_habits import Habits, Place
from custom_components.tesla_scout_worker.scout_memory import (
    recalled,
    remembered,
    storage_key,
)
from custom_components.tesla_scout_worker.vehicle_data import HomeZone
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
from homeassistant.util.json import JsonObjectType
from tesla_fleet_sim import AccountConfig, SimClock, SimConfig, Simulator, VehicleConfig
from tesla_fleet_sim.schedules import ChargeSchedule

from .common import (
    advance_to,
    commands,
    device_id,
    plan_special_charging,
    press_force_update,
    vehicle_data_calls,
)
from .scout_common import CAR, HOME, TIME_ZONE, VIN, prepare_home, state

WARSAW = dt_util.get_time_zone(TIME_ZONE)
assert WARSAW is not None


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a Warsaw time in January 2027 (day 13 is a Wednesday)."""
    return datetime(2027, 1, day, hour, minute, tzinfo=WARSAW)


SEEN = local(13, 17)  # the car's last answer before it fell asleep
RESTART = local(13, 20, 30)
PLAN_AT = local(13, 21)
READY_BY = local(14, 7)
OFF_PEAK = {CONF_OFF_PEAK_ACTION: True, CONF_OFF_PEAK_LIMIT: 70}


@pytest.fixture
def scout_polling() -> bool:
    """The scout polls on its own, as for users."""
    return True


@pytest.fixture
async def home(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """17:00 in the car's time zone, zone.home at its home."""
    await prepare_home(hass, freezer, SEEN)


@pytest.fixture
def sim(home: None) -> Simulator:
    """A car at home at 41 %, limit 80 %, 74.3 kWh."""
    car = VehicleConfig(battery_level=41, battery_capacity_kwh=74.3)
    config = SimConfig(accounts=[AccountConfig(vehicles=[car])])
    return Simulator(config, clock=SimClock.follow(dt_util.utcnow))


@pytest.fixture
def options() -> dict[str, Any]:
    """Return the entry's options (tests override)."""
    return {CONF_BATTERY_CAPACITY: 74.3}


@pytest.fixture
def entry(
    hass: HomeAssistant, config_entry: MockConfigEntry, options: dict[str, Any]
) -> MockConfigEntry:
    """The entry with its options, not yet set up."""
    hass.config_entries.async_update_entry(config_entry, options=options)
    return config_entry


def plug_in_waiting_for_night(sim: Simulator) -> None:
    """Plug the car in with a repeating 22:00-06:00 schedule: it waits (Stopped)."""
    car = sim.vehicle()
    car.add_charge_schedule(
        ChargeSchedule(
            id=7,
            start_enabled=True,
            start_time=22 * 60,
            end_enabled=True,
            end_time=6 * 60,
            latitude=HOME.lat,
            longitude=HOME.lon,
            name="Night",
        )
    )
    car.plug_in()
    assert car.charging_state == "Stopped"


async def restart(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    entry: MockConfigEntry,
    at: datetime,
) -> None:
    """Stop Home Assistant's entry, let time pass, start it again."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    freezer.move_to(at)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED


async def seen_then_asleep(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> MockConfigEntry:
    """Set up at 17:00 with the car online; it falls asleep and is seen asleep."""
    entry = await setup_entry()
    assert state(hass, f"sensor.{CAR}_battery") == "41"
    sim.vehicle().fall_asleep()
    await advance_to(hass, freezer, SEEN + timedelta(minutes=31))
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "asleep"
    return entry


def stored_memory(hass_storage: dict[str, Any], entry: MockConfigEntry) -> Any:
    """Return the scout's store of the entry."""
    return hass_storage[storage_key(entry.entry_id)]


def plan(hass: HomeAssistant, **data: Any) -> Awaitable[dict[str, Any]]:
    """Plan the car to 90 % by 07:00 off-peak (``data`` overrides)."""
    return plan_special_charging(
        hass,
        **{
            "device_id": device_id(hass, VIN),
            "target_soc": 90,
            "ready_by": READY_BY,
            "mode": "off_peak",
            **data,
        },
    )


async def test_restart_with_sleeping_car_keeps_what_the_scout_knew(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    hass_storage: dict[str, Any],
) -> None:
    """Issue 16: planned at 21:00 for a car asleep since 17:00, after a restart.

    Entities show the last values at once, planning uses the remembered level
    and nothing but the state check reaches Tesla: no vehicle_data, no wake-up.
    """
    plug_in_waiting_for_night(sim)
    await seen_then_asleep(hass, freezer, sim, setup_entry)
    requests = len(sim.api_requests())

    await restart(hass, freezer, entry, RESTART)

    car = sim.vehicle()
    assert car.state == "asleep"
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "asleep"
    assert state(hass, f"sensor.{CAR}_battery") == "41"
    assert state(hass, f"sensor.{CAR}_charge_limit") == "80"
    assert state(hass, f"sensor.{CAR}_charging_state") == "stopped"
    assert state(hass, f"binary_sensor.{CAR}_plugged_in") == "on"
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "on"
    assert state(hass, f"binary_sensor.{CAR}_charging") == "off"
    assert state(hass, f"device_tracker.{CAR}_location") == "home"
    assert state(hass, f"sensor.{CAR}_distance_from_home") == "0.0"
    data = entry.runtime_data.vehicles[VIN].coordinator.data
    assert data.fetched_at == SEEN  # when the car said it
    assert data.checked_at == RESTART  # the first check after the restart
    assert not data.fresh
    assert not data.restored  # the first check's data, built on the memory
    assert data.charge_schedule_data["charge_schedules"][0]["id"] == 7

    await advance_to(hass, freezer, PLAN_AT)
    response = await plan(hass)

    assert response["state"] == "scheduled"
    assert response["soc_seen"] == 41
    assert response["soc_used"] == 41  # 4 hours old: no margin yet
    assert dt_util.parse_datetime(response["soc_as_of"]) == SEEN
    assert response["soc_as_of"] == SEEN.isoformat()  # local time, like the plan
    assert response["soc_age_hours"] == 4.0
    assert response["plan"]["soc_used"] == 41
    after = sim.api_requests()[requests:]
    assert {r.category for r in after} == {"state_check"}
    assert sim.api_requests("wake") == []
    assert car.wake_count == 0

    attributes = hass.states.get(f"sensor.{CAR}_special_charging")
    assert attributes is not None
    assert attributes.attributes["soc_used"] == 41
    assert attributes.attributes["soc_as_of"] == SEEN.isoformat()
    listed = await hass.services.async_call(
        DOMAIN, "list_sessions", {}, blocking=True, return_response=True
    )
    assert listed is not None
    (session,) = cast("list[JsonObjectType]", listed["sessions"])
    assert session["soc_as_of"] == SEEN.isoformat()
    assert VIN not in json.dumps(listed)


async def test_stale_level_is_planned_from_conservatively(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """Seen 18 h ago: 2 % (1 % per started 12 h) less, and the plan says so."""
    await seen_then_asleep(hass, freezer, sim, setup_entry)
    await restart(hass, freezer, entry, RESTART)
    # A second restart the next morning: still the level seen at 17:00.
    await restart(hass, freezer, entry, local(14, 11))
    assert state(hass, f"sensor.{CAR}_battery") == "41"

    response = await plan(hass, ready_by=local(15, 7))

    assert response["soc_seen"] == 41
    assert response["soc_used"] == 39
    assert response["soc_as_of"] == SEEN.isoformat()
    assert response["soc_age_hours"] == 18.0
    assert response["plan"]["soc_used"] == 39
    # The plan charges from 39 %: 51 % of 74.3 kWh at 90 % efficiency, 11 kW.
    assert response["plan"]["energy_kwh"] == pytest.approx(0.51 * 74.3 / 0.9)
    sensor = hass.states.get(f"sensor.{CAR}_special_charging")
    assert sensor is not None
    assert sensor.attributes["soc_used"] == 39
    assert vehicle_data_calls(sim) == 1  # 17:00 only
    assert sim.api_requests("wake") == []


@pytest.mark.parametrize(
    ("age", "margin"),
    [
        (timedelta(0), 0.0),
        (timedelta(hours=6), 0.0),
        (timedelta(hours=6, minutes=1), 1.0),
        (timedelta(hours=12), 1.0),
        (timedelta(hours=12, minutes=1), 2.0),
        (timedelta(hours=30), 3.0),
        (timedelta(days=30), SOC_MARGIN_MAX),
        (timedelta(hours=-1), 0.0),
    ],
)
def test_soc_margin_grows_with_age(age: timedelta, margin: float) -> None:
    """Nothing under 6 h; then 1 % per started 12 h, at most the cap."""
    assert soc_margin(age) == margin
    assert conservative_soc(41, age) == 41 - margin
    assert conservative_soc(0.5, age) == max(0.0, 0.5 - margin)


async def test_store_holds_only_what_is_needed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    hass_storage: dict[str, Any],
) -> None:
    """Written soon after a check with news; no tokens, names or odometer."""
    plug_in_waiting_for_night(sim)
    await setup_entry()
    key = storage_key(entry.entry_id)
    assert key not in hass_storage  # a delayed write
    await advance_to(hass, freezer, SEEN + timedelta(seconds=15))
    stored = stored_memory(hass_storage, entry)
    assert stored["version"] == 2
    assert list(stored["data"]["habits"]) == [VIN]
    (car,) = stored["data"]["vehicles"].values()
    assert list(stored["data"]["vehicles"]) == [VIN]  # the key, as elsewhere
    assert car == {
        "state": "online",
        "checked_at": SEEN.astimezone(dt_util.UTC).isoformat(),
        "fetched_at": SEEN.astimezone(dt_util.UTC).isoformat(),
        "charge_state": {
            "battery_level": 41,
            "charge_limit_soc": 80,
            "charging_state": "Stopped",
        },
        "drive_state": {"latitude": HOME.lat, "longitude": HOME.lon},
        "vehicle_state": {"car_version": sim.vehicle().config.car_version},
        "charge_schedule_data": {
            "charge_schedules": [
                {
                    "id": 7,
                    "days_of_week": 127,
                    "enabled": True,
                    "one_time": False,
                    "start_enabled": True,
                    "start_time": 22 * 60,
                    "end_enabled": True,
                    "end_time": 6 * 60,
                    "latitude": HOME.lat,
                    "longitude": HOME.lon,
                }
            ]
        },
    }
    text = json.dumps(stored)
    token = entry.data["token"]
    for secret in (token["access_token"], token["refresh_token"]):
        assert secret not in text
    for word in ("token", "odometer", "display_name", "vehicle_name", "Sim Model"):
        assert word not in text

    # Checks that bring nothing new are not written; the unload writes them.
    sim.vehicle().fall_asleep()
    await advance_to(hass, freezer, SEEN + timedelta(minutes=31))
    await advance_to(hass, freezer, SEEN + timedelta(minutes=32))
    asleep = stored_memory(hass_storage, entry)["data"]["vehicles"][VIN]
    assert asleep["state"] == "asleep"
    habits = stored_memory(hass_storage, entry)["data"]["habits"][VIN]
    for minutes in range(40, 4 * 60, 10):
        await advance_to(hass, freezer, SEEN + timedelta(minutes=minutes))
    stored_after = stored_memory(hass_storage, entry)["data"]
    assert stored_after["vehicles"][VIN] == asleep
    assert stored_after["habits"][VIN] == habits
    assert await hass.config_entries.async_unload(entry.entry_id)
    unloaded = stored_memory(hass_storage, entry)["data"]
    assert unloaded["vehicles"][VIN]["checked_at"] > asleep["checked_at"]
    assert unloaded["habits"][VIN] != habits  # the rest hours since


async def test_remove_entry_removes_the_store(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    hass_storage: dict[str, Any],
) -> None:
    """The memory goes with the entry."""
    await setup_entry()
    await hass.config_entries.async_unload(entry.entry_id)
    assert storage_key(entry.entry_id) in hass_storage
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert storage_key(entry.entry_id) not in hass_storage


def memory_of(vehicles: Any, version: int = 1) -> dict[str, Any]:
    """Return a stored memory as Home Assistant's storage holds it."""
    return {"version": version, "minor_version": 1, "data": {"vehicles": vehicles}}


GOOD = {
    "state": "asleep",
    "checked_at": "2027-01-13T16:30:00+00:00",
    "fetched_at": "2027-01-13T16:00:00+00:00",
    "charge_state": {"battery_level": 41},
}


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(memory_of({VIN: GOOD}, version=0), id="older_version"),
        pytest.param(memory_of({VIN: GOOD}, version=3), id="newer_version"),
        pytest.param({"version": 1, "data": ["nonsense"]}, id="not_a_mapping"),
        pytest.param(memory_of("nonsense"), id="vehicles_not_a_mapping"),
        pytest.param(memory_of({VIN: "nonsense"}), id="car_not_a_mapping"),
        pytest.param(memory_of({VIN: {"state": "asleep"}}), id="no_check_time"),
        pytest.param(
            memory_of({VIN: {**GOOD, "checked_at": None}}), id="check_time_none"
        ),
        pytest.param(
            memory_of({VIN: {**GOOD, "checked_at": "2027-01-13T16:30:00"}}),
            id="naive_time",
        ),
        pytest.param(
            memory_of({VIN: {**GOOD, "fetched_at": "yesterday"}}), id="bad_time"
        ),
        pytest.param(
            memory_of({VIN: {**GOOD, "charge_state": [41]}}), id="piece_not_a_mapping"
        ),
    ],
)
async def test_unreadable_memory_is_ignored(
    hass: HomeAssistant,
    sim: Simulator,
    entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    hass_storage: dict[str, Any],
    stored: dict[str, Any],
) -> None:
    """An old, newer or damaged store is ignored: as before, the level is unknown."""
    hass_storage[storage_key(entry.entry_id)] = stored
    sim.vehicle().fall_asleep()
    await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    assert state(hass, f"sensor.{CAR}_battery") == "unknown"
    with pytest.raises(ServiceValidationError) as err:
        await plan(hass)
    assert err.value.translation_key == "soc_unknown"
    assert sim.api_requests("wake") == []


async def test_version_1_memory_is_kept_and_habits_start_empty(
    hass: HomeAssistant,
    sim: Simulator,
    entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    hass_storage: dict[str, Any],
) -> None:
    """A store written before habits were kept still gives the last level."""
    hass_storage[storage_key(entry.entry_id)] = memory_of({VIN: GOOD})
    sim.vehicle().fall_asleep()
    await setup_entry()
    assert state(hass, f"sensor.{CAR}_battery") == "41"
    habits = entry.runtime_data.vehicles[VIN].coordinator._habits
    assert habits.learnt_hours == 0
    await hass.config_entries.async_unload(entry.entry_id)
    stored = stored_memory(hass_storage, entry)
    assert stored["version"] == 2
    assert set(stored["data"]["habits"]) == {VIN}


async def test_learnt_habits_survive_a_restart(
    hass: HomeAssistant,
    sim: Simulator,
    entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    hass_storage: dict[str, Any],
) -> None:
    """Habits are read back after a restart; unreadable ones start afresh."""
    learnt = Habits()
    learnt.leaves[Place.HOME][0][30] = 3.0
    learnt.stays[Place.HOME][0][30] = 1.0
    stored = memory_of({VIN: GOOD})
    stored["version"] = 2
    stored["data"]["habits"] = {VIN: learnt.as_dict(), "OTHER": {"leaves": []}}
    hass_storage[storage_key(entry.entry_id)] = stored
    sim.vehicle().fall_asleep()
    await setup_entry()
    habits = entry.runtime_data.vehicles[VIN].coordinator._habits
    assert habits.leaves[Place.HOME][0][30] == 3.0
    memory = entry.runtime_data.memory
    assert memory.habits("OTHER").learnt_hours == 0  # unreadable: new
    assert memory.habits(VIN) is habits


async def test_memory_of_other_cars_is_dropped(
    hass: HomeAssistant,
    sim: Simulator,
    entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    hass_storage: dict[str, Any],
) -> None:
    """A car no longer on the account is forgotten; a readable one is used."""
    hass_storage[storage_key(entry.entry_id)] = memory_of(
        {VIN: GOOD, "7SAYGDEE0PF000002": GOOD}
    )
    sim.vehicle().fall_asleep()
    await setup_entry()
    assert state(hass, f"sensor.{CAR}_battery") == "41"
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert list(stored_memory(hass_storage, entry)["data"]["vehicles"]) == [VIN]


@pytest.mark.parametrize("options", [{**OFF_PEAK, CONF_BATTERY_CAPACITY: 74.3}])
async def test_off_peak_action_waits_for_the_awake_car(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    hass_storage: dict[str, Any],
) -> None:
    """Remembered "at home, plugged in, just fetched" is not the car speaking now."""
    car = sim.vehicle()
    plug_in_waiting_for_night(sim)
    moment = SEEN.astimezone(dt_util.UTC).isoformat()
    hass_storage[storage_key(entry.entry_id)] = memory_of(
        {
            VIN: {
                "state": "online",
                "checked_at": moment,
                "fetched_at": moment,  # fresh when it was written
                "charge_state": {"battery_level": 41, "charging_state": "Stopped"},
                "drive_state": {"latitude": HOME.lat, "longitude": HOME.lon},
            }
        }
    )
    car.fall_asleep()
    freezer.move_to(RESTART)
    await setup_entry()
    assert state(hass, f"binary_sensor.{CAR}_plugged_in") == "on"
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "on"
    assert state(hass, f"sensor.{CAR}_battery") != STATE_UNAVAILABLE
    assert sim.api_requests("command") == []
    assert vehicle_data_calls(sim) == 0

    car.come_online()
    await press_force_update(hass, CAR)
    # The night schedule is already the off-peak one: only the limit changes.
    assert commands(sim) == ["set_charge_limit"]
    assert car.charge_limit_soc == 70
    assert car.wake_count == 0


def test_restored_data_is_never_fresh() -> None:
    """Even a memory written right after a fetch; derived values are kept."""
    home = HomeZone(HOME.lat, HOME.lon, 0.1)
    moment = "2027-01-13T16:00:00+00:00"
    data = recalled(
        {
            "state": "online",
            "checked_at": moment,
            "fetched_at": moment,
            "charge_state": {"battery_level": 41, "charging_state": "Charging"},
            "drive_state": {"latitude": HOME.lat, "longitude": HOME.lon},
            "charge_schedule_data": {"charge_schedules": [{"id": 3}, "junk"]},
            "climate_state": {"inside_temp": 20},
        },
        home,
    )
    assert data.restored
    assert data.fetched_at == data.checked_at
    assert not data.fresh
    assert data.charging is None  # it may have stopped since
    assert data.charging_state is None
    assert data.plugged_in is True
    assert data.at_home is True
    assert not data.driving
    assert data.charge_schedule_data == {"charge_schedules": [{"id": 3}]}
    assert "climate_state" not in remembered(data)
    assert remembered(data)["fetched_at"] == moment
