"""Special charging sessions against the simulator, on a frozen clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
import json
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.tesla_scout_worker.api import FleetClient
from custom_components.tesla_scout_worker.charging_needs import ChargingNeed
from custom_components.tesla_scout_worker.const import (
    CONF_BATTERY_CAPACITY,
    CONF_PRICE_ENTITY,
    DOMAIN,
)
from custom_components.tesla_scout_worker.errors import FleetUnavailableError
from custom_components.tesla_scout_worker.plan_inputs import SocReading
from custom_components.tesla_scout_worker.session_runner import EVENT_SESSION
from custom_components.tesla_scout_worker.sessions import SessionState
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import Simulator
from tesla_fleet_sim.billing import RequestRecord
from tesla_fleet_sim.config import DEFAULT_HOME
from tesla_fleet_sim.schedules import ChargeSchedule

from .common import (
    SESSIONS_STORAGE_KEY,
    advance_to,
    command_requests,
    device_id,
    placeholders,
    state,
    stored_sessions,
    stored_state,
)
from .session_common import (
    CAPACITY,
    CHARGE_END,
    CHARGE_START,
    CLEANUP_AT,
    READY_BY,
    SEND_AT,
    VIN,
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
def sim(freezer: FrozenDateTimeFactory, warsaw: None) -> Simulator:
    """A car at 41 % with a 50 % limit; 74.3 kWh, 11 kW (02:19-06:00 for 90 %)."""
    return session_sim(freezer)


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> MockConfigEntry:
    """The entry, set up with the car's capacity in the options."""
    return await set_up_entry(
        hass, config_entry, setup_entry, options={CONF_BATTERY_CAPACITY: CAPACITY}
    )


def schedule_commands(sim: Simulator) -> list[RequestRecord]:
    """Return the add_charge_schedule requests the simulator answered."""
    return command_requests(sim, "add_charge_schedule")


LIMIT = "set_charge_limit"
SCHEDULE = "add_charge_schedule"


def refused(reason: str) -> dict[str, Any]:
    """Return the body of a command the car refuses (HTTP 200, result false)."""
    return {"response": {"result": False, "reason": reason}}


