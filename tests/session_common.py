"""The special charging day every session test uses: Warsaw, January 2027.

At START (Wednesday 13th, 22:30) the car is at 41 % with a 50 % limit
(74.3 kWh, 11 kW). Planned to 90 % by READY_BY (Thursday 07:00) off-peak, it
is sent at SEND_AT (00:19), charges from CHARGE_START to CHARGE_END
(02:19-06:00) and is cleaned up at CLEANUP_AT (06:30).

The fixtures that go with it are in conftest.py: ``warsaw`` (Home Assistant in
the car's time zone), ``fast_wait`` (waits move the frozen clock) and
``carried_out`` (the commands the simulated car carries out).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.session_manager import SessionManager
from custom_components.tesla_scout_worker.sessions import ChargingSession, SessionState
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import (
    AccountConfig,
    SimClock,
    SimConfig,
    Simulator,
    VehicleConfig,
)
from tesla_fleet_sim.config import DEFAULT_VIN

from .common import advance_to, device_id, plan_special_charging

TZ = "Europe/Warsaw"
WARSAW = dt_util.get_time_zone(TZ)
assert WARSAW is not None
VIN = DEFAULT_VIN
CAR = "sim_model_3"  # the car's entity ids: sensor.sim_model_3_...
COMMANDS_SENSOR = f"sensor.{CAR}_commands"
CAPACITY = 74.3  # kWh, the car's battery and the entry's battery_capacity option


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a Warsaw time in January 2027 (day 13 is a Wednesday)."""
    return datetime(2027, 1, day, hour, minute, tzinfo=WARSAW)


START = local(13, 22, 30)
READY_BY = local(14, 7)
SEND_AT = local(14, 0, 19)
CHARGE_START = local(14, 2, 19)
CHARGE_END = local(14, 6)
CLEANUP_AT = local(14, 6, 30)


def session_sim(
    freezer: FrozenDateTimeFactory, *, charge_limit_soc: int = 50, **car: Any
) -> Simulator:
    """Move the clock to START; a car at 41 % with a 50 % limit, 74.3 kWh, 11 kW.

    ``car`` adds to the car's settings (e.g. ``command_signing="required"``).
    """
    freezer.move_to(START)
    vehicle = VehicleConfig(
        battery_level=41,
        battery_capacity_kwh=CAPACITY,
        charge_limit_soc=charge_limit_soc,
        **car,
    )
    config = SimConfig(accounts=[AccountConfig(vehicles=[vehicle])])
    return Simulator(config, clock=SimClock.follow(dt_util.utcnow))


async def set_up_entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    **changes: Any,
) -> MockConfigEntry:
    """Update the entry (``data``, ``options``), set it up; it must load."""
    hass.config_entries.async_update_entry(config_entry, **changes)
    await setup_entry()
    assert config_entry.state is ConfigEntryState.LOADED
    return config_entry


def manager(entry: MockConfigEntry) -> SessionManager:
    """Return the entry's special charging sessions."""
    sessions: SessionManager | None = entry.runtime_data.sessions
    assert sessions is not None
    return sessions


def state_of(session: ChargingSession) -> SessionState:
    """Return the session's state now.

    A call rather than ``session.state``: mypy keeps what an earlier
    ``assert session.state is ...`` narrowed across the awaits that move it on.
    """
    return session.state


async def plan(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    """Plan the car to 90 % by READY_BY off-peak (``data`` overrides; None drops)."""
    return await plan_special_charging(
        hass,
        **{
            "device_id": device_id(hass, VIN),
            "target_soc": 90,
            "ready_by": READY_BY,
            "mode": "off_peak",
            **data,
        },
    )


async def plan_and_send(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry
) -> ChargingSession:
    """Plan the car (see ``plan``), run the clock to SEND_AT; return the session."""
    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    return session
