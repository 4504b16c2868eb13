"""Session model, state machine, storage and the manager's pure helpers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from custom_components.tesla_scout_worker.charge_control import _is_unsupported
from custom_components.tesla_scout_worker.charging_needs import (
    ChargingNeed,
    calendar_needs,
    event_start as _event_start,
    target_from_text,
)
from custom_components.tesla_scout_worker.charging_plan import (
    ChargingPlan,
    OffPeakWindow,
    PlanRequest,
)
from custom_components.tesla_scout_worker.const import DOMAIN
from custom_components.tesla_scout_worker.errors import (
    CommandFailedError,
    FleetError,
    FleetUnavailableError,
)
from custom_components.tesla_scout_worker.plan_inputs import battery_level_of
from custom_components.tesla_scout_worker.planner import plan_charging
from custom_components.tesla_scout_worker.repairs import RestoreCarFlow
from custom_components.tesla_scout_worker.session_restore import (
    async_clear_issue,
    async_raise_failed_issue,
    cleanup_retry_at,
)
from custom_components.tesla_scout_worker.sessions import (
    MAX_FINISHED_SESSIONS,
    ChargingSession,
    InvalidTransitionError,
    SessionState,
    SessionStore,
)
from custom_components.tesla_scout_worker.time_of_day import (
    day_bit,
    day_name,
    minutes_after_midnight,
    parse_time_option as _parse_time,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

NOW = datetime(2027, 1, 13, 21, 30, tzinfo=UTC)


def make_plan() -> ChargingPlan:
    tz = dt_util.get_time_zone("Europe/Warsaw")
    assert tz is not None
    return plan_charging(
        PlanRequest(
            now=NOW.astimezone(tz),
            current_soc=41,
            target_soc=90,
            capacity_kwh=74.3,
            power_kw=11,
            ready_by=datetime(2027, 1, 14, 7, 0, tzinfo=tz),
            off_peak=OffPeakWindow(
                time(22, 0),
                time(6, 0),
                tz,
            ),
        )
    )


def make_session(session_id: str = "s1", **kwargs: Any) -> ChargingSession:
    plan = make_plan()
    return ChargingSession(
        id=session_id,
        vin="VIN0001",
        vehicle_name="Car",
        target_soc=90,
        ready_by=NOW + timedelta(hours=10),
        plan=plan,
        created_at=kwargs.pop("created_at", NOW),
        **kwargs,
    )


def test_plan_matches_the_design_notes() -> None:
    """41 % -> 90 % with 74.3 kWh at 11 kW: charge 02:19-06:00, send 00:19."""
    plan = make_plan()
    assert plan.start is not None
    assert plan.send_at is not None
    assert plan.cleanup_at is not None
    assert plan.start.strftime("%H:%M") == "02:19"
    assert plan.send_at.strftime("%H:%M") == "00:19"
    assert plan.cleanup_at.strftime("%H:%M") == "06:30"


def test_state_machine() -> None:
    """Allowed transitions move on and record history; others raise."""
    session = make_session()
    assert session.is_open
    assert not session.is_active
    with pytest.raises(InvalidTransitionError):
        session.transition(SessionState.ACTIVE, NOW)
    session.transition(SessionState.SENDING, NOW)
    assert bool(session.is_active)  # bool(): not the False narrowed above
    assert not session.changed_car
    session.limit_set = True
    assert bool(session.changed_car)  # bool(): not the False narrowed above
    session.transition(SessionState.ACTIVE, NOW)
    session.transition(SessionState.CLEANING, NOW)
    session.transition(SessionState.COMPLETED, NOW + timedelta(hours=1))
    assert session.finished_at == NOW + timedelta(hours=1)
    assert not bool(session.is_open)  # bool(): not the True narrowed above
    assert [h["state"] for h in session.history] == [
        "sending",
        "active",
        "cleaning",
        "completed",
    ]
    with pytest.raises(InvalidTransitionError):
        session.transition(SessionState.CANCELLED, NOW)


def test_round_trip_and_public_dict() -> None:
    """as_dict/from_dict keep everything; public_dict hides the VIN."""
    session = make_session(
        original_limit=50,
        schedule_id=7,
        outcome=SessionState.COMPLETED,
        sent_at=NOW,
        send_started_at=NOW,
        need_key="queue:x",
    )
    again = ChargingSession.from_dict(session.as_dict())
    assert again == session
    public = session.public_dict("device-1")
    assert "VIN0001" not in str(public)
    assert public["device_id"] == "device-1"
    assert public["start"] == session.plan.start.isoformat()  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="session without times"):
        ChargingSession.from_dict({**session.as_dict(), "ready_by": None})


def test_queued_need_round_trip() -> None:
    """Queued needs survive storage."""
    need = ChargingNeed(
        key="k", vin="V", target_soc=80, ready_by=NOW, mode="prices", source="queue"
    )
    assert ChargingNeed.from_dict(need.as_dict()) == need
    # Queued needs stored before needs had a source are queue needs.
    legacy = {k: v for k, v in need.as_dict().items() if k != "source"}
    assert ChargingNeed.from_dict(legacy) == need


async def test_store_load_save_prune(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Bad records are skipped on load; old finished sessions are pruned."""
    key = "tesla_scout_worker.sessions.entry1"
    good = make_session("good").as_dict()
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {
            "sessions": [good, {"id": "broken"}],
            "queue": [
                ChargingNeed(key="q", vin="V", target_soc=80, ready_by=NOW).as_dict(),
                {"key": "bad"},
            ],
            "planned_needs": ["a", "b"],
        },
    }
    store = SessionStore(hass, "entry1")
    await store.async_load()
    assert list(store.sessions) == ["good"]
    assert [n.key for n in store.queue] == ["q"]
    assert store.planned_needs == ["a", "b"]

    for index in range(MAX_FINISHED_SESSIONS + 3):
        old = make_session(f"old{index}", created_at=NOW + timedelta(minutes=index))
        old.transition(SessionState.CANCELLED, NOW + timedelta(minutes=index))
        store.sessions[old.id] = old
    await store.async_save()
    saved = hass_storage[key]["data"]["sessions"]
    ids = {s["id"] for s in saved}
    assert "good" in ids  # open sessions are kept
    assert len(ids) == MAX_FINISHED_SESSIONS + 1
    assert "old0" not in ids
    await store.async_remove()
    assert key not in hass_storage


