"""Helpers for the scout's tests: a home zone at the simulated car's home, time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from freezegun.api import FrozenDateTimeFactory

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import (
    DEFAULT_HOME,
    DEFAULT_WORK,
    AccountConfig,
    SimConfig,
    VehicleConfig,
)

from .common import advance, calls, commands, state

__all__ = [
    "AT_WORK",
    "CAR",
    "HOME",
    "TIME_ZONE",
    "VIN",
    "WORK",
    "advance",
    "calls",
    "commands",
    "next_local_midnight",
    "prepare_home",
    "state",
]

TIME_ZONE = "Europe/Warsaw"  # the simulated car's time zone
HOME = DEFAULT_HOME
WORK = DEFAULT_WORK
VIN = "5YJ3E7EB0KF000001"
CAR = "sim_model_3"
AT_WORK = SimConfig(accounts=[AccountConfig(vehicles=[VehicleConfig(location=WORK)])])


def next_local_midnight() -> datetime:
    """Return the next midnight in the car's time zone."""
    now = dt_util.utcnow().astimezone(ZoneInfo(TIME_ZONE))
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


async def prepare_home(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    start: datetime | None = None,
) -> None:
    """Start at ``start`` (default: local midnight) in the car's time zone.

    zone.home is at the car's home.
    """
    freezer.move_to(start or next_local_midnight())
    await hass.config.async_set_time_zone(TIME_ZONE)
    hass.config.latitude = HOME.lat
    hass.config.longitude = HOME.lon
    assert await async_setup_component(hass, "zone", {})  # zone.home, radius 100 m
