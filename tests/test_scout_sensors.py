"""Vehicle sensors equal the simulated car."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import AccountConfig, SimConfig, Simulator, VehicleConfig

from .common import find_device, press_force_update
from .conftest import ACCOUNT
from .scout_common import AT_WORK, CAR, VIN, advance, state

pytestmark = pytest.mark.usefixtures("scout")

KEYS = (
    "battery",
    "charge_limit",
    "charging_state",
    "charger_power",
    "distance_from_home",
    "vehicle_state",
    "next_check",
)


PLUGGED_AT_HOME = SimConfig(
    accounts=[AccountConfig(vehicles=[VehicleConfig(plugged_in=True)])]
)


@pytest.fixture
def sim_config() -> SimConfig:
    """A car at home, plugged in and charging (tests may parametrize others)."""
    return PLUGGED_AT_HOME


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
    registered = entity_registry.async_get(f"sensor.{CAR}_next_check")
    assert registered is not None
    assert registered.entity_category == "diagnostic"
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
    await press_force_update(hass, CAR)
    assert state(hass, f"sensor.{CAR}_charging_state") == "no_power"
    assert float(state(hass, f"sensor.{CAR}_charger_power")) == 0

    car.set_grid_power(True)
    # Past the button's 10 s cooldown:
    await advance(hass, freezer, timedelta(seconds=11), step=timedelta(seconds=11))
    await press_force_update(hass, CAR)
    assert state(hass, f"sensor.{CAR}_charging_state") == "charging"
    car.unplug()
    car.fall_asleep()
    await advance(hass, freezer, timedelta(minutes=31))
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "asleep"
    assert float(state(hass, f"sensor.{CAR}_charger_power")) == 0
    # The last data said "charging"; an asleep car is not: state unknown.
    assert state(hass, f"sensor.{CAR}_charging_state") == "unknown"


@pytest.mark.parametrize("sim_config", [AT_WORK], ids=["at_work"])
async def test_away_from_home(
    hass: HomeAssistant, sim: Simulator, loaded_entry: MockConfigEntry
) -> None:
    """Distance from home in km."""
    assert 14 < float(state(hass, f"sensor.{CAR}_distance_from_home")) < 16
    assert state(hass, f"sensor.{CAR}_charging_state") == "disconnected"
