"""Vehicle binary sensors: at home, plugged in, charging."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from tesla_fleet_sim import SimConfig, Simulator

from .scout_common import AT_WORK, CAR, VIN, advance, state

pytestmark = pytest.mark.usefixtures("scout")


@pytest.fixture
def sim_config() -> SimConfig:
    """A car parked at work."""
    return AT_WORK


def flags(hass: HomeAssistant) -> tuple[str, str, str]:
    """Return at home, plugged in, charging."""
    return (
        state(hass, f"binary_sensor.{CAR}_at_home"),
        state(hass, f"binary_sensor.{CAR}_plugged_in"),
        state(hass, f"binary_sensor.{CAR}_charging"),
    )


async def test_binary_sensors_follow_the_car(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Away and unplugged, then home, plugged in and charging."""
    assert flags(hass) == ("off", "off", "off")
    car = sim.vehicle()
    car.drive_home(timedelta(minutes=40), plug_in_on_arrival=True)
    await advance(hass, freezer, timedelta(minutes=45))
    assert car.charging_state == "Charging"
    assert flags(hass) == ("on", "on", "on")

    for key, device_class in (
        ("at_home", "presence"),
        ("plugged_in", "plug"),
        ("charging", "battery_charging"),
    ):
        entry = entity_registry.async_get(f"binary_sensor.{CAR}_{key}")
        assert entry is not None
        assert entry.unique_id == f"{VIN}_{key}"
        current = hass.states.get(f"binary_sensor.{CAR}_{key}")
        assert current is not None
        assert current.attributes["device_class"] == device_class

    # Charged to the limit: plugged in, not charging; then it falls asleep
    # and keeps its last place and plug.
    await advance(hass, freezer, timedelta(hours=4), step=timedelta(minutes=5))
    assert car.charging_state == "Complete"
    assert car.state == "asleep"
    assert flags(hass) == ("on", "on", "off")
