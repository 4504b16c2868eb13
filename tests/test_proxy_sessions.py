"""Special charging through the simulated tesla-http-proxy, on a frozen clock.

The commands URL points at the simulator's HTTPS proxy and trusts its CA
file; the car needs signed commands (``command_signing="required"``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker import charge_control
from custom_components.tesla_scout_worker.const import (
    CONF_BATTERY_CAPACITY,
    CONF_COMMANDS_CA_FILE,
    CONF_COMMANDS_URL,
    CONF_COMMANDS_VERIFY_SSL,
    DOMAIN,
)
from custom_components.tesla_scout_worker.sessions import (
    REASON_KEY_NOT_PAIRED,
    SessionState,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import (
    AccountConfig,
    RunningSimulator,
    SimClock,
    SimConfig,
    Simulator,
    VehicleConfig,
    commands as sim_commands,
)
from tesla_fleet_sim.config import DEFAULT_VIN

from .common import (
    advance_to,
    command_requests,
    device_id,
    plan_special_charging,
    stored_state,
)

TZ = "Europe/Warsaw"
WARSAW = dt_util.get_time_zone(TZ)
assert WARSAW is not None
VIN = DEFAULT_VIN


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """Return a Warsaw time in January 2027 (day 13 is a Wednesday)."""
    return datetime(2027, 1, day, hour, minute, tzinfo=WARSAW)


START = local(13, 22, 30)
READY_BY = local(14, 7)
SEND_AT = local(14, 0, 19)
CHARGE_START = local(14, 2, 19)
CHARGE_END = local(14, 6)
CLEANUP_AT = local(14, 6, 30)


@pytest.fixture
async def warsaw(hass: HomeAssistant) -> None:
    """Run Home Assistant in the simulated car's time zone."""
    await hass.config.async_set_time_zone(TZ)


@pytest.fixture
def key_paired() -> bool:
    """Whether the proxy's key is on the car (parametrize to change)."""
    return True


@pytest.fixture
def sim(freezer: FrozenDateTimeFactory, warsaw: None, key_paired: bool) -> Simulator:
    """A signing car at 41 % with a 50 % limit; 74.3 kWh, 11 kW."""
    freezer.move_to(START)
    car = VehicleConfig(
        battery_level=41,
        battery_capacity_kwh=74.3,
        charge_limit_soc=50,
        command_signing="required",
        key_paired=key_paired,
    )
    config = SimConfig(accounts=[AccountConfig(vehicles=[car])])
    return Simulator(config, clock=SimClock.follow(dt_util.utcnow))


@pytest.fixture(autouse=True)
def fast_wait(freezer: FrozenDateTimeFactory) -> Any:
    """Waits between wake-up checks move the frozen clock instead of sleeping."""

    async def wait(seconds: float) -> None:
        freezer.tick(timedelta(seconds=seconds))

    with patch.object(charge_control, "async_wait", wait):
        yield


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    sim_proxy: RunningSimulator,
) -> MockConfigEntry:
    """The entry, its commands going to the proxy, trusting the proxy's CA."""
    hass.config_entries.async_update_entry(
        config_entry,
        data={
            **config_entry.data,
            CONF_COMMANDS_URL: sim_proxy.proxy_url,
            CONF_COMMANDS_VERIFY_SSL: True,
            CONF_COMMANDS_CA_FILE: str(sim_proxy.proxy_ca_path),
        },
        options={CONF_BATTERY_CAPACITY: 74.3},
    )
    await setup_entry()
    assert config_entry.state is ConfigEntryState.LOADED
    return config_entry


async def plan(hass: HomeAssistant) -> dict[str, Any]:
    """Plan the car to 90 % by READY_BY off-peak."""
    return await plan_special_charging(
        hass,
        device_id=device_id(hass, VIN),
        target_soc=90,
        ready_by=READY_BY,
        mode="off_peak",
    )


@pytest.fixture
def carried_out() -> Iterator[list[str]]:
    """Record the names of the commands the simulated car carries out."""
    run = sim_commands.run_command
    names: list[str] = []

    def spy(car: Any, name: str, body: Any) -> Any:
        names.append(name)
        return run(car, name, body)

    with patch.object(sim_commands, "run_command", spy):
        yield names