async def test_plan_send_charge_cleanup(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Planned, sent at exactly send_at, charged in the window, cleaned up."""
    events = async_capture_events(hass, EVENT_SESSION)
    car = sim.vehicle()
    response = await plan(hass)
    assert response["state"] == "scheduled"
    assert response["send_at"] == SEND_AT.isoformat()
    assert response["start"] == CHARGE_START.isoformat()
    assert response["end"] == CHARGE_END.isoformat()
    assert response["cleanup_at"] == CLEANUP_AT.isoformat()
    assert VIN not in json.dumps(response)
    assert stored_state(hass_storage, entry) == "scheduled"
    assert VIN in json.dumps(
        stored_sessions(hass_storage, entry)
    )  # needed after restarts
    assert state(hass, "sensor.sim_model_3_special_charging") == "scheduled"
    send_time = state(hass, "sensor.sim_model_3_special_charging_send_time")
    assert dt_util.parse_datetime(send_time) == SEND_AT
    start = state(hass, "sensor.sim_model_3_special_charging_start")
    assert dt_util.parse_datetime(start) == CHARGE_START
    sessions = manager(entry)
    assert not entry.runtime_data.sessions.is_active(VIN)

    # The car arrives home and is plugged in after the send (no early charge).
    sim.schedule_event(local(14, 1), "plug_in")
    await advance_to(hass, freezer, SEND_AT - timedelta(seconds=1))
    assert stored_state(hass_storage, entry) == "scheduled"
    await advance_to(hass, freezer, SEND_AT)
    session = next(iter(sessions.sessions.values()))
    assert session.state is SessionState.ACTIVE
    assert session.send_started_at == SEND_AT  # lateness 0
    assert car.charge_limit_soc == 90
    schedules = car.charge_schedules
    assert len(schedules) == 1
    assert schedules[0]["one_time"] is True
    assert (schedules[0]["start_time"], schedules[0]["end_time"]) == (139, 360)
    assert schedules[0]["days_of_week"] == 1 << 4  # Thursday
    assert session.schedule_id == schedules[0]["id"]
    assert session.original_limit == 50
    assert entry.runtime_data.sessions.is_active(VIN)
    assert stored_state(hass_storage, entry) == "active"
    assert state(hass, "sensor.sim_model_3_special_charging") == "active"

    await advance_to(hass, freezer, local(14, 1, 30))
    assert car.plugged_in
    assert car.charging_state != "Charging"  # waits for the window
    await advance_to(hass, freezer, CHARGE_START + timedelta(minutes=1))
    assert car.charging_state == "Charging"
    await advance_to(hass, freezer, CHARGE_END)
    assert car.battery_level == pytest.approx(90, abs=0.01)

    await advance_to(hass, freezer, CLEANUP_AT)
    assert state_of(session) is SessionState.COMPLETED
    assert car.charge_limit_soc == 50
    assert car.charge_schedules == []
    assert stored_state(hass_storage, entry) == "completed"
    assert not entry.runtime_data.sessions.is_active(VIN)
    assert state(hass, "sensor.sim_model_3_special_charging") == "completed"
    assert [e.data["state"] for e in events] == [
        "scheduled",
        "sending",
        "active",
        "cleaning",
        "completed",
    ]
    assert all(e.data["device_id"] == device_id(hass, VIN) for e in events)
    assert VIN not in json.dumps([e.data for e in events])
    assert len(schedule_commands(sim)) == 1


async def test_daily_check_end_to_end(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Queue -> daily check 23:00 -> send 00:19 -> charge 02:19-06:00 -> 06:30."""
    car = sim.vehicle()
    response = await plan(hass, queue=True)
    assert response["queued"] is True
    assert manager(entry).sessions == {}
    assert len(stored_sessions(hass_storage, entry)["queue"]) == 1
    sim.schedule_event(local(14, 0, 45), "plug_in")
    sim.reset_accounting()

    await advance_to(hass, freezer, local(13, 23))
    (session,) = manager(entry).sessions.values()
    assert session.source == "queue"
    assert session.plan.send_at == SEND_AT
    assert stored_sessions(hass_storage, entry)["queue"] == []
    await advance_to(hass, freezer, SEND_AT)
    assert session.state is SessionState.ACTIVE
    assert session.send_started_at == SEND_AT
    await advance_to(hass, freezer, CHARGE_START + timedelta(minutes=5))
    assert car.charging_state == "Charging"
    await advance_to(hass, freezer, CLEANUP_AT)
    assert state_of(session) is SessionState.COMPLETED
    assert car.battery_level == pytest.approx(90, abs=0.01)
    assert car.charge_limit_soc == 50
    assert car.charge_schedules == []
    assert sim.ledger.counts["wake"] <= 2
    # Limit, schedule, limit: the car drops a one-time schedule when it ends.
    assert sim.ledger.counts["command"] == 3

    # The next daily check has nothing to plan.
    await advance_to(hass, freezer, local(14, 23))
    assert len(manager(entry).sessions) == 1


async def test_restart_before_send(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A reload before the send re-arms it."""
    await plan(hass)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.ACTIVE
    assert session.send_started_at == SEND_AT
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await advance_to(hass, freezer, CLEANUP_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.COMPLETED
    assert len(schedule_commands(sim)) == 1
    assert sim.vehicle().charge_limit_soc == 50
    assert sim.vehicle().charge_schedules == []


async def test_restart_while_sending(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A send cut off after adding the schedule resumes without a duplicate."""
    await plan(hass)
    client: FleetClient = entry.runtime_data.client
    original = client.async_vehicle_data
    calls = 0

    async def flaky(vin: str, endpoints: tuple[str, ...] = ()) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if endpoints == ("charge_schedule_data",):
            raise FleetUnavailableError("HTTP 503")
        return await original(vin, endpoints)

    with patch.object(client, "async_vehicle_data", flaky):
        await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.SENDING
    assert session.schedule_pending
    assert len(sim.vehicle().charge_schedules) == 1

    await advance_to(hass, freezer, SEND_AT + timedelta(minutes=1))
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.ACTIVE
    assert session.original_limit == 50  # not the 90 % already set
    assert len(schedule_commands(sim)) == 1
    assert len(sim.vehicle().charge_schedules) == 1
    await advance_to(hass, freezer, CLEANUP_AT)
    assert state_of(session) is SessionState.COMPLETED
    assert sim.vehicle().charge_limit_soc == 50
    assert sim.vehicle().charge_schedules == []


async def down_after_planning(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """Home Assistant goes down right after the plan."""


async def down_after_send(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """Sent; Home Assistant goes down while the session is active."""
    await advance_to(hass, freezer, SEND_AT)
    assert stored_state(hass_storage, entry) == "active"


async def down_while_sending(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """The send is cut off after the limit was set (the schedule gets a 503)."""
    sim.faults.fail_next("add_charge_schedule", 503)
    await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.SENDING
    assert sim.vehicle().charge_limit_soc == 90


async def down_while_cleaning(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """The cleanup is cut off (the wake-up gets a 503)."""
    await advance_to(hass, freezer, SEND_AT)
    sim.faults.fail_next("wake_up", 503)
    await advance_to(hass, freezer, CLEANUP_AT)
    assert stored_state(hass_storage, entry) == "cleaning"


@pytest.mark.parametrize(
    ("down", "back_at", "state", "reason", "limit", "schedules", "limit_commands"),
    [
        # Down over the whole window: FAILED "missed" with a repair issue.
        pytest.param(
            down_after_planning,
            local(14, 6, 5),
            SessionState.FAILED,
            "missed",
            50,
            0,
            0,
            id="planned-back_after_window-missed",
        ),
        # Down at send time but back inside the window: sent at once.
        pytest.param(
            down_after_planning,
            local(14, 3),
            SessionState.ACTIVE,
            None,
            90,
            1,
            1,
            id="planned-back_inside_window-sent_late",
        ),
        # Down over the cleanup time: the cleanup runs at startup.
        pytest.param(
            down_after_send,
            local(14, 8),
            SessionState.COMPLETED,
            None,
            50,
            0,
            2,
            id="active-back_after_cleanup_time-cleaned_up",
        ),
        # Cut off after the limit was set, down past the window: undone, FAILED.
        pytest.param(
            down_while_sending,
            local(14, 6, 5),
            SessionState.FAILED,
            "missed",
            50,
            0,
            2,
            id="sending-back_after_window-missed_and_undone",
        ),
        # A cleanup interrupted by a restart runs once at startup.
        pytest.param(
            down_while_cleaning,
            CLEANUP_AT + timedelta(minutes=2),
            SessionState.COMPLETED,
            None,
            50,
            0,
            2,
            id="cleaning-back_soon-cleaned_up",
        ),
    ],
)
async def test_restart(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    down: Callable[..., Awaitable[None]],
    back_at: datetime,
    state: SessionState,
    reason: str | None,
    limit: int,
    schedules: int,
    limit_commands: int,
) -> None:
    """Home Assistant down at some step and back later: the session catches up."""
    events = async_capture_events(hass, EVENT_SESSION)
    await plan(hass)
    await down(hass, freezer, sim, entry, hass_storage)
    await hass.config_entries.async_unload(entry.entry_id)
    freezer.move_to(back_at)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    (session,) = manager(entry).sessions.values()
    assert session.state is state
    assert session.reason == reason
    assert stored_state(hass_storage, entry) == state
    assert events[-1].data["state"] == state
    assert events[-1].data.get("reason") == reason
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    if reason is None:
        assert issue is None
    else:
        assert issue is not None
        assert issue.translation_key == f"session_failed_{reason}"
    car = sim.vehicle()
    assert car.charge_limit_soc == limit
    assert len(car.charge_schedules) == schedules
    assert len(command_requests(sim, "set_charge_limit")) == limit_commands
    if down is down_after_planning and state is SessionState.FAILED:
        assert sim.api_requests("wake") == []  # nothing was left to undo

    # The next start leaves the session alone, and so does time passing.
    requests = len(sim.api_requests())
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await advance_to(hass, freezer, back_at + timedelta(minutes=10))
    assert manager(entry).sessions[session.id].state is state
    assert len(command_requests(sim, "set_charge_limit")) == limit_commands
    assert len(schedule_commands(sim)) <= 1
    assert all(r.category != "command" for r in sim.api_requests()[requests:])


async def test_transient_failures_then_deadline(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Server errors are retried every 3 minutes until the planned start."""
    await plan(hass)
    sim.faults.api_status = 503
    await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.SENDING
    await advance_to(hass, freezer, SEND_AT + timedelta(minutes=3))
    await advance_to(hass, freezer, SEND_AT + timedelta(minutes=6))
    assert len(sim.api_requests("wake")) == 3
    assert session.state is SessionState.SENDING
    await advance_to(hass, freezer, CHARGE_START - timedelta(minutes=1))
    assert state_of(session) is SessionState.FAILED
    assert session.reason == "send_deadline"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    assert issue is not None
    assert not entry.runtime_data.sessions.is_active(VIN)


async def test_transient_failure_recovers(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """One failed wake-up and a car that wakes late are retried."""
    await plan(hass)
    sim.config.wake_delay = timedelta(minutes=2)
    sim.vehicle().fall_asleep()
    await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.SENDING  # not online after 45 s
    await advance_to(hass, freezer, SEND_AT + timedelta(minutes=4))
    assert state_of(session) is SessionState.ACTIVE


async def test_cancel_before_send(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Cancelled before the send: its trigger is gone, the car untouched."""
    response = await plan(hass)
    result = await hass.services.async_call(
        DOMAIN,
        "cancel_special_charging",
        {"session_id": response["session_id"]},
        blocking=True,
        return_response=True,
    )
    assert result is not None
    assert result["state"] == "cancelled"
    assert stored_state(hass_storage, entry) == "cancelled"
    await advance_to(hass, freezer, CLEANUP_AT)
    assert sim.api_requests("wake") == []
    assert sim.api_requests("command") == []
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "cancel_special_charging",
            {"session_id": response["session_id"]},
            blocking=True,
        )
    assert err.value.translation_key == "session_not_open"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "cancel_special_charging",
            {"device_id": device_id(hass, VIN)},
            blocking=True,
        )
    assert err.value.translation_key == "no_open_session"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "cancel_special_charging", {"session_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "session_not_found"


async def test_cancel_after_send(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Cancelled while active: limit and schedule are restored first."""
    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    assert len(sim.vehicle().charge_schedules) == 1
    result = await hass.services.async_call(
        DOMAIN,
        "cancel_special_charging",
        {"device_id": device_id(hass, VIN)},
        blocking=True,
        return_response=True,
    )
    assert result is not None
    assert result["state"] == "cancelled"
    assert sim.vehicle().charge_limit_soc == 50
    assert sim.vehicle().charge_schedules == []
    assert not entry.runtime_data.sessions.is_active(VIN)
    await advance_to(hass, freezer, CLEANUP_AT)
    removes = command_requests(sim, "remove_charge_schedule")
    assert len(removes) == 1


async def test_schedule_dropped_by_car(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A one-time schedule the car dropped itself counts as removed."""
    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    car = sim.vehicle()
    (schedule,) = car.charge_schedules
    car.remove_charge_schedule(schedule["id"])
    await advance_to(hass, freezer, CLEANUP_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.COMPLETED
    assert not command_requests(sim, "remove_charge_schedule")


async def test_replace_and_refuse(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A new plan replaces a scheduled one; an active one blocks new plans."""
    first = await plan(hass)
    second = await plan(hass, target_soc=80)
    sessions = manager(entry).sessions
    assert sessions[first["session_id"]].state is SessionState.CANCELLED
    assert sessions[first["session_id"]].reason == "replaced"
    send_at = dt_util.parse_datetime(second["send_at"])
    assert send_at is not None
    await advance_to(hass, freezer, send_at)
    assert sessions[second["session_id"]].state is SessionState.ACTIVE
    before = {k: v.as_dict() for k, v in sessions.items()}
    with pytest.raises(ServiceValidationError) as err:
        await plan(hass)
    assert err.value.translation_key == "session_active"
    assert {k: v.as_dict() for k, v in sessions.items()} == before
    with pytest.raises(ServiceValidationError) as err:
        await plan(hass, queue=True, ready_by=local(13, 20))
    assert err.value.translation_key == "ready_by_not_after_now"


async def test_bad_inputs_change_nothing(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    hass_storage: dict[str, Any],
) -> None:
    """Invalid requests give translated errors, store nothing and cost nothing."""
    # The scout knows no charge level: a valid request would ask Tesla for it.
    coordinator = entry.runtime_data.vehicles[VIN].coordinator
    coordinator.data.charge_state.clear()
    requests = len(sim.api_requests())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"ready_by": local(13, 20)}, "ready_by_not_after_now"),
        ({"ready_by": READY_BY + timedelta(days=30)}, "ready_by_too_far"),
        ({"mode": "prices"}, "price_entity_required"),
        (
            {"mode": "prices", "price_entity": "sensor.nope"},
            "price_entity_unavailable",
        ),
        ({"target_soc": 30}, "target_soc_out_of_range"),
        ({"target_soc": 49}, "target_soc_out_of_range"),
        ({"target_soc": 30, "queue": True}, "target_soc_out_of_range"),
        ({"ready_by": local(13, 20), "queue": True}, "ready_by_not_after_now"),
    ]
    for data, key in cases:
        with pytest.raises(ServiceValidationError) as err:
            await plan(hass, **data)
        assert err.value.translation_key == key, data
    assert len(sim.api_requests()) == requests  # nothing billed for bad input
    hass.states.async_set("sensor.prices", "1", {"prices": "garbage"})
    with pytest.raises(ServiceValidationError) as err:
        await plan(hass, price_entity="sensor.prices", mode=None)
    assert err.value.translation_key == "unrecognised_prices"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "plan_special_charging",
            {"device_id": "nope", "target_soc": 90, "ready_by": READY_BY},
            blocking=True,
        )
    assert err.value.translation_key == "device_not_found"
    account = device_id(hass, str(entry.unique_id))
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "list_sessions",
            {"device_id": account},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "not_a_vehicle"
    assert manager(entry).sessions == {}
    assert f"{SESSIONS_STORAGE_KEY}.{entry.entry_id}" not in hass_storage


async def test_price_mode(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """The price entity in the options plans the cheapest block."""
    slots = [
        {
            "start": (local(13, 22) + timedelta(hours=h)).isoformat(),
            "end": (local(13, 23) + timedelta(hours=h)).isoformat(),
            "value": 0.1 if h in (2, 3, 4, 5) else 0.5,
        }
        for h in range(9)
    ]
    hass.states.async_set("sensor.prices", "0.1", {"raw_today": slots})
    hass.config_entries.async_update_entry(
        entry,
        options={**entry.options, CONF_PRICE_ENTITY: "sensor.prices"},
    )
    await hass.async_block_till_done()
    response = await plan(hass, mode=None)
    assert response["mode"] == "prices"
    assert response["expected_cost"] is not None
    start = dt_util.parse_datetime(response["start"])
    assert start is not None
    assert start >= local(14, 0)


async def test_soc_unknown_when_asleep(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """Without a known SoC and with the car asleep, planning is refused."""
    sim.vehicle().fall_asleep()
    coordinator = entry.runtime_data.vehicles[VIN].coordinator
    with patch.object(coordinator, "data", None):
        with pytest.raises(ServiceValidationError) as err:
            await plan(hass)
        assert err.value.translation_key == "soc_unknown"
        assert sim.api_requests("wake") == []
        sim.vehicle().come_online()
        response = await plan(hass)
        assert response["state"] == "scheduled"
        sim.faults.fail_next("vehicle_data", 503)
        with pytest.raises(ServiceValidationError) as err:
            await plan(hass)
        assert err.value.translation_key == "soc_unknown"


async def test_list_sessions(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """list_sessions answers without VINs, for all cars or one."""
    response = await plan(hass, ready_by="2027-01-14 07:00:00")  # naive: local
    assert response["ready_by"] == READY_BY.isoformat()
    everything = await hass.services.async_call(
        DOMAIN, "list_sessions", {}, blocking=True, return_response=True
    )
    one = await hass.services.async_call(
        DOMAIN,
        "list_sessions",
        {"device_id": device_id(hass, VIN)},
        blocking=True,
        return_response=True,
    )
    assert everything == one
    assert everything is not None
    assert len(everything["sessions"]) == 1  # type: ignore[arg-type]
    assert VIN not in json.dumps(everything)


async def test_calendar_daily_check(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Calendar events with a target are planned once by the daily check."""
    from homeassistant.components.calendar import (
        DATA_COMPONENT,
        CalendarEntity,
        CalendarEvent,
    )
    from homeassistant.setup import async_setup_component

    class ChargingCalendar(CalendarEntity):
        _attr_name = "Charging"

        def __init__(self, events: list[CalendarEvent]) -> None:
            self._events = events

        @property
        def event(self) -> CalendarEvent | None:
            return None

        async def async_get_events(
            self, hass: HomeAssistant, start_date: datetime, end_date: datetime
        ) -> list[CalendarEvent]:
            return [
                e
                for e in self._events
                if e.start_datetime_local < end_date
                and e.end_datetime_local > start_date
            ]

    assert await async_setup_component(hass, "calendar", {})
    calendar = ChargingCalendar(
        [
            CalendarEvent(
                start=READY_BY,
                end=READY_BY + timedelta(hours=1),
                summary="Airport",
                description="charge to 90%",
            ),
            CalendarEvent(
                start=local(14, 9),
                end=local(14, 10),
                summary="Dentist",
            ),
        ]
    )
    await hass.data[DATA_COMPONENT].async_add_entities([calendar])
    hass.config_entries.async_update_entry(
        config_entry,
        options={
            CONF_BATTERY_CAPACITY: CAPACITY,
            "calendar_entity": "calendar.charging",
        },
    )
    await setup_entry()
    await advance_to(hass, freezer, local(13, 23))
    (session,) = manager(config_entry).sessions.values()
    assert session.source == "calendar"
    assert session.target_soc == 90
    assert session.ready_by == READY_BY
    assert session.plan.send_at == SEND_AT
    # Asked again (e.g. a second check), the same need is not planned twice.
    assert await manager(config_entry).async_daily_check() == []
    await advance_to(hass, freezer, SEND_AT)
    assert session.state is SessionState.ACTIVE
    assert await manager(config_entry).async_daily_check() == []
    assert len(manager(config_entry).sessions) == 1


async def test_daily_check_keeps_far_needs_and_handles_errors(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Far needs stay queued, bad ones are dropped, a bad calendar is logged."""
    hass.config_entries.async_update_entry(
        config_entry, options={"calendar_entity": "calendar.missing"}
    )
    await setup_entry()
    await plan(hass, queue=True, ready_by=local(20, 7))
    await plan(hass, queue=True, mode="prices")  # no price entity: dropped
    sessions = manager(config_entry)
    assert await sessions.async_daily_check() == []
    assert [n.ready_by for n in sessions.store.queue] == [local(20, 7)]
    freezer.move_to(local(21, 8))
    assert await sessions.async_daily_check() == []
    assert sessions.store.queue == []


async def test_unconfirmed_schedule_and_home_location(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A schedule missing from the read-back is retried, found, not duplicated."""
    await plan(hass)
    client: FleetClient = entry.runtime_data.client
    original = client.async_vehicle_data
    readbacks = 0

    async def patched(vin: str, endpoints: tuple[str, ...] = ()) -> dict[str, Any]:
        nonlocal readbacks
        data = await original(vin, endpoints)
        data.pop("drive_state", None)
        if endpoints == ("charge_schedule_data",):
            readbacks += 1
            if readbacks == 1:
                data["charge_schedule_data"] = {"charge_schedules": []}
        return data

    with patch.object(client, "async_vehicle_data", patched):
        await advance_to(hass, freezer, SEND_AT)
        (session,) = manager(entry).sessions.values()
        assert session.state is SessionState.SENDING
        await advance_to(hass, freezer, SEND_AT + timedelta(minutes=4))
    assert state_of(session) is SessionState.ACTIVE
    (schedule,) = sim.vehicle().charge_schedules
    assert schedule["id"] == session.schedule_id
    assert schedule["latitude"] == pytest.approx(hass.config.latitude)
    assert len(schedule_commands(sim)) == 1


@pytest.mark.parametrize(
    ("originally_enabled", "legacy_fails_once"),
    [
        pytest.param(False, False, id="fallback"),
        pytest.param(False, True, id="retried-was_off"),
        pytest.param(True, True, id="retried-was_on"),
    ],
)
async def test_legacy_fallback(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    originally_enabled: bool,
    legacy_fails_once: bool,
) -> None:
    """Firmware without charge schedules gets the scheduled charging time.

    A failed legacy start time is retried; the car's own setting is restored.
    """
    car = sim.vehicle()
    if originally_enabled:
        car.set_scheduled_charging(True, 120)
    await plan(hass)
    sim.faults.fail_next("add_charge_schedule", 200, body=refused("not supported"))
    if legacy_fails_once:
        sim.faults.fail_next("set_scheduled_charging", 503)
    await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    if legacy_fails_once:
        assert session.state is SessionState.SENDING
        await advance_to(hass, freezer, SEND_AT + timedelta(minutes=4))
    assert session.state is SessionState.ACTIVE
    assert session.legacy
    assert car.scheduled_charging == {"enabled": True, "time": 139}
    legacy = [r.status for r in command_requests(sim, "set_scheduled_charging")]
    assert legacy == [503] * legacy_fails_once + [200]
    await advance_to(hass, freezer, CLEANUP_AT)
    assert state_of(session) is SessionState.COMPLETED
    assert car.scheduled_charging["enabled"] is originally_enabled
    if originally_enabled:
        assert car.scheduled_charging["time"] == 120
    assert car.charge_limit_soc == 50


async def test_cleanup_gives_up(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An unreachable car is retried for hours, then FAILED with an issue."""
    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    sim.faults.api_status = 503
    await advance_to(hass, freezer, CLEANUP_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.CLEANING
    with pytest.raises(ServiceValidationError) as err:
        await manager(entry).async_cancel(session.id)
    assert err.value.translation_key == "session_finishing"
    await advance_to(hass, freezer, CLEANUP_AT + timedelta(minutes=5, seconds=30))
    assert session.state is SessionState.CLEANING
    await advance_to(hass, freezer, CLEANUP_AT + timedelta(hours=7))
    assert state_of(session) is SessionState.FAILED
    assert session.reason == "cleanup_deadline"
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")


@pytest.mark.parametrize(
    ("step", "command", "refusal", "state", "reason", "limit", "seen"),
    [
        # A schedule the car no longer knows counts as removed.
        pytest.param(
            "cancel",
            "remove_charge_schedule",
            "schedule not found",
            SessionState.CANCELLED,
            "cancelled",
            50,
            [LIMIT, SCHEDULE, LIMIT, "remove_charge_schedule"],
            id="cancel-schedule_not_found-cancelled",
        ),
    ],
)
async def test_command_refused(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    step: str,
    command: str,
    refusal: str,
    state: SessionState,
    reason: str | None,
    limit: int,
    seen: list[str],
) -> None:
    """The car answers a command with result false at the send, cleanup or cancel."""
    await plan(hass)
    if step != "send":
        await advance_to(hass, freezer, SEND_AT)
    sim.faults.fail_next(command, 200, body=refused(refusal))
    if step == "send":
        await advance_to(hass, freezer, SEND_AT)
    elif step == "cleanup":
        await advance_to(hass, freezer, CLEANUP_AT)
    else:
        (session,) = manager(entry).sessions.values()
        await manager(entry).async_cancel(session.id)
    (session,) = manager(entry).sessions.values()
    assert session.state is state
    assert session.reason == reason
    assert stored_state(hass_storage, entry) == state
    assert sim.vehicle().charge_limit_soc == limit
    # Every command the car got, in order; a refusal is still an HTTP 200.
    requests = command_requests(sim)
    assert [r.path.rsplit("/", 1)[-1] for r in requests] == seen
    assert {r.status for r in requests} == {200}
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    assert (issue is not None) is (state is SessionState.FAILED)


async def test_cancel_while_retrying_send(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Cancelled while a failed send waits for its retry: nothing to undo."""
    await plan(hass)
    sim.faults.fail_next("wake_up", 503)
    await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.SENDING
    await manager(entry).async_cancel(session.id)
    assert state_of(session) is SessionState.CANCELLED
    await advance_to(hass, freezer, SEND_AT + timedelta(minutes=5))
    assert len(sim.api_requests("wake")) == 1


async def test_manager_edges(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Stale triggers, unknown ids and a stopped manager do nothing."""
    sessions = manager(entry)
    assert sessions.vehicle_name("other") == "Tesla"
    with pytest.raises(ServiceValidationError) as err:
        await sessions.async_cancel("nope")
    assert err.value.translation_key == "session_not_found"
    await sessions._async_send("nope")
    await sessions._async_cleanup("nope")
    response = await plan(hass)
    await sessions.async_cancel(response["session_id"])
    await sessions._async_send(response["session_id"])
    await sessions._async_cleanup(response["session_id"])
    assert sim.api_requests("wake") == []

    client = entry.runtime_data.client
    coordinator = entry.runtime_data.vehicles[VIN].coordinator
    with (
        patch.object(coordinator, "data", None),
        patch.object(client, "async_vehicle_data", return_value={}),
        pytest.raises(ServiceValidationError) as err,
    ):
        await plan(hass)
    assert err.value.translation_key == "soc_unknown"

    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    await sessions.async_enqueue(
        ChargingNeed(vin=VIN, target_soc=80, ready_by=READY_BY)
    )
    assert await sessions.async_daily_check() == []  # the car is busy
    assert len(sessions.store.queue) == 1

    await hass.config_entries.async_unload(entry.entry_id)
    sessions.async_stop()
    sessions._send_due(response["session_id"])
    await hass.async_block_till_done(wait_background_tasks=True)


def fail_read_back(client: FleetClient) -> AbstractContextManager[object]:
    """Patch the client so the schedule read-back after an add always fails."""
    original = client.async_vehicle_data

    async def flaky(vin: str, endpoints: tuple[str, ...] = ()) -> dict[str, Any]:
        if endpoints == ("charge_schedule_data",):
            raise FleetUnavailableError("HTTP 503")
        return await original(vin, endpoints)

    return patch.object(client, "async_vehicle_data", flaky)


@pytest.mark.parametrize("ending", ["cancel", "send_deadline"])
async def test_unconfirmed_schedule_is_removed(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    ending: str,
) -> None:
    """A schedule added but never read back is found and removed at the end."""
    await plan(hass)
    with fail_read_back(entry.runtime_data.client):
        await advance_to(hass, freezer, SEND_AT)
        (session,) = manager(entry).sessions.values()
        assert session.state is SessionState.SENDING
        assert session.schedule_pending
        assert session.schedule_id is None
        assert len(sim.vehicle().charge_schedules) == 1
        if ending == "cancel":
            await hass.services.async_call(
                DOMAIN,
                "cancel_special_charging",
                {"session_id": session.id},
                blocking=True,
            )
            assert state_of(session) is SessionState.CANCELLED
        else:
            # The car stays unreachable: retried every 3 minutes until the
            # planned start, then the session fails and cleanup runs.
            sim.faults.fail_next("/vehicle_data", 503, count=1000)
            minute = 0
            while state_of(session) is SessionState.SENDING:
                minute += 3
                await advance_to(hass, freezer, SEND_AT + timedelta(minutes=minute))
            assert state_of(session) is SessionState.CLEANING
            assert SEND_AT + timedelta(minutes=minute) >= CHARGE_START - timedelta(
                minutes=3
            )
            sim.faults.clear()  # the car is back: the cleanup retry restores it
            await advance_to(hass, freezer, SEND_AT + timedelta(minutes=minute + 6))
            assert state_of(session) is SessionState.FAILED
            assert session.reason == "send_deadline"
    assert sim.vehicle().charge_schedules == []
    assert sim.vehicle().charge_limit_soc == 50
    assert len(schedule_commands(sim)) == 1


async def test_drivers_identical_schedule_is_left_alone(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The driver's own one-time schedule for the same window is never adopted."""
    car = sim.vehicle()
    car.add_charge_schedule(
        ChargeSchedule(
            id=0,
            days_of_week=1 << 4,  # Thursday
            start_enabled=True,
            start_time=139,
            end_enabled=True,
            end_time=360,
            one_time=True,
            latitude=DEFAULT_HOME.lat,
            longitude=DEFAULT_HOME.lon,
            name="mine",
        )
    )
    (drivers,) = [s["id"] for s in car.charge_schedules]
    session = await plan_and_send(hass, freezer, entry)
    assert session.state is SessionState.ACTIVE
    assert session.schedule_id not in (None, drivers)
    assert len(schedule_commands(sim)) == 1
    # At cleanup only the session's schedule goes (the car drops a one-time
    # schedule once its window ended, so cancel before that).
    await hass.services.async_call(
        DOMAIN, "cancel_special_charging", {"session_id": session.id}, blocking=True
    )
    assert [s["id"] for s in car.charge_schedules] == [drivers]


async def test_plan_waits_for_a_send_in_progress(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A new plan and a firing send of the old one do not race."""
    await plan(hass)
    (first,) = manager(entry).sessions.values()
    await advance_to(hass, freezer, SEND_AT - timedelta(seconds=30))
    release = asyncio.Event()
    sessions = manager(entry)

    async def slow_soc(vin: str) -> SocReading:
        await release.wait()
        return SocReading(41.0)

    with patch.object(sessions, "_async_current_soc", slow_soc):
        task = hass.async_create_task(plan(hass, target_soc=80))
        await asyncio.sleep(0)
        freezer.move_to(SEND_AT)
        async_fire_time_changed(hass, SEND_AT)
        await asyncio.sleep(0)
        release.set()
        response = await task
    await hass.async_block_till_done(wait_background_tasks=True)
    assert first.state is SessionState.CANCELLED
    assert first.reason == "replaced"
    assert response["state"] == "scheduled"
    assert not [r for r in sim.api_requests() if r.path.endswith("/wake_up")]


async def test_cleanup_refusal_is_retried(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A car that says no once at cleanup is asked again and put back."""
    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    sim.faults.fail_next(LIMIT, 200, body=refused("car busy"))
    await advance_to(hass, freezer, CLEANUP_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.CLEANING
    assert sim.vehicle().charge_limit_soc == 90
    await advance_to(hass, freezer, CLEANUP_AT + timedelta(minutes=6))
    assert state_of(session) is SessionState.COMPLETED
    assert sim.vehicle().charge_limit_soc == 50
    # Set to 90, refused, restored to 50.
    assert len(command_requests(sim, LIMIT)) == 3
    assert (
        ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
        is None
    )


async def test_cleanup_refused_for_hours_offers_restore(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Refused for hours: retried with backoff, then a repair restores the car."""
    await plan(hass)
    await advance_to(hass, freezer, SEND_AT)
    sim.faults.fail_next(LIMIT, 200, body=refused("car busy"), count=1000)
    await advance_to(hass, freezer, CLEANUP_AT)
    (session,) = manager(entry).sessions.values()
    when = CLEANUP_AT
    while session.state is SessionState.CLEANING:
        when += timedelta(minutes=5)
        await advance_to(hass, freezer, when)
    assert session.state is SessionState.FAILED
    assert session.reason == "cleanup_refused"
    assert timedelta(hours=5) < when - CLEANUP_AT <= timedelta(hours=7)
    # Backoff: 5, 10, 20, 40 min, then hourly; each attempt wakes the car.
    attempts = len(command_requests(sim, LIMIT)) - 1
    assert 7 <= attempts <= 10
    assert sim.vehicle().charge_limit_soc == 90
    assert session.leftovers == ("limit",)

    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "session_restore_limit"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["limit_now"] == "90"
    assert issue.translation_placeholders["limit_before"] == "50"

    # The car refuses once more: the flow says so and the issue stays.
    assert await async_setup_component(hass, "repairs", {})
    flows = repairs_flow_manager(hass)
    assert flows is not None
    fix = {"issue_id": issue.issue_id}
    flow = await flows.async_init(DOMAIN, data=fix)
    assert flow["step_id"] == "confirm"
    assert placeholders(flow)["limit_now"] == "90"
    result = await flows.async_configure(flow["flow_id"], {})
    assert result["reason"] == "restore_failed"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue.issue_id) is not None

    sim.faults.clear()
    flow = await flows.async_init(DOMAIN, data=fix)
    result = await flows.async_configure(flow["flow_id"], {})
    assert result["type"] == "create_entry"
    assert sim.vehicle().charge_limit_soc == 50
    leftovers: tuple[str, ...] = session.leftovers  # not the narrowed ("limit",)
    assert leftovers == ()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue.issue_id) is None


async def test_undo_refused_names_what_is_left(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Cancelled mid-send, the undo refused for hours: both steps are tried.

    The car drops the one-time schedule by itself once its charge is done,
    so at the end only the limit is left, and the repair says exactly that.
    """
    await plan(hass)
    with fail_read_back(entry.runtime_data.client):
        await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.SENDING
    assert session.schedule_pending
    sim.faults.fail_next(LIMIT, 200, body=refused("car busy"), count=1000)
    sim.faults.fail_next(
        "remove_charge_schedule", 200, body=refused("car busy"), count=1000
    )
    await manager(entry).async_cancel(session.id)
    assert state_of(session) is SessionState.CLEANING
    when = SEND_AT
    while session.is_open:
        when += timedelta(minutes=10)
        await advance_to(hass, freezer, when)
    assert state_of(session) is SessionState.FAILED
    removals = command_requests(sim, "remove_charge_schedule")
    assert len(removals) >= 6  # refused at every attempt while it was there
    assert sim.vehicle().charge_schedules == []
    assert session.leftovers == ("limit",)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    assert issue is not None
    assert issue.translation_key == "session_restore_limit"


@pytest.mark.parametrize(
    ("refusals", "state", "reason", "limit", "seen"),
    [
        # Refused once (a car that just woke): asked again 3 minutes later.
        (1, SessionState.ACTIVE, None, 90, [LIMIT, SCHEDULE, SCHEDULE]),
        # Refused every time: after three more tries the limit is restored.
        (
            1000,
            SessionState.FAILED,
            "command_refused",
            50,
            [LIMIT, SCHEDULE, SCHEDULE, SCHEDULE, SCHEDULE, LIMIT],
        ),
    ],
    ids=["refused_once-retried", "refused_always-failed_and_restored"],
)
async def test_send_refusal_is_retried(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    refusals: int,
    state: SessionState,
    reason: str | None,
    limit: int,
    seen: list[str],
) -> None:
    """A refused schedule at the send is tried again a few times."""
    await plan(hass)
    sim.faults.fail_next(
        SCHEDULE, 200, body=refused("could_not_wake_buses"), count=refusals
    )
    for minute in range(0, 16, 3):
        await advance_to(hass, freezer, SEND_AT + timedelta(minutes=minute))
    (session,) = manager(entry).sessions.values()
    assert session.state is state
    assert session.reason == reason
    assert sim.vehicle().charge_limit_soc == limit
    assert [r.path.rsplit("/", 1)[-1] for r in command_requests(sim)] == seen
    assert len(sim.vehicle().charge_schedules) == (
        1 if state is SessionState.ACTIVE else 0
    )
