"""The Force update button: a check now, never a wake-up."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.button import PARALLEL_UPDATES
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from tesla_fleet_sim import Simulator

from .scout_common import CAR, VIN, advance, calls, prepare_home, state

BUTTON = f"button.{CAR}_force_update"


@pytest.fixture(autouse=True)
async def home(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Start at local midnight with zone.home at the car's home."""
    await prepare_home(hass, freezer)


async def press(hass: HomeAssistant) -> None:
    """Press the button."""
    await hass.services.async_call(
        "button", "press", {"entity_id": BUTTON}, blocking=True
    )
    await hass.async_block_till_done()


async def test_press_checks_without_waking(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Asleep: one state check. Online: state check and data."""
    assert PARALLEL_UPDATES == 1
    entry = entity_registry.async_get(BUTTON)
    assert entry is not None
    assert entry.unique_id == f"{VIN}_force_update"
    car = sim.vehicle()
    car.fall_asleep()
    before = (calls(sim, "state_check"), calls(sim, "data"))

    await press(hass)
    assert (calls(sim, "state_check"), calls(sim, "data")) == (
        before[0] + 1,
        before[1],
    )
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "asleep"
    assert car.wake_count == 0
    assert calls(sim, "wake") == 0

    # A second press inside the 10 s cooldown waits for its end.
    await press(hass)
    assert calls(sim, "state_check") == before[0] + 1
    car.come_online()
    await advance(hass, freezer, timedelta(seconds=11), step=timedelta(seconds=11))
    assert calls(sim, "state_check") == before[0] + 2
    assert calls(sim, "data") == before[1] + 1
    assert state(hass, f"sensor.{CAR}_vehicle_state") == "online"
    assert calls(sim, "wake") == 0