async def test_session_through_the_proxy(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    carried_out: list[str],
) -> None:
    """Sent, charged and cleaned up with signed commands through the proxy."""
    car = sim.vehicle()
    sim.schedule_event(local(14, 1), "plug_in")
    response = await plan(hass)
    assert response["state"] == "scheduled"
    await advance_to(hass, freezer, SEND_AT)
    (session,) = entry.runtime_data.sessions.sessions.values()
    assert session.state is SessionState.ACTIVE
    assert car.charge_limit_soc == 90
    [schedule] = car.charge_schedules
    assert schedule["one_time"] is True
    assert session.schedule_id == schedule["id"]
    assert hass.states.get("sensor.sim_model_3_special_charging").state == "active"

    await advance_to(hass, freezer, CHARGE_START + timedelta(minutes=1))
    assert car.charging_state == "Charging"
    await advance_to(hass, freezer, CLEANUP_AT)
    assert session.state is SessionState.COMPLETED
    assert stored_state(hass_storage, entry) == "completed"
    assert hass.states.get("sensor.sim_model_3_special_charging").state == "completed"
    assert car.charge_limit_soc == 50
    assert car.charge_schedules == []
    # Every command went through the proxy, signed; exactly one schedule was
    # added (the car drops a one-time schedule once its window is over).
    requests = command_requests(sim)
    assert {r.path.rsplit("/", 1)[-1] for r in requests} == {"signed_command"}
    assert all(r.status == 200 and r.billed for r in requests)
    assert carried_out == [
        "set_charge_limit",
        "add_charge_schedule",
        "set_charge_limit",
    ]
    assert not ir.async_get(hass).issues


async def test_cancel_removes_the_schedule_through_the_proxy(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    carried_out: list[str],
) -> None:
    """Cancelled while active: the schedule is removed with a signed command."""
    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    sessions = entry.runtime_data.sessions
    (session,) = sessions.sessions.values()
    assert len(sim.vehicle().charge_schedules) == 1
    await sessions.async_cancel(session.id)
    assert session.state is SessionState.CANCELLED
    assert sim.vehicle().charge_schedules == []
    assert sim.vehicle().charge_limit_soc == 50
    assert carried_out == [
        "set_charge_limit",
        "add_charge_schedule",
        "set_charge_limit",
        "remove_charge_schedule",
    ]
    assert {r.path.rsplit("/", 1)[-1] for r in command_requests(sim)} == {
        "signed_command"
    }


@pytest.mark.parametrize("key_paired", [False])
async def test_key_not_paired_fails_at_once(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    carried_out: list[str],
) -> None:
    """A car without the proxy's key: no retries, a repair that names the fix."""
    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    (session,) = entry.runtime_data.sessions.sessions.values()
    assert session.state is SessionState.FAILED
    assert session.reason == REASON_KEY_NOT_PAIRED
    assert stored_state(hass_storage, entry) == "failed"
    assert sim.vehicle().charge_limit_soc == 50
    assert sim.vehicle().charge_schedules == []
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    assert issue is not None
    assert issue.translation_key == "session_failed_key_not_paired"
    assert not issue.is_fixable
    attempts = len(command_requests(sim))
    assert attempts == 1  # the limit, refused; nothing else was tried
    assert carried_out == []
    await advance_to(hass, freezer, CLEANUP_AT + timedelta(hours=2))
    assert len(command_requests(sim)) == attempts


async def test_key_removed_before_cleanup(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Key gone by cleanup time: no retries for hours; a restore repair instead."""
    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    (session,) = entry.runtime_data.sessions.sessions.values()
    assert session.state is SessionState.ACTIVE
    sim.vehicle().set_app_key_paired(False)
    await advance_to(hass, freezer, CLEANUP_AT)
    assert session.state is SessionState.FAILED
    assert session.reason == REASON_KEY_NOT_PAIRED
    assert sim.vehicle().charge_limit_soc == 90  # still the session's
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    assert issue is not None
    assert issue.translation_key == "session_restore_limit"
    assert issue.is_fixable
    attempts = len(command_requests(sim))
    wakes = len(sim.api_requests("wake"))
    await advance_to(hass, freezer, CLEANUP_AT + timedelta(hours=7))
    assert len(command_requests(sim)) == attempts
    assert len(sim.api_requests("wake")) == wakes
