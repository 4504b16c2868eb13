"""Special charging sessions: plan, send on time, clean up, survive restarts.

The manager arms two one-shot timers per session (``async_track_point_in_time``):
the send at ``plan.send_at`` and the cleanup at ``plan.cleanup_at``. Nothing
polls. Every car operation of one vehicle runs under that vehicle's lock, and
every state change is saved before the commands it guards, so a restart at any
moment resumes the session without a duplicate schedule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
import re
from typing import Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import (
    async_track_point_in_time,
    async_track_time_change,
)
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid_now

from .api import (
    CommandFailedError,
    FleetError,
    FleetUnavailableError,
    RateLimitedError,
    VehicleAsleepError,
)
from .const import (
    CONF_BATTERY_CAPACITY,
    CONF_CALENDAR_ENTITY,
    CONF_CHARGING_POWER,
    CONF_DAILY_CHECK_TIME,
    CONF_LEAD_TIME,
    CONF_OFF_PEAK_END,
    CONF_OFF_PEAK_START,
    CONF_PRICE_ENTITY,
    DEFAULT_BATTERY_CAPACITY,
    DEFAULT_CHARGING_POWER,
    DEFAULT_DAILY_CHECK_TIME,
    DEFAULT_LEAD_TIME,
    DEFAULT_OFF_PEAK_END,
    DEFAULT_OFF_PEAK_START,
    DOMAIN,
    LOGGER,
)
from .listeners import Listeners
from .models import TeslaConfigEntry
from .planner import (
    MODE_DEADLINE,
    MODE_OFF_PEAK,
    MODE_PRICES,
    ChargingPlan,
    OffPeakWindow,
    PlanInputError,
    PlanRequest,
    PriceSlot,
    parse_price_series,
    plan_charging,
)
from .sessions import (
    REASON_CANCELLED,
    REASON_CLEANUP_DEADLINE,
    REASON_CLEANUP_REFUSED,
    REASON_COMMAND_REFUSED,
    REASON_MISSED,
    REASON_REPLACED,
    REASON_SEND_DEADLINE,
    ChargingSession,
    QueuedNeed,
    SessionState,
    SessionStore,
)
from .token_manager import TokenUnavailableError

EVENT_SESSION: Final = f"{DOMAIN}_session"
ISSUE_SESSION_FAILED: Final = "session_failed"

SEND_RETRY_INTERVAL: Final = timedelta(minutes=3)
CLEANUP_RETRY_INTERVAL: Final = timedelta(minutes=5)
CLEANUP_GIVE_UP_AFTER: Final = timedelta(hours=6)
WAKE_POLL_DELAYS: Final = (5.0, 10.0, 15.0, 15.0)
"""Seconds between state checks after wake_up (like HA core: 5/10/15 s)."""
PLANNING_HORIZON: Final = timedelta(hours=36)
CHARGE_LIMIT_MIN: Final = 50
CHARGE_LIMIT_MAX: Final = 100
MINUTES_PER_DAY: Final = 24 * 60
SEND_ENDPOINTS: Final = (
    "charge_state",
    "charge_schedule_data",
    "drive_state",
    "location_data",
)
CLEANUP_ENDPOINTS: Final = ("charge_state", "charge_schedule_data")
SCHEDULES_ENDPOINTS: Final = ("charge_schedule_data",)
ALREADY_SET: Final = "already_set"
SCHEDULE_GONE: Final = ("not found", "not_found", "no schedule", "does not exist")
UNSUPPORTED_HINTS: Final = (
    "not supported",
    "not_supported",
    "unsupported",
    "unknown command",
    "invalid_command",
    "invalidcommand",
    "upgrade",
)
UNSUPPORTED_ERRORS: Final = ("InvalidCommand", "UnsupportedVehicle", "NotFound")
TARGET_PATTERN: Final = re.compile(r"(?<!\d)(\d{1,3})\s*%")
ONLINE: Final = "online"

MODES: Final = (MODE_OFF_PEAK, MODE_PRICES, MODE_DEADLINE)

type WaitFunction = Callable[[float], Awaitable[None]]


async def async_wait(seconds: float) -> None:
    """Wait between wake-up checks (tests replace this to move a frozen clock)."""
    await asyncio.sleep(seconds)


class NotAwakeError(HomeAssistantError):
    """The car did not come online after wake_up."""


class ScheduleNotConfirmedError(HomeAssistantError):
    """The schedule was accepted but is not in the car's list."""