async def test_store_empty(hass: HomeAssistant) -> None:
    """Nothing stored: empty."""
    store = SessionStore(hass, "nothing")
    await store.async_load()
    assert store.sessions == {}
    assert store.queue == []


def test_battery_level_of() -> None:
    """The SoC is read from the shapes a coordinator may hold."""
    assert battery_level_of(None) is None
    assert battery_level_of({"charge_state": {"battery_level": 41}}) == 41.0
    assert battery_level_of({"battery_level": "42"}) == 42.0
    assert battery_level_of({"charge_state": {}}) is None
    assert battery_level_of(SimpleNamespace(battery_level=43)) == 43.0
    assert battery_level_of(SimpleNamespace(charge_state={"battery_level": 44})) == 44.0
    assert battery_level_of(SimpleNamespace(charge_state=None)) is None
    assert battery_level_of({"battery_level": "full"}) is None


def test_target_from_text() -> None:
    """The first plausible percentage wins."""
    assert target_from_text("Charge 90% for the trip") == 90
    assert target_from_text("Trip: 250% no, 85 %") == 85
    assert target_from_text("Charge to 0%") is None
    assert target_from_text("Dentist") is None


async def test_local_time_helpers(hass: HomeAssistant) -> None:
    """Minutes and day bits are local (SUN=1 ... SAT=64)."""
    await hass.config.async_set_time_zone("Europe/Warsaw")
    # 2027-01-14 01:19 UTC is Thursday 02:19 in Warsaw.
    moment = datetime(2027, 1, 14, 1, 19, tzinfo=UTC)
    assert minutes_after_midnight(moment) == 139
    assert day_bit(moment) == 1 << 4
    assert day_bit(datetime(2027, 1, 17, 12, tzinfo=UTC)) == 1  # Sunday
    assert day_name(moment) == "Thursday"
    assert day_name(datetime(2027, 1, 17, 12, tzinfo=UTC)) == "Sunday"
    assert _parse_time("bogus", "23:00:00").hour == 23
    assert _parse_time(None, "06:00:00").hour == 6


def test_is_unsupported() -> None:
    """Old firmware is recognised by the reason or the error type."""
    assert _is_unsupported(CommandFailedError("add_charge_schedule", "not supported"))
    assert not _is_unsupported(CommandFailedError("add_charge_schedule", "too many"))
    assert _is_unsupported(FleetError("api_error", error="InvalidCommand"))
    assert not _is_unsupported(FleetError("api_error", error="Forbidden"))
    assert not _is_unsupported(FleetUnavailableError("HTTP 503"))
    assert not _is_unsupported(FleetError())


