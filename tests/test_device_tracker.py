"""The vehicle's location tracker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from tesla_fleet_sim import Simulator

from .common import press_force_update
from .scout_common import CAR, VIN, WORK, advance, state

pytestmark = pytest.mark.usefixtures("scout")

TRACKER = f"device_tracker.{CAR}_location"


async def test_tracker_follows_the_car(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """GPS position from drive_state; home when inside zone.home."""
    car = sim.vehicle()
    tracker = hass.states.get(TRACKER)
    assert tracker is not None
    assert tracker.state == "home"
    assert tracker.attributes["latitude"] == round(car.latitude, 6)
    assert tracker.attributes["longitude"] == round(car.longitude, 6)
    assert tracker.attributes["source_type"] == "gps"
    assert VIN not in str(tracker.attributes)
    entry = entity_registry.async_get(TRACKER)
    assert entry is not None
    assert entry.unique_id == f"{VIN}_location"

    car.drive_to(WORK, timedelta(minutes=30))
    await advance(hass, freezer, timedelta(minutes=31))
    assert state(hass, TRACKER) == "not_home"
    await press_force_update(hass, CAR)  # where the parked car is now
    tracker = hass.states.get(TRACKER)
    assert tracker is not None
    assert tracker.attributes["latitude"] == pytest.approx(car.latitude, abs=1e-6)
    assert tracker.attributes["longitude"] == pytest.approx(car.longitude, abs=1e-6)


async def test_tracker_without_location(
    hass: HomeAssistant,
    sim: Simulator,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """A car asleep since before setup has no known place yet."""
    sim.vehicle().fall_asleep()
    await setup_entry()
    assert state(hass, TRACKER) == "unknown"
