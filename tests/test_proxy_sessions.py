"""Special charging through the simulated tesla-http-proxy, on a frozen clock.

The commands URL points at the simulator's HTTPS proxy and trusts its CA
file; the car needs signed commands (``command_signing="required"``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

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
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from tesla_fleet_sim import RunningSimulator, Simulator

from .common import advance_to, command_requests, state, stored_state
from .session_common import (
    CAPACITY,
    CHARGE_START,
    CLEANUP_AT,
    SEND_AT,
    local,
    manager,
    plan,
    plan_and_send,
    session_sim,
    set_up_entry,
    state_of,
)

pytestmark = pytest.mark.usefixtures("fast_wait")


@pytest.fixture
def key_paired() -> bool:
    """Whether the proxy's key is on the car (parametrize to change)."""
    return True


@pytest.fixture
def sim(freezer: FrozenDateTimeFactory, warsaw: None, key_paired: bool) -> Simulator:
    """A signing car at 41 % with a 50 % limit; 74.3 kWh, 11 kW."""
    return session_sim(freezer, command_signing="required", key_paired=key_paired)


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    sim_proxy: RunningSimulator,
) -> MockConfigEntry:
    """The entry, its commands going to the proxy, trusting the proxy's CA."""
    return await set_up_entry(
        hass,
        config_entry,
        setup_entry,
        data={
            **config_entry.data,
            CONF_COMMANDS_URL: sim_proxy.proxy_url,
            CONF_COMMANDS_VERIFY_SSL: True,
            CONF_COMMANDS_CA_FILE: str(sim_proxy.proxy_ca_path),
        },
        options={CONF_BATTERY_CAPACITY: CAPACITY},
    )


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
    assert state(hass, "sensor.sim_model_3_special_charging") == "active"

    await advance_to(hass, freezer, CHARGE_START + timedelta(minutes=1))
    assert car.charging_state == "Charging"
    await advance_to(hass, freezer, CLEANUP_AT)
    assert state_of(session) is SessionState.COMPLETED
    assert stored_state(hass_storage, entry) == "completed"
    assert state(hass, "sensor.sim_model_3_special_charging") == "completed"
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
    session = await plan_and_send(hass, freezer, entry)
    sessions = manager(entry)
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
    session = await plan_and_send(hass, freezer, entry)
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
    session = await plan_and_send(hass, freezer, entry)
    assert session.state is SessionState.ACTIVE
    sim.vehicle().set_app_key_paired(False)
    await advance_to(hass, freezer, CLEANUP_AT)
    assert state_of(session) is SessionState.FAILED
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
