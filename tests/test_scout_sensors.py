"""Vehicle sensors equal the simulated car."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import AccountConfig, SimClock, SimConfig, Simulator, VehicleConfig

from .conftest import ACCOUNT, find_device
from .scout_common import CAR, VIN, WORK, advance, prepare_home, state

KEYS = (
    "battery",
    "charge_limit",
    "charging_state",
    "charger_power",
    "distance_from_home",
    "vehicle_state",
    "next_check",
)


@pytest.fixture
def scout_polling() -> bool:
    """Let the scout poll on its own."""
    return True


@pytest.fixture(autouse=True)
async def home(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Start at local midnight with zone.home at the car's home."""
    await prepare_home(hass, freezer)


PLUGGED_AT_HOME = SimConfig(
    accounts=[AccountConfig(vehicles=[VehicleConfig(plugged_in=True)])]
)


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Simulator:
    """Return a car at home, plugged in and charging (or as parametrized)."""
    config = getattr(request, "param", PLUGGED_AT_HOME)
    return Simulator(config, clock=SimClock.follow(dt_util.utcnow))


async def press(hass: HomeAssistant) -> None:
    """Press Force update."""
    await hass.services.async_call(
        "button", "press", {"entity_id": f"button.{CAR}_force_update"}, blocking=True
    )


def assert_matches_car(hass: HomeAssistant, sim: Simulator) -> None:
    """Every vehicle sensor shows what the car reports."""
    car = sim.vehicle()
    assert state(hass, f"sensor.{CAR}_battery") == str(round(car.battery_level))
    assert state(hass, f"sensor.{CAR}_charge_limit") == str(car.charge_limit_soc)
    assert state(hass, f"sensor.{CAR}_charging_state") == car.charging_state.lower()
    assert float(state(hass, f"sensor.{CAR}_charger_power")) == round(car.charger_power)
    assert state(hass, f"sensor.{CAR}_vehicle_state") == car.state


async def test_vehicle_sensors(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Battery, limit, charging, power, place, state and next check."""
    assert_matches_car(hass, sim)
    assert state(hass, f"sensor.{CAR}_charging_state") == "charging"
    assert float(state(hass, f"sensor.{CAR}_charger_power")) == 11
    assert float(state(hass, f"sensor.{CAR}_distance_from_home")) == 0
    next_check = dt_util.parse_datetime(state(hass, f"sensor.{CAR}_next_check"))
    assert next_check == dt_util.utcnow() + timedelta(minutes=30)

    # Charging keeps the car awake: the next idle check brings new values.
    await advance(hass, freezer, timedelta(minutes=31))
    assert int(state(hass, f"sensor.{CAR}_battery")) > 50
    assert_matches_car(hass, sim)

    for key in KEYS:
        entry = entity_registry.async_get(f"sensor.{CAR}_{key}")
        assert entry is not None, key
        assert entry.unique_id.startswith(f"{VIN}_")
        current = hass.states.get(f"sensor.{CAR}_{key}")
        assert current is not None
        assert VIN not in str(current.attributes)
    assert entity_registry.async_get(f"sensor.{CAR}_next_check").entity_category == (
        "diagnostic"
    )
    battery = hass.states.get(f"sensor.{CAR}_battery")
    assert battery is not None
    assert battery.attributes["device_class"] == "battery"
    assert battery.attributes["unit_of_measurement"] == "%"

    device = find_device(hass, VIN)
    assert device is not None
    assert device.name == "Sim Model 3"
    assert device.manufacturer == "Tesla"
    assert device.model == "Model 3"
    assert device.sw_version == "2025.14.3"
    assert device.serial_number is None
    account = find_device(hass, ACCOUNT)
    assert account is not None
    assert device.via_device_id == account.id


async def test_no_power_and_stale_charging(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
) -> None:
    """A power cut reads "no_power"; asleep after charging reads no power."""
    car = sim.vehicle()
    car.set_grid_power(False)
    await press(hass)
    assert state(hass, f"sensor.{CAR}_charging_state") == "no_power"
    assert float(state(hass, f"sensor.{CAR}_charger_power")) == 0

    car.set_grid_power(True)
    # Past the button's 10 s cooldown:
    await advance(hass, freezer, timedelta(seconds=11), step=timedelta(seconds=11))
    await press(hass)
    assert state(hass, f"sensor.{CAR}_charging_state") == "charging"
    car.unplug()
    car.fall_asleep()
    await advance(hass, freezer, timedelta(minutes=31))
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "asleep"
    assert float(state(hass, f"sensor.{CAR}_charger_power")) == 0
    # The last data said "charging"; an asleep car is not: state unknown.
    assert state(hass, f"sensor.{CAR}_charging_state") == "unknown"


@pytest.mark.parametrize(
    "sim",
    [SimConfig(accounts=[AccountConfig(vehicles=[VehicleConfig(location=WORK)])])],
    indirect=True,
)
async def test_away_from_home(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Distance from home in km."""
    assert 14 < float(state(hass, f"sensor.{CAR}_distance_from_home")) < 16
    assert state(hass, f"sensor.{CAR}_charging_state") == "disconnected"