TRANSIENT_ERRORS: Final = (
    FleetUnavailableError,
    RateLimitedError,
    VehicleAsleepError,
    TokenUnavailableError,
    NotAwakeError,
    ScheduleNotConfirmedError,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionRequest:
    """What a session is asked to achieve."""

    vin: str
    target_soc: int
    ready_by: datetime
    mode: str | None = None
    price_entity: str | None = None
    continuous: bool = True
    source: str = "action"
    need_key: str | None = None


def validation_error(
    key: str, placeholders: Mapping[str, str] | None = None
) -> ServiceValidationError:
    """Return a translated validation error."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=dict(placeholders) if placeholders else None,
    )


def battery_level_of(data: Any) -> float | None:
    """Return the battery level from a coordinator's data, if it has one.

    Accepts vehicle_data-shaped mappings (``charge_state.battery_level``), flat
    mappings and objects with a ``battery_level`` or ``charge_state`` attribute.
    """
    if data is None:
        return None
    if isinstance(data, Mapping):
        charge = data.get("charge_state")
        value = (
            charge.get("battery_level")
            if isinstance(charge, Mapping)
            else data.get("battery_level")
        )
    else:
        value = getattr(data, "battery_level", None)
        charge = getattr(data, "charge_state", None)
        if value is None and isinstance(charge, Mapping):
            value = charge.get("battery_level")
    try:
        return None if value is None else float(value)
    except TypeError, ValueError:
        return None


def target_from_text(text: str) -> int | None:
    """Return the first percentage 1..100 in ``text`` (e.g. "Charge 90%")."""
    for match in TARGET_PATTERN.finditer(text):
        value = int(match.group(1))
        if 0 < value <= CHARGE_LIMIT_MAX:
            return value
    return None


def minutes_after_midnight(moment: datetime) -> int:
    """Return local minutes after midnight of ``moment`` (HA's time zone)."""
    local = dt_util.as_local(moment)
    return local.hour * 60 + local.minute


def day_bit(moment: datetime) -> int:
    """Return the days_of_week bit of the local day (SUN=1, MON=2 ... SAT=64)."""
    return 1 << ((dt_util.as_local(moment).weekday() + 1) % 7)


def _is_unsupported(err: HomeAssistantError) -> bool:
    """Whether a failed add_charge_schedule means old firmware."""
    if isinstance(err, CommandFailedError):
        reason = err.reason.lower()
        return any(hint in reason for hint in UNSUPPORTED_HINTS)
    if isinstance(err, FleetError):
        error = (err.translation_placeholders or {}).get("error", "")
        return error in UNSUPPORTED_ERRORS
    return False


def _parse_time(value: Any, default: str) -> time:
    parsed = dt_util.parse_time(str(value or default))
    if parsed is None:
        parsed = dt_util.parse_time(default)
    assert parsed is not None  # noqa: S101 - the defaults are valid times
    return parsed


class SessionManager:
    """Runs the special charging sessions of one config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: TeslaConfigEntry,
        *,
        wait: WaitFunction | None = None,
    ) -> None:
        """Initialize; ``wait`` replaces the sleep between wake-up checks."""
        self.hass = hass
        self.entry = entry
        self.store = SessionStore(hass, entry.entry_id)
        self._wait = wait
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners = Listeners()
        self._unsub_daily: CALLBACK_TYPE | None = None
        self._stopped = False

    # ------------------------------------------------------------ lifecycle

    @property
    def sessions(self) -> dict[str, ChargingSession]:
        """All known sessions by id."""
        return self.store.sessions

    async def async_load(self) -> None:
        """Load the stored sessions."""
        await self.store.async_load()

    async def async_start(self) -> None:
        """Re-arm triggers, run what was missed and arm the daily check."""
        now = dt_util.utcnow()
        for session in list(self.sessions.values()):
            await self._async_recover(session, now)
        check = _parse_time(
            self.entry.options.get(CONF_DAILY_CHECK_TIME), DEFAULT_DAILY_CHECK_TIME
        )
        self._unsub_daily = async_track_time_change(
            self.hass,
            self._daily_check_due,
            hour=check.hour,
            minute=check.minute,
            second=check.second,
        )

    @callback
    def async_stop(self) -> None:
        """Cancel every timer (the entry unloads)."""
        self._stopped = True
        for unsub in self._timers.values():
            unsub()
        self._timers.clear()
        if self._unsub_daily is not None:
            self._unsub_daily()
            self._unsub_daily = None

    async def _async_recover(self, session: ChargingSession, now: datetime) -> None:
        """Bring one stored session back to life after a (re)start."""
        plan = session.plan
        state = session.state
        if state in (SessionState.SCHEDULED, SessionState.SENDING):
            end = plan.end or session.ready_by
            if now < end:
                send_at = plan.send_at or now
                self._arm(session, max(send_at, now), self._send_due)
            elif session.changed_car:
                await self._async_begin_cleanup(
                    session, SessionState.FAILED, REASON_MISSED
                )
                self._start_cleanup(session.id)
            else:
                await self._async_fail(session, REASON_MISSED)
        elif state is SessionState.ACTIVE:
            self._arm(session, plan.cleanup_at or now, self._cleanup_due)
        elif state is SessionState.CLEANING:
            self._start_cleanup(session.id)

    # ------------------------------------------------------------ queries

    def is_active(self, vin: str) -> bool:
        """Whether a session owns the car (sending, active or cleaning)."""
        return any(s.vin == vin and s.is_active for s in self.sessions.values())

    def open_session(self, vin: str) -> ChargingSession | None:
        """Return the car's open session (there is at most one)."""
        return next(
            (s for s in self.sessions.values() if s.vin == vin and s.is_open), None
        )

    def latest_session(self, vin: str) -> ChargingSession | None:
        """Return the car's open session, else its most recent one."""
        if (session := self.open_session(vin)) is not None:
            return session
        mine = [s for s in self.sessions.values() if s.vin == vin]
        return max(mine, key=lambda s: s.created_at) if mine else None

    def vehicle_name(self, vin: str) -> str:
        """Return the display name of a car (never its VIN)."""
        for vehicle in self.entry.runtime_data.vehicles:
            if vehicle.get("vin") == vin:
                return str(vehicle.get("display_name") or "Tesla")
        return "Tesla"

    def device_id(self, vin: str) -> str | None:
        """Return the id of the car's device, if it exists."""
        device = dr.async_get(self.hass).async_get_device_by_identifier(
            (DOMAIN, vin), self.entry.entry_id
        )
        return None if device is None else device.id

    def public_sessions(self, vin: str | None = None) -> list[dict[str, Any]]:
        """Return the sessions (newest first) without VINs."""
        chosen = [s for s in self.sessions.values() if vin is None or s.vin == vin]
        chosen.sort(key=lambda s: s.created_at, reverse=True)
        return [s.public_dict(self.device_id(s.vin)) for s in chosen]

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``listener`` after every change; returns the remover."""
        return self._listeners.add(listener)

    # ------------------------------------------------------------ planning

    async def async_plan(self, request: SessionRequest) -> ChargingSession:
        """Plan and schedule a session; a validation error changes nothing."""
        existing = self.open_session(request.vin)
        if existing is not None and existing.is_active:
            raise validation_error(
                "session_active", {"vehicle": self.vehicle_name(request.vin)}
            )
        plan = await self._async_make_plan(request)
        if plan.start is None or plan.end is None:
            raise validation_error(
                "nothing_to_charge", {"reason": str(plan.reason or "-")}
            )
        now = dt_util.utcnow()
        if existing is not None:
            self._disarm(existing.id)
            existing.transition(SessionState.CANCELLED, now, REASON_REPLACED)
        session = ChargingSession(
            id=f"session_{ulid_now().lower()}",
            vin=request.vin,
            vehicle_name=self.vehicle_name(request.vin),
            target_soc=request.target_soc,
            ready_by=request.ready_by,
            plan=plan,
            created_at=now,
            source=request.source,
            need_key=request.need_key,
            updated_at=now,
            history=[{"state": str(SessionState.SCHEDULED), "at": now.isoformat()}],
        )
        self.sessions[session.id] = session
        if request.need_key is not None:
            self.store.planned_needs.append(request.need_key)
        await self.store.async_save()
        if existing is not None:
            self._announce(existing)
        self._announce(session)
        self._arm(session, plan.send_at or now, self._send_due)
        LOGGER.info(
            "Special charging for %s planned: send %s, charge %s-%s",
            session.vehicle_name,
            plan.send_at,
            plan.start,
            plan.end,
        )
        return session

    async def _async_make_plan(self, request: SessionRequest) -> ChargingPlan:
        """Build the planner request from options and state, and plan."""
        options = self.entry.options
        tz = dt_util.get_default_time_zone()
        mode = request.mode
        price_entity = request.price_entity or options.get(CONF_PRICE_ENTITY)
        if mode is None:
            mode = MODE_PRICES if price_entity else MODE_OFF_PEAK
        prices: list[PriceSlot] | None = None
        if mode == MODE_PRICES:
            prices = self._prices(price_entity)
        current_soc = await self._async_current_soc(request.vin)
        try:
            window = None
            if mode == MODE_OFF_PEAK:
                window = OffPeakWindow(
                    _parse_time(
                        options.get(CONF_OFF_PEAK_START), DEFAULT_OFF_PEAK_START
                    ),
                    _parse_time(options.get(CONF_OFF_PEAK_END), DEFAULT_OFF_PEAK_END),
                    tz,
                )
            plan_request = PlanRequest(
                now=dt_util.now(),
                current_soc=current_soc,
                target_soc=float(request.target_soc),
                capacity_kwh=float(
                    options.get(CONF_BATTERY_CAPACITY, DEFAULT_BATTERY_CAPACITY)
                ),
                power_kw=float(
                    options.get(CONF_CHARGING_POWER, DEFAULT_CHARGING_POWER)
                ),
                ready_by=request.ready_by,
                lead_time=timedelta(
                    minutes=float(options.get(CONF_LEAD_TIME, DEFAULT_LEAD_TIME))
                ),
                off_peak=window,
                prices=prices,
                continuous=request.continuous,
            )
            return plan_charging(plan_request)
        except PlanInputError as err:
            raise validation_error(err.key) from err

    def _prices(self, entity_id: str | None) -> list[PriceSlot]:
        """Parse the price entity's attributes."""
        if not entity_id:
            raise validation_error("price_entity_required")
        state = self.hass.states.get(entity_id)
        if state is None:
            raise validation_error("price_entity_unavailable", {"entity": entity_id})
        try:
            return parse_price_series(
                dict(state.attributes), dt_util.get_default_time_zone()
            )
        except PlanInputError as err:
            raise validation_error(err.key) from err

    async def _async_current_soc(self, vin: str) -> float:
        """Return the last known SoC; never wake the car for planning."""
        coordinator = self.entry.runtime_data.coordinators.get(vin)
        level = battery_level_of(getattr(coordinator, "data", None))
        if level is not None:
            return level
        client = self.entry.runtime_data.client
        vehicle = self.vehicle_name(vin)
        try:
            summary = await client.async_vehicle_state(vin)
            if summary.get("state") != ONLINE:
                raise validation_error("soc_unknown", {"vehicle": vehicle})
            data = await client.async_vehicle_data(vin, ("charge_state",))
        except ServiceValidationError:
            raise
        except HomeAssistantError as err:
            raise validation_error("soc_unknown", {"vehicle": vehicle}) from err
        level = battery_level_of(data)
        if level is None:
            raise validation_error("soc_unknown", {"vehicle": vehicle})
        return level

    # ------------------------------------------------------------ queue

    async def async_enqueue(self, request: SessionRequest) -> QueuedNeed:
        """Queue a need for the daily check."""
        if dt_util.as_utc(request.ready_by) <= dt_util.utcnow():
            raise validation_error("ready_by_not_after_now")
        need = QueuedNeed(
            key=f"queue:{ulid_now().lower()}",
            vin=request.vin,
            target_soc=request.target_soc,
            ready_by=request.ready_by,
            mode=request.mode,
            price_entity=request.price_entity,
            continuous=request.continuous,
        )
        self.store.queue.append(need)
        await self.store.async_save()
        return need

    # ------------------------------------------------------------ cancel

    async def async_cancel(self, session_id: str) -> ChargingSession:
        """Cancel a session; after the send the car is restored first."""
        session = self.sessions.get(session_id)
        if session is None:
            raise validation_error("session_not_found", {"session_id": session_id})
        async with self._lock(session.vin):
            if not session.is_open:
                raise validation_error("session_not_open", {"session_id": session_id})
            if session.state is SessionState.CLEANING:
                raise validation_error("session_finishing", {"session_id": session_id})
            self._disarm(session.id)
            if session.state is SessionState.SCHEDULED:
                session.transition(
                    SessionState.CANCELLED, dt_util.utcnow(), REASON_CANCELLED
                )
                await self.store.async_save()
                self._announce(session)
                return session
            await self._async_begin_cleanup(
                session, SessionState.CANCELLED, REASON_CANCELLED
            )
            await self._async_cleanup_locked(session)
        return session

    # ------------------------------------------------------------ timers

    @callback
    def _arm(
        self,
        session: ChargingSession,
        when: datetime,
        action: Callable[[str], None],
    ) -> None:
        """Arm the one timer of a session; run at once when already due."""
        self._disarm(session.id)
        session_id = session.id
        if when <= dt_util.utcnow():
            action(session_id)
            return

        @callback
        def fire(_now: datetime) -> None:
            self._timers.pop(session_id, None)
            action(session_id)

        self._timers[session_id] = async_track_point_in_time(self.hass, fire, when)

    @callback
    def _disarm(self, session_id: str) -> None:
        if (unsub := self._timers.pop(session_id, None)) is not None:
            unsub()

    @callback
    def _send_due(self, session_id: str) -> None:
        self._background(self._async_send(session_id), f"send {session_id}")

    @callback
    def _cleanup_due(self, session_id: str) -> None:
        self._background(self._async_cleanup(session_id), f"cleanup {session_id}")

    @callback
    def _start_cleanup(self, session_id: str) -> None:
        self._cleanup_due(session_id)

    @callback
    def _daily_check_due(self, _now: datetime) -> None:
        self._background(self.async_daily_check(), "daily check")

    def _background(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        if self._stopped:
            coro.close()
            return
        self.entry.async_create_background_task(self.hass, coro, f"{DOMAIN} {name}")

    def _lock(self, vin: str) -> asyncio.Lock:
        return self._locks.setdefault(vin, asyncio.Lock())

    # ------------------------------------------------------------ send

    async def _async_send(self, session_id: str) -> None:
        """Send the plan to the car (the send trigger and its retries)."""
        session = self.sessions.get(session_id)
        if session is None:
            return
        async with self._lock(session.vin):
            if session.state not in (SessionState.SCHEDULED, SessionState.SENDING):
                return
            now = dt_util.utcnow()
            if session.state is SessionState.SCHEDULED:
                session.send_started_at = now
                await self._async_transition(session, SessionState.SENDING)
            try:
                await self._async_send_steps(session)
            except TRANSIENT_ERRORS as err:
                await self._async_send_retry_or_fail(session, err)
                return
            except HomeAssistantError as err:
                LOGGER.warning(
                    "Special charging for %s: the car refused the plan: %s",
                    session.vehicle_name,
                    err,
                )
                await self._async_send_failed(session, REASON_COMMAND_REFUSED)
                return
            session.sent_at = dt_util.utcnow()
            await self._async_transition(session, SessionState.ACTIVE)
            self._arm(
                session, session.plan.cleanup_at or session.sent_at, self._cleanup_due
            )

    def _send_deadline(self, session: ChargingSession) -> datetime:
        """Until when a failed send is retried: the planned start.

        A send that only began after the start (after a restart) may still be
        retried until the planned end.
        """
        plan = session.plan
        start = plan.start or session.ready_by
        end = plan.end or session.ready_by
        began = session.send_started_at or session.created_at
        return start if began < start else end

    async def _async_send_retry_or_fail(
        self, session: ChargingSession, err: HomeAssistantError
    ) -> None:
        retry_at = dt_util.utcnow() + SEND_RETRY_INTERVAL
        if retry_at >= self._send_deadline(session):
            LOGGER.warning(
                "Special charging for %s: could not send the plan before its start: %s",
                session.vehicle_name,
                err,
            )
            await self._async_send_failed(session, REASON_SEND_DEADLINE)
            return
        LOGGER.info(
            "Special charging for %s: send failed (%s); retrying at %s",
            session.vehicle_name,
            err,
            retry_at,
        )
        self._arm(session, retry_at, self._send_due)

    async def _async_send_failed(self, session: ChargingSession, reason: str) -> None:
        """Fail the send; undo first when something was changed on the car."""
        if session.changed_car:
            await self._async_begin_cleanup(session, SessionState.FAILED, reason)
            await self._async_cleanup_locked(session)
        else:
            await self._async_fail(session, reason)

    async def _async_send_steps(self, session: ChargingSession) -> None:
        """Wake, remember the original limit, set the limit and the schedule."""
        client = self.entry.runtime_data.client
        vin = session.vin
        await self._async_wake(vin)
        data = await client.async_vehicle_data(vin, SEND_ENDPOINTS)
        charge = dict(data.get("charge_state") or {})
        if session.original_limit is None:
            session.original_limit = int(charge.get("charge_limit_soc") or 0) or None
            session.original_legacy = {
                "enabled": charge.get("scheduled_charging_mode") == "StartAt",
                "time": charge.get("scheduled_charging_start_time_app"),
            }
            await self.store.async_save()
        target = min(max(session.target_soc, CHARGE_LIMIT_MIN), CHARGE_LIMIT_MAX)
        if charge.get("charge_limit_soc") != target:
            if not session.limit_set:
                session.limit_set = True
                await self.store.async_save()
            await self._async_command_ok(vin, "set_charge_limit", percent=target)
        await self._async_ensure_schedule(session, data)

    async def _async_ensure_schedule(
        self, session: ChargingSession, data: Mapping[str, Any]
    ) -> None:
        """Make sure exactly one schedule of this session is on the car."""
        client = self.entry.runtime_data.client
        vin = session.vin
        plan = session.plan
        assert plan.start is not None  # noqa: S101 - sessions have a window
        assert plan.end is not None  # noqa: S101
        start = minutes_after_midnight(plan.start)
        if session.legacy:
            await self._async_command_ok(
                vin, "set_scheduled_charging", enable=True, time=start
            )
            return
        end = minutes_after_midnight(plan.end)
        bit = day_bit(plan.start)
        schedules = _schedules(data)
        found = self._find_schedule(session, schedules, start, end, bit)
        if found is not None:
            await self._async_set_schedule_id(session, found)
            return
        session.schedule_pending = True
        await self.store.async_save()
        lat, lon = self._location(data)
        try:
            await client.async_command(
                vin,
                "add_charge_schedule",
                days_of_week=bit,
                enabled=True,
                lat=lat,
                lon=lon,
                start_time=start,
                end_time=end,
                one_time=True,
                name="Special charging",
            )
        except (CommandFailedError, FleetError) as err:
            if isinstance(err, TRANSIENT_ERRORS) or not _is_unsupported(err):
                raise
            LOGGER.info(
                "Special charging for %s: charge schedules are not supported; "
                "using the scheduled charging start time",
                session.vehicle_name,
            )
            session.legacy = True
            await self.store.async_save()
            await self._async_command_ok(
                vin, "set_scheduled_charging", enable=True, time=start
            )
            return
        readback = await client.async_vehicle_data(vin, SCHEDULES_ENDPOINTS)
        found = self._find_schedule(session, _schedules(readback), start, end, bit)
        if found is None:
            raise ScheduleNotConfirmedError("the new schedule is not listed")
        await self._async_set_schedule_id(session, found)

    @staticmethod
    def _find_schedule(
        session: ChargingSession,
        schedules: list[dict[str, Any]],
        start: int,
        end: int,
        bit: int,
    ) -> int | None:
        """Return the id of this session's schedule in the car's list."""
        for schedule in schedules:
            if schedule.get("id") == session.schedule_id or (
                schedule.get("one_time")
                and schedule.get("start_time") == start
                and schedule.get("end_time") == end
                and int(schedule.get("days_of_week") or 0) & bit
            ):
                return int(schedule["id"])
        return None

    async def _async_set_schedule_id(
        self, session: ChargingSession, schedule_id: int
    ) -> None:
        session.schedule_id = schedule_id
        session.schedule_pending = False
        await self.store.async_save()

    def _location(self, data: Mapping[str, Any]) -> tuple[float, float]:
        """Return where the car is (home when the car does not say)."""
        drive = data.get("drive_state") or {}
        lat = drive.get("latitude")
        lon = drive.get("longitude")
        if lat is None or lon is None:
            return self.hass.config.latitude, self.hass.config.longitude
        return float(lat), float(lon)

    # ------------------------------------------------------------ cleanup

    async def _async_begin_cleanup(
        self, session: ChargingSession, outcome: SessionState, reason: str | None
    ) -> None:
        """Enter CLEANING (saved) with the state it will end in."""
        session.outcome = outcome
        session.outcome_reason = reason
        session.cleanup_started_at = dt_util.utcnow()
        await self._async_transition(session, SessionState.CLEANING)

    async def _async_cleanup(self, session_id: str) -> None:
        """Run the cleanup trigger, a resumed cleanup or one of its retries."""
        session = self.sessions.get(session_id)
        if session is None:
            return
        async with self._lock(session.vin):
            if session.state is SessionState.ACTIVE:
                await self._async_begin_cleanup(session, SessionState.COMPLETED, None)
            if session.state is SessionState.CLEANING:
                await self._async_cleanup_locked(session)

    async def _async_cleanup_locked(self, session: ChargingSession) -> None:
        """Restore the car, then finish; retried when the car is unreachable."""
        try:
            await self._async_cleanup_steps(session)
        except TRANSIENT_ERRORS as err:
            started = session.cleanup_started_at or dt_util.utcnow()
            retry_at = dt_util.utcnow() + CLEANUP_RETRY_INTERVAL
            if retry_at - started > CLEANUP_GIVE_UP_AFTER:
                LOGGER.warning(
                    "Special charging for %s: could not restore the car: %s",
                    session.vehicle_name,
                    err,
                )
                await self._async_finish(
                    session, SessionState.FAILED, REASON_CLEANUP_DEADLINE
                )
                return
            LOGGER.info(
                "Special charging for %s: cleanup failed (%s); retrying at %s",
                session.vehicle_name,
                err,
                retry_at,
            )
            self._arm(session, retry_at, self._cleanup_due)
            return
        except HomeAssistantError as err:
            LOGGER.warning(
                "Special charging for %s: the car refused the cleanup: %s",
                session.vehicle_name,
                err,
            )
            await self._async_finish(
                session, SessionState.FAILED, REASON_CLEANUP_REFUSED
            )
            return
        await self._async_finish(
            session, session.outcome or SessionState.COMPLETED, session.outcome_reason
        )

    async def _async_cleanup_steps(self, session: ChargingSession) -> None:
        """Restore the original limit and remove the schedule."""
        client = self.entry.runtime_data.client
        vin = session.vin
        if not session.changed_car:
            return
        await self._async_wake(vin)
        data = await client.async_vehicle_data(vin, CLEANUP_ENDPOINTS)
        charge = data.get("charge_state") or {}
        original = session.original_limit
        if original is not None and charge.get("charge_limit_soc") != original:
            await self._async_command_ok(vin, "set_charge_limit", percent=original)
        if session.legacy:
            legacy = session.original_legacy or {}
            if legacy.get("enabled") and legacy.get("time") is not None:
                await self._async_command_ok(
                    vin, "set_scheduled_charging", enable=True, time=legacy["time"]
                )
            else:
                start = session.plan.start or session.ready_by
                await self._async_command_ok(
                    vin,
                    "set_scheduled_charging",
                    enable=False,
                    time=minutes_after_midnight(start),
                )
        ids = {schedule.get("id") for schedule in _schedules(data)}
        if session.schedule_id is not None and session.schedule_id in ids:
            try:
                await client.async_command(
                    vin, "remove_charge_schedule", id=session.schedule_id
                )
            except CommandFailedError as err:
                if not any(hint in err.reason.lower() for hint in SCHEDULE_GONE):
                    raise

    async def _async_finish(
        self, session: ChargingSession, state: SessionState, reason: str | None
    ) -> None:
        await self._async_transition(session, state, reason)
        if state is SessionState.FAILED:
            self._raise_issue(session)

    # ------------------------------------------------------------ car access

    async def _async_wake(self, vin: str) -> None:
        """Wake the car and poll the server state until it is online."""
        client = self.entry.runtime_data.client
        if await client.async_wake_up(vin) == ONLINE:
            return
        wait = self._wait or async_wait
        for delay in WAKE_POLL_DELAYS:
            await wait(delay)
            summary = await client.async_vehicle_state(vin)
            if summary.get("state") == ONLINE:
                return
        raise NotAwakeError("the car did not wake up")

    async def _async_command_ok(self, vin: str, command: str, **params: Any) -> None:
        """Send a command; "already set" counts as done."""
        try:
            await self.entry.runtime_data.client.async_command(vin, command, **params)
        except CommandFailedError as err:
            if ALREADY_SET not in err.reason.lower():
                raise

    # ------------------------------------------------------------ transitions

    async def _async_fail(self, session: ChargingSession, reason: str) -> None:
        await self._async_finish(session, SessionState.FAILED, reason)

    async def _async_transition(
        self,
        session: ChargingSession,
        state: SessionState,
        reason: str | None = None,
    ) -> None:
        """Change state, save at once, then tell everyone."""
        session.transition(state, dt_util.utcnow(), reason)
        await self.store.async_save()
        self._announce(session)

    @callback
    def _announce(self, session: ChargingSession) -> None:
        """Fire the event and update the listeners."""
        self.hass.bus.async_fire(
            EVENT_SESSION,
            {
                "entry_id": self.entry.entry_id,
                "session_id": session.id,
                "state": str(session.state),
                "reason": session.reason,
                "device_id": self.device_id(session.vin),
                "vehicle": session.vehicle_name,
            },
        )
        self._listeners.notify()

    @callback
    def _raise_issue(self, session: ChargingSession) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"{ISSUE_SESSION_FAILED}_{session.id}",
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=f"{ISSUE_SESSION_FAILED}_{session.reason}",
            translation_placeholders={
                "vehicle": session.vehicle_name,
                "start": str(
                    dt_util.as_local(session.plan.start or session.ready_by).strftime(
                        "%Y-%m-%d %H:%M"
                    )
                ),
            },
        )

    # ------------------------------------------------------------ daily check

    async def async_daily_check(self) -> list[ChargingSession]:
        """Plan the next need of every car from the queue and the calendar."""
        now = dt_util.utcnow()
        horizon = now + PLANNING_HORIZON
        expired = [n for n in self.store.queue if dt_util.as_utc(n.ready_by) <= now]
        for need in expired:
            self.store.queue.remove(need)
        candidates: list[tuple[QueuedNeed, str]] = [
            (need, "queue")
            for need in self.store.queue
            if dt_util.as_utc(need.ready_by) <= horizon
        ]
        candidates.extend(
            (need, "calendar") for need in await self._async_calendar_needs(now)
        )
        candidates.sort(key=lambda item: dt_util.as_utc(item[0].ready_by))
        planned: list[ChargingSession] = []
        busy: set[str] = set()
        for need, source in candidates:
            if need.vin in busy or need.key in self.store.planned_needs:
                continue
            open_session = self.open_session(need.vin)
            if open_session is not None and (
                open_session.is_active
                or (
                    open_session.target_soc == need.target_soc
                    and open_session.ready_by == need.ready_by
                )
            ):
                busy.add(need.vin)
                continue
            request = SessionRequest(
                vin=need.vin,
                target_soc=need.target_soc,
                ready_by=need.ready_by,
                mode=need.mode,
                price_entity=need.price_entity,
                continuous=need.continuous,
                source=source,
                need_key=need.key,
            )
            try:
                session = await self.async_plan(request)
            except ServiceValidationError as err:
                LOGGER.warning(
                    "Daily check: could not plan special charging for %s: %s",
                    self.vehicle_name(need.vin),
                    err.translation_key,
                )
                if source == "queue" and err.translation_key != "soc_unknown":
                    self.store.queue.remove(need)
                continue
            if source == "queue":
                self.store.queue.remove(need)
            busy.add(need.vin)
            planned.append(session)
        await self.store.async_save()
        return planned

    async def _async_calendar_needs(self, now: datetime) -> list[QueuedNeed]:
        """Read charging needs from the calendar (events like "Charge 90%")."""
        entity_id = self.entry.options.get(CONF_CALENDAR_ENTITY)
        vehicles = [
            v for v in self.entry.runtime_data.vehicles if isinstance(v.get("vin"), str)
        ]
        if not entity_id or not vehicles:
            return []
        try:
            response = await self.hass.services.async_call(
                "calendar",
                "get_events",
                {
                    "entity_id": entity_id,
                    "start_date_time": dt_util.as_local(now),
                    "end_date_time": dt_util.as_local(now + PLANNING_HORIZON),
                },
                blocking=True,
                return_response=True,
            )
        except HomeAssistantError as err:
            LOGGER.warning("Daily check: could not read the calendar: %s", err)
            return []
        found: Any = (response or {}).get(entity_id)
        events = found.get("events") if isinstance(found, Mapping) else None
        if not isinstance(events, list):
            return []
        return calendar_needs(entity_id, events, vehicles, now)


def calendar_needs(
    entity_id: str,
    events: list[Any],
    vehicles: list[dict[str, Any]],
    now: datetime,
) -> list[QueuedNeed]:
    """Turn calendar events with a target ("90%") into needs (ready-by = start).

    With several cars, an event naming a car's display name is for that car;
    other events are for the first car.
    """
    needs: list[QueuedNeed] = []
    for event in events:
        if not isinstance(event, Mapping):
            continue
        text = f"{event.get('summary') or ''} {event.get('description') or ''}"
        target = target_from_text(text)
        start = _event_start(event.get("start"))
        if target is None or start is None or start <= now:
            continue
        vin = str(vehicles[0]["vin"])
        for vehicle in vehicles:
            name = str(vehicle.get("display_name") or "")
            if name and name.lower() in text.lower():
                vin = str(vehicle["vin"])
                break
        key = f"calendar:{entity_id}:{start.isoformat()}:{target}:{vin[-6:]}"
        needs.append(QueuedNeed(key=key, vin=vin, target_soc=target, ready_by=start))
    return needs


def _event_start(value: Any) -> datetime | None:
    """Parse an event start: a datetime, or a date (local midnight)."""
    if value is None:
        return None
    parsed = (
        value
        if isinstance(value, datetime)
        else dt_util.parse_datetime(str(value))  # also reads plain dates
    )
    if parsed is None:
        return None
    moment: datetime = parsed
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt_util.get_default_time_zone())
    return moment


def _schedules(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the charge schedules of a vehicle_data answer."""
    section = data.get("charge_schedule_data") or {}
    return [dict(s) for s in section.get("charge_schedules") or []]
