"""How a special charging session runs: timers, send, cleanup, transitions.

Two one-shot timers per session (``async_track_point_in_time``): the send at
``plan.send_at`` and the cleanup at ``plan.cleanup_at``; retries re-arm the
same timer. Every car operation of one vehicle runs under that vehicle's lock,
and every state change is saved before the commands it guards: the car-control
layer awaits the ``before`` callbacks given here before it changes the car.

A car that does not know the key the command proxy signs with
(:class:`KeyNotPairedError`) refuses every command until its owner adds the
key, so neither the send nor the cleanup is retried then: the session fails at
once (reason ``key_not_paired``) and its repair issue says how to pair the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_track_point_in_time
from homeassistant.util import dt as dt_util

from .charge_control import (
    CLEANUP_ENDPOINTS,
    SEND_ENDPOINTS,
    ChargeControl,
    SchedulesUnsupportedError,
    ScheduleWindow,
    charge_schedules,
    find_session_schedule,
    schedule_ids,
    target_limit,
)
from .const import (
    DOMAIN,
    LOGGER,
)
from .errors import (
    CommandFailedError,
    KeyNotPairedError,
    SigningRequiredError,
    TransientFleetError,
)
from .listeners import Listeners
from .session_restore import async_raise_failed_issue, cleanup_retry_at
from .sessions import (
    REASON_CLEANUP_DEADLINE,
    REASON_CLEANUP_REFUSED,
    REASON_COMMAND_REFUSED,
    REASON_KEY_NOT_PAIRED,
    REASON_MISSED,
    REASON_SEND_DEADLINE,
    REASON_SIGNING_REQUIRED,
    ChargingSession,
    SessionState,
    SessionStore,
)
from .time_of_day import day_bit, day_name, minutes_after_midnight
from .vehicle import TeslaVehicle

EVENT_SESSION: Final = f"{DOMAIN}_session"

SEND_RETRY_INTERVAL: Final = timedelta(minutes=3)
MAX_SEND_REFUSALS: Final = 3
"""How often a refused send is tried again before the session fails."""


def session_window(session: ChargingSession) -> ScheduleWindow:
    """Return the one-time charge schedule of a session's plan."""
    start = session.plan.start or session.ready_by
    end = session.plan.end or session.ready_by
    return ScheduleWindow(
        start=minutes_after_midnight(start),
        end=minutes_after_midnight(end),
        day_bit=day_bit(start),
        day_name=day_name(start),
    )


def _refusal_reason(err: HomeAssistantError) -> str:
    """Return why a session failed when the car said no (not a lost answer)."""
    if isinstance(err, KeyNotPairedError):
        return REASON_KEY_NOT_PAIRED
    return REASON_COMMAND_REFUSED


def _cleanup_failure_reason(err: HomeAssistantError) -> str:
    """Return why a cleanup gave up."""
    if isinstance(err, KeyNotPairedError):
        return REASON_KEY_NOT_PAIRED
    if isinstance(err, SigningRequiredError):
        return REASON_SIGNING_REQUIRED
    if isinstance(err, CommandFailedError):
        return REASON_CLEANUP_REFUSED
    return REASON_CLEANUP_DEADLINE


