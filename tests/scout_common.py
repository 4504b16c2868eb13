"""Helpers for the scout's tests: a home zone at the simulated car's home, time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import DEFAULT_HOME, DEFAULT_WORK, Simulator

TIME_ZONE = "Europe/Warsaw"  # the simulated car's time zone
HOME = DEFAULT_HOME
WORK = DEFAULT_WORK
VIN = "5YJ3E7EB0KF000001"
CAR = "sim_model_3"


def next_local_midnight() -> datetime:
    """Return the next midnight in the car's time zone."""
    now = dt_util.utcnow().astimezone(ZoneInfo(TIME_ZONE))
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


async def prepare_home(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Start at local midnight, in the car's time zone, with zone.home at its home."""
    freezer.move_to(next_local_midnight())
    await hass.config.async_set_time_zone(TIME_ZONE)
    hass.config.latitude = HOME.lat
    hass.config.longitude = HOME.lon
    assert await async_setup_component(hass, "zone", {})  # zone.home, radius 100 m


async def advance(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    delta: timedelta,
    step: timedelta = timedelta(minutes=1),
) -> None:
    """Let simulated time pass in steps, running every timer that comes due."""
    end = dt_util.utcnow() + delta
    while (now := dt_util.utcnow()) < end:
        freezer.tick(min(step, end - now))
        async_fire_time_changed(hass)
        # Scheduled refreshes run as background tasks doing real loopback I/O:
        # let them finish before the clock jumps past their request timeout.
        await hass.async_block_till_done(wait_background_tasks=True)


def state(hass: HomeAssistant, entity_id: str) -> str:
    """Return an entity's state."""
    current = hass.states.get(entity_id)
    assert current is not None, entity_id
    return current.state


def calls(sim: Simulator, category: str) -> int:
    """Return how many requests of a billing category the simulator answered."""
    return len(sim.api_requests(category))


def commands(sim: Simulator) -> list[str]:
    """Return the names of the commands the simulator carried out (HTTP 200)."""
    return [
        r.path.rsplit("/", 1)[-1]
        for r in sim.api_requests("command")
        if r.status == 200
    ]
