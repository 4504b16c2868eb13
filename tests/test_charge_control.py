"""The car-control layer and the plan inputs, against the simulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.charge_control import (
    ChargeControl,
    ScheduleWindow,
    charge_schedules,
    find_session_schedule,
)
from custom_components.tesla_scout_worker.charging_needs import ChargingNeed
from custom_components.tesla_scout_worker.const import (
    CONF_BATTERY_CAPACITY,
    CONF_OFF_PEAK_END,
    CONF_OFF_PEAK_START,
)
from custom_components.tesla_scout_worker.plan_inputs import (
    SocReading,
    async_make_plan,
    validate_need,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import Simulator

WINDOW = ScheduleWindow(start=139, end=360, day_bit=1 << 4, day_name="Thursday")


def one_time(schedule_id: Any, **fields: Any) -> dict[str, Any]:
    return {
        "id": schedule_id,
        "one_time": True,
        "start_time": 139,
        "end_time": 360,
        "days_of_week": 1 << 4,
        **fields,
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, []),
        ({"charge_schedule_data": "garbage"}, []),
        ({"charge_schedule_data": {"charge_schedules": None}}, []),
        ({"charge_schedule_data": {"charge_schedules": [1, {"id": 2}]}}, [{"id": 2}]),
    ],
)
def test_charge_schedules(data: dict[str, Any], expected: list[Any]) -> None:
    assert charge_schedules(data) == expected


@pytest.mark.parametrize(
    ("schedules", "known_id", "not_ours", "expected"),
    [
        # A schedule without an id is never the session's (it used to match
        # an unknown id and then fail on the missing key).
        ([one_time(None)], None, (), None),
        ([{"one_time": True, "start_time": 139}], None, (), None),
        ([one_time(True)], None, (), None),
        # The driver's schedule that was there before the add is not ours.
        ([one_time(7)], None, (7,), None),
        ([one_time(7), one_time(9)], None, (7,), 9),
        # Another window or day is not ours either.
        ([one_time(9, start_time=140)], None, (), None),
        ([one_time(9, days_of_week=1)], None, (), None),
        ([one_time(9, one_time=False)], None, (), None),
        # A known id decides alone.
        ([one_time(7), one_time(9)], 7, (7,), 7),
        ([one_time(9)], 7, (), None),
    ],
)
def test_find_session_schedule(
    schedules: list[dict[str, Any]],
    known_id: int | None,
    not_ours: tuple[int, ...],
    expected: int | None,
) -> None:
    assert (
        find_session_schedule(schedules, WINDOW, known_id=known_id, not_ours=not_ours)
        == expected
    )


def control(entry: MockConfigEntry) -> ChargeControl:
    control: ChargeControl = entry.runtime_data.control
    return control


async def test_off_peak_sends_only_what_is_missing(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """Limit and repeating schedule are sent once; an empty window adds none."""
    car = sim.vehicle()
    vin = car.vin
    home = (hass.config.latitude, hass.config.longitude, 0.1)
    ctl = control(loaded_entry)
    car.come_online()
    data = await ctl.async_read(vin, ("charge_state", "charge_schedule_data"))
    await ctl.async_ensure_off_peak(
        vin, data, limit=car.charge_limit_soc, start=600, end=600, home=home
    )
    assert not sim.api_requests("command")

    await ctl.async_ensure_off_peak(vin, data, limit=70, start=1320, end=360, home=home)
    data = await ctl.async_read(vin, ("charge_state", "charge_schedule_data"))
    await ctl.async_ensure_off_peak(vin, data, limit=70, start=1320, end=360, home=home)
    sent = [r.path.rsplit("/", 1)[-1] for r in sim.api_requests("command")]
    assert sent == ["set_charge_limit", "add_charge_schedule"]
    assert car.charge_limit_soc == 70
    (schedule,) = car.charge_schedules
    assert (schedule["start_time"], schedule["end_time"]) == (1320, 360)
    assert schedule["days_of_week"] == 0b1111111


async def test_removing_a_schedule_already_gone(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """A schedule the car already dropped counts as removed."""
    sim.vehicle().come_online()
    await control(loaded_entry).async_remove_schedule(sim.vehicle().vin, 4711)
    (request,) = sim.api_requests("command")
    assert request.path.endswith("/remove_charge_schedule")


def need(**fields: Any) -> ChargingNeed:
    return ChargingNeed(
        vin="V",
        target_soc=fields.pop("target_soc", 80),
        ready_by=fields.pop("ready_by", dt_util.utcnow() + timedelta(hours=10)),
        **fields,
    )


@pytest.mark.parametrize(
    ("fields", "queued", "key"),
    [
        ({"mode": "cheapest"}, False, "invalid_mode"),
        ({"target_soc": 101}, False, "target_soc_out_of_range"),
        (
            {"ready_by": dt_util.utcnow() + timedelta(days=400)},
            True,
            "ready_by_queue_too_far",
        ),
    ],
)
def test_validate_need(fields: dict[str, Any], queued: bool, key: str) -> None:
    with pytest.raises(ServiceValidationError) as err:
        validate_need(need(**fields), queued=queued)
    assert err.value.translation_key == key


@pytest.mark.parametrize(
    ("options", "key"),
    [
        (
            {CONF_OFF_PEAK_START: "22:00:00", CONF_OFF_PEAK_END: "22:00:00"},
            "invalid_off_peak_window",
        ),
        ({CONF_BATTERY_CAPACITY: 0}, "invalid_capacity"),
    ],
)
async def test_plan_input_errors_ask_nothing(
    hass: HomeAssistant, options: dict[str, Any], key: str
) -> None:
    """Options the planner refuses give a translated error."""
    asked: list[str] = []

    async def soc(vin: str) -> SocReading:
        asked.append(vin)
        return SocReading(40.0)

    with pytest.raises(ServiceValidationError) as err:
        await async_make_plan(hass, options, need(mode="off_peak"), soc)
    assert err.value.translation_key == key
    assert asked == ([] if key == "invalid_off_peak_window" else ["V"])