class SessionRunner:
    """Runs the special charging sessions of one config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        control: ChargeControl,
        vehicles: Mapping[str, TeslaVehicle],
    ) -> None:
        """Initialize; ``vehicles`` is the account's live record of cars."""
        self.hass = hass
        self.entry = entry
        self.control = control
        self.vehicles = vehicles
        self.store = SessionStore(hass, entry.entry_id)
        self._timers: dict[str, CALLBACK_TYPE] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._listeners = Listeners()
        self._unsub_daily: CALLBACK_TYPE | None = None
        self._stopped = False

    @property
    def sessions(self) -> dict[str, ChargingSession]:
        """All known sessions by id."""
        return self.store.sessions

    def vehicle_name(self, vin: str) -> str:
        """Return the display name of a car (never its VIN)."""
        vehicle = self.vehicles.get(vin)
        return "Tesla" if vehicle is None else vehicle.name

    def device_id(self, vin: str) -> str | None:
        """Return the id of the car's device, if it exists."""
        device = dr.async_get(self.hass).async_get_device_by_identifier(
            (DOMAIN, vin), self.entry.entry_id
        )
        return None if device is None else device.id

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
            except TransientFleetError as err:
                await self._async_send_retry_or_fail(session, err)
                return
            except SigningRequiredError:
                # No retry helps until a Commands URL (a signing proxy) is set.
                LOGGER.warning(
                    "Special charging for %s: the car needs signed commands; "
                    "the plan was not sent",
                    session.vehicle_name,
                )
                await self._async_send_failed(session, REASON_SIGNING_REQUIRED)
                return
            except HomeAssistantError as err:
                if isinstance(err, CommandFailedError):
                    # A car that is busy or just woke often says no once
                    # ("could_not_wake_buses", "timeout"): ask again a few times.
                    session.send_refusals += 1
                    await self.store.async_save()
                    if session.send_refusals <= MAX_SEND_REFUSALS:
                        await self._async_send_retry_or_fail(session, err)
                        return
                LOGGER.warning(
                    "Special charging for %s: the car refused the plan: %s",
                    session.vehicle_name,
                    err,
                )
                await self._async_send_failed(session, _refusal_reason(err))
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
            await self._async_send_failed(
                session,
                REASON_COMMAND_REFUSED
                if isinstance(err, CommandFailedError)
                else REASON_SEND_DEADLINE,
            )
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
        control = self.control
        vin = session.vin
        control.ensure_commands(vin)  # before the (billed) wake-up
        await control.async_wake(vin)
        data = await control.async_read(vin, SEND_ENDPOINTS)
        charge = data.get("charge_state") or {}
        if session.original_limit is None:
            session.original_limit = int(charge.get("charge_limit_soc") or 0) or None
            session.original_legacy = {
                "enabled": charge.get("scheduled_charging_mode") == "StartAt",
                "time": charge.get("scheduled_charging_start_time_app"),
            }
            await self.store.async_save()

        async def limit_changing() -> None:
            if not session.limit_set:
                session.limit_set = True
                await self.store.async_save()

        limit_was_set = session.limit_set
        try:
            await control.async_set_limit(
                vin, data, target_limit(session.target_soc), before=limit_changing
            )
        except SigningRequiredError:
            # The car refused the unsigned command: its limit is unchanged.
            session.limit_set = limit_was_set
            await self.store.async_save()
            raise
        window = session_window(session)
        if not session.legacy:

            async def schedule_adding(on_car: list[int]) -> None:
                session.schedule_pending = True
                session.schedule_not_ours = on_car
                await self.store.async_save()

            pending = session.schedule_pending
            try:
                schedule_id = await control.async_ensure_session_schedule(
                    vin,
                    data,
                    window,
                    known_id=session.schedule_id,
                    not_ours=session.schedule_not_ours,
                    before_add=schedule_adding,
                )
            except SigningRequiredError:
                # The car refused the unsigned add: no schedule was added.
                session.schedule_pending = pending
                await self.store.async_save()
                raise
            except SchedulesUnsupportedError:
                LOGGER.info(
                    "Special charging for %s: charge schedules are not supported; "
                    "using the scheduled charging start time",
                    session.vehicle_name,
                )
                session.legacy = True
                await self.store.async_save()
            else:
                session.schedule_id = schedule_id
                session.schedule_pending = False
                await self.store.async_save()
                return
        await control.async_set_legacy_start(vin, enable=True, minutes=window.start)

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
        """Restore the car, then finish; retried with backoff for hours.

        A refusal is retried like an unreachable car: a car that is busy,
        asleep or just woke often says no once. Only when the cleanup gives
        up does the session fail, with a repair issue that names what is
        still changed on the car and offers to restore it.
        """
        try:
            await self._async_cleanup_steps(session)
        except HomeAssistantError as err:
            retry_at = cleanup_retry_at(session, dt_util.utcnow())
            if isinstance(err, KeyNotPairedError | SigningRequiredError):
                retry_at = None  # no retry helps until the user acts
            await self.store.async_save()
            if retry_at is None:
                LOGGER.warning(
                    "Special charging for %s: could not restore the car: %s",
                    session.vehicle_name,
                    err,
                )
                reason = _cleanup_failure_reason(err)
                await self._async_finish(session, SessionState.FAILED, reason)
                return
            LOGGER.info(
                "Special charging for %s: cleanup failed (%s); retrying at %s",
                session.vehicle_name,
                err,
                retry_at,
            )
            self._arm(session, retry_at, self._cleanup_due)
            return
        await self._async_finish(
            session, session.outcome or SessionState.COMPLETED, session.outcome_reason
        )

    async def _async_cleanup_steps(self, session: ChargingSession) -> None:
        """Restore the original limit and remove the schedule.

        Both steps are tried even when one fails, so a failed cleanup knows
        exactly what is still on the car; the first error is raised after.
        A schedule whose add was sent but never confirmed (an answer lost, a
        restart, a read-back that failed) is found by its window among the
        schedules that were not on the car before, and removed too.
        """
        if not session.changed_car:
            return
        control = self.control
        vin = session.vin
        control.ensure_commands(vin)  # before the (billed) wake-up
        await control.async_wake(vin)
        data = await control.async_read(vin, CLEANUP_ENDPOINTS)
        failed: HomeAssistantError | None = None
        if session.original_limit is not None and not session.limit_restored:
            try:
                await control.async_set_limit(vin, data, session.original_limit)
            except HomeAssistantError as err:
                failed = err
            else:
                session.limit_restored = True
                await self.store.async_save()
        if not session.schedule_removed:
            try:
                await self._async_remove_session_schedule(session, data)
            except HomeAssistantError as err:
                failed = failed or err
            else:
                session.schedule_removed = True
                await self.store.async_save()
        if failed is not None:
            raise failed

    async def _async_remove_session_schedule(
        self, session: ChargingSession, data: Mapping[str, Any]
    ) -> None:
        """Put back the legacy start time, or remove the one-time schedule."""
        control = self.control
        vin = session.vin
        if session.legacy:
            legacy = session.original_legacy or {}
            if legacy.get("enabled") and legacy.get("time") is not None:
                await control.async_set_legacy_start(
                    vin, enable=True, minutes=int(legacy["time"])
                )
            else:
                await control.async_set_legacy_start(
                    vin, enable=False, minutes=session_window(session).start
                )
        schedule_id = session.schedule_id
        if schedule_id is None and session.schedule_pending:
            schedule_id = find_session_schedule(
                charge_schedules(data),
                session_window(session),
                known_id=None,
                not_ours=session.schedule_not_ours or (),
            )
        if schedule_id is not None and schedule_id in schedule_ids(data):
            await control.async_remove_schedule(vin, schedule_id)

    async def _async_finish(
        self, session: ChargingSession, state: SessionState, reason: str | None
    ) -> None:
        await self._async_transition(session, state, reason)
        if state is SessionState.FAILED:
            self._raise_issue(session)

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
        async_raise_failed_issue(self.hass, self.entry.entry_id, session)