async def test_event_start_and_calendar_needs(hass: HomeAssistant) -> None:
    """Event starts parse from datetimes, strings and dates."""
    await hass.config.async_set_time_zone("Europe/Warsaw")
    assert _event_start(None) is None
    assert _event_start("not a date") is None
    aware = datetime(2027, 1, 14, 7, tzinfo=UTC)
    assert _event_start(aware) == aware
    assert _event_start("2027-01-14T07:00:00+00:00") == aware
    naive = _event_start("2027-01-14T08:00:00")
    assert naive is not None
    assert naive.utcoffset() == timedelta(hours=1)
    day = _event_start("2027-01-15")
    assert day is not None
    assert (day.hour, day.utcoffset()) == (0, timedelta(hours=1))

    vehicles = {"VIN1": "Red", "VIN2": "Blue"}
    events = [
        {"summary": "Trip 90%", "start": "2027-01-14T07:00:00+01:00"},
        {"summary": "Blue", "description": "charge 80 %", "start": aware},
        {"summary": "No target", "start": "2027-01-14T09:00:00+01:00"},
        {"summary": "Past 70%", "start": "2027-01-13T09:00:00+01:00"},
        "garbage",
    ]
    needs = calendar_needs("calendar.c", events, vehicles, NOW)
    assert [(n.vin, n.target_soc) for n in needs] == [("VIN1", 90), ("VIN2", 80)]
    assert needs[0].key != needs[1].key
    assert {n.source for n in needs} == {"calendar"}
    assert calendar_needs("calendar.c", events, {}, NOW) == []


async def test_default_wait_sleeps() -> None:
    """The production wait is a plain sleep."""
    from custom_components.tesla_scout_worker.charge_control import async_wait

    await async_wait(0)


def test_is_unsupported_other_errors() -> None:
    """Errors that are not Fleet errors never mean old firmware."""
    from homeassistant.exceptions import HomeAssistantError

    assert not _is_unsupported(HomeAssistantError())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "left", "key"),
    [
        (
            {"limit_set": True, "original_limit": 80},
            ("limit",),
            "session_restore_limit",
        ),
        ({"schedule_id": 7}, ("schedule",), "session_restore_schedule"),
        ({"legacy": True}, ("schedule",), "session_restore_schedule"),
        (
            {"limit_set": True, "original_limit": 80, "schedule_pending": True},
            ("limit", "schedule"),
            "session_restore_both",
        ),
        (
            {"limit_set": True, "original_limit": 80, "limit_restored": True},
            (),
            "session_failed_cleanup_refused",
        ),
        (
            {"schedule_id": 7, "schedule_removed": True},
            (),
            "session_failed_cleanup_refused",
        ),
    ],
)
async def test_failed_issue_names_what_is_left(
    hass: HomeAssistant, changes: dict[str, Any], left: tuple[str, ...], key: str
) -> None:
    """The repair of a failed session says what is still changed on the car."""
    session = make_session(
        state=SessionState.FAILED, reason="cleanup_refused", **changes
    )
    assert session.leftovers == left
    async_raise_failed_issue(hass, "entry", session)
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    assert issue is not None
    assert issue.translation_key == key
    assert issue.is_fixable is bool(left)
    if left:
        assert issue.data == {"entry_id": "entry", "session_id": session.id}
    async_clear_issue(hass, session)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue.issue_id) is None


def test_cleanup_backoff_gives_up_after_hours() -> None:
    """Waits of 5, 10, 20, 40 minutes, then hourly; none after 6 hours."""
    session = make_session(cleanup_started_at=NOW)
    now = NOW
    waits = []
    while (retry := cleanup_retry_at(session, now)) is not None:
        waits.append(int((retry - now).total_seconds() // 60))
        now = retry
    assert waits[:5] == [5, 10, 20, 40, 60]
    assert set(waits[5:]) == {60}
    assert now - NOW <= timedelta(hours=6)
    assert session.cleanup_attempts == len(waits) + 1


async def test_restore_flow_without_issue_or_entry(hass: HomeAssistant) -> None:
    """The restore flow copes with a deleted issue and an unloaded account."""
    flow = RestoreCarFlow("no-such-entry", "s1")
    flow.hass = hass
    flow.handler = DOMAIN
    flow.context = {"issue_id": "session_failed_s1"}
    form = await flow.async_step_init()
    assert form["step_id"] == "confirm"
    assert form["description_placeholders"] == {}
    result = await flow.async_step_confirm({})
    assert result["reason"] == "entry_not_loaded"
