"""Special charging sessions: what can be asked of them.

Plan a session from a charging need, queue needs for the daily check (queue
and calendar), cancel, and list; the session model and storage are in
sessions.py and how a planned session runs (timers, send, cleanup) in
session_runner.py. The manager's lock per car covers planning too, so a new
plan never races the send of the session it replaces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.event import async_track_time_change
from homeassistant.util import dt as dt_util
from homeassistant.util.ulid import ulid_now

from .charge_control import ONLINE
from .charging_needs import (
    PLANNING_HORIZON,
    SOURCE_QUEUE,
    ChargingNeed,
    async_calendar_needs,
)
from .const import (
    CONF_CALENDAR_ENTITY,
    CONF_DAILY_CHECK_TIME,
    DEFAULT_DAILY_CHECK_TIME,
    LOGGER,
)
from .errors import SigningRequiredError
from .plan_inputs import (
    SocReading,
    async_make_plan,
    battery_level_of,
    validate_need,
    validation_error,
)
from .session_restore import async_clear_issue
from .session_runner import SessionRunner
from .sessions import (
    REASON_CANCELLED,
    REASON_REPLACED,
    REASON_SIGNING_REQUIRED,
    ChargingSession,
    SessionState,
)
from .time_of_day import parse_time_option


class SessionManager(SessionRunner):
    """The special charging sessions of one config entry."""

    # ------------------------------------------------------------ lifecycle

    async def async_load(self) -> None:
        """Load the stored sessions."""
        await self.store.async_load()

    async def async_start(self) -> None:
        """Re-arm triggers, run what was missed and arm the daily check."""
        now = dt_util.utcnow()
        for session in list(self.sessions.values()):
            await self._async_recover(session, now)
        check = parse_time_option(
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

    async def async_plan(self, need: ChargingNeed) -> ChargingSession:
        """Plan and schedule a session; a validation error changes nothing.

        The car's lock is held from reading its open session to replacing it,
        so a send firing meanwhile cannot race the replacement.
        """
        validate_need(need, queued=False)
        async with self._lock(need.vin):
            existing = self.open_session(need.vin)
            if existing is not None and existing.is_active:
                raise validation_error(
                    "session_active", {"vehicle": self.vehicle_name(need.vin)}
                )
            plan = await async_make_plan(
                self.hass, self.entry.options, need, self._async_current_soc
            )
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
                vin=need.vin,
                vehicle_name=self.vehicle_name(need.vin),
                target_soc=need.target_soc,
                ready_by=need.ready_by,
                plan=plan,
                created_at=now,
                source=need.source,
                need_key=need.key,
                updated_at=now,
                history=[{"state": str(SessionState.SCHEDULED), "at": now.isoformat()}],
            )
            self.sessions[session.id] = session
            if need.key is not None:
                self.store.planned_needs.append(need.key)
            await self.store.async_save()
            if existing is not None:
                self._announce(existing)
            self._announce(session)
            self._arm(session, plan.send_at or now, self._send_due)
        LOGGER.info(
            "Special charging for %s planned from %s %% (seen %s %% at %s):"
            " send %s, charge %s-%s",
            session.vehicle_name,
            plan.soc_used,
            plan.soc_seen,
            plan.soc_as_of,
            plan.send_at,
            plan.start,
            plan.end,
        )
        return session

    async def _async_current_soc(self, vin: str) -> SocReading:
        """Return the last known SoC and its time; never wake the car for planning.

        The scout's data (also what it remembered from before a restart)
        costs nothing; only a car without one that is online is asked.
        """
        vehicle = self.vehicles.get(vin)
        data = None if vehicle is None else vehicle.coordinator.data
        level = battery_level_of(data)
        if level is not None and data is not None:
            return SocReading(level, data.fetched_at)
        client = self.control.client
        name = self.vehicle_name(vin)
        try:
            summary = await client.async_vehicle_state(vin)
            if summary.get("state") != ONLINE:
                raise validation_error("soc_unknown", {"vehicle": name})
            payload = await client.async_vehicle_data(vin, ("charge_state",))
        except ServiceValidationError:
            raise
        except HomeAssistantError as err:
            raise validation_error("soc_unknown", {"vehicle": name}) from err
        level = battery_level_of(payload)
        if level is None:
            raise validation_error("soc_unknown", {"vehicle": name})
        return SocReading(level, dt_util.utcnow())

    # ------------------------------------------------------------ queue

    async def async_enqueue(self, need: ChargingNeed) -> ChargingNeed:
        """Queue a need for the daily check."""
        validate_need(need, queued=True)
        queued = ChargingNeed(
            key=f"queue:{ulid_now().lower()}",
            vin=need.vin,
            target_soc=need.target_soc,
            ready_by=need.ready_by,
            mode=need.mode,
            price_entity=need.price_entity,
            continuous=need.continuous,
            source=SOURCE_QUEUE,
        )
        self.store.queue.append(queued)
        await self.store.async_save()
        return queued

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
        if session.reason == REASON_SIGNING_REQUIRED:
            raise SigningRequiredError  # the car could not be put back
        return session

    async def async_restore(self, session_id: str) -> ChargingSession:
        """Put back what a failed session left on the car (its repair flow).

        Runs the cleanup once, now; a car that still refuses keeps the issue.
        """
        session = self.sessions.get(session_id)
        if session is None:
            raise validation_error("session_not_found", {"session_id": session_id})
        async with self._lock(session.vin):
            if session.leftovers:
                await self._async_cleanup_steps(session)
            async_clear_issue(self.hass, session)
            self._announce(session)
        LOGGER.info(
            "Special charging for %s: the car is restored", session.vehicle_name
        )
        return session

    # ------------------------------------------------------------ daily check

    @callback
    def _daily_check_due(self, _now: datetime) -> None:
        self._background(self.async_daily_check(), "daily check")

    async def async_daily_check(self) -> list[ChargingSession]:
        """Plan the next need of every car from the queue and the calendar."""
        now = dt_util.utcnow()
        horizon = now + PLANNING_HORIZON
        expired = [n for n in self.store.queue if dt_util.as_utc(n.ready_by) <= now]
        for need in expired:
            self.store.queue.remove(need)
        candidates = [
            need
            for need in self.store.queue
            if dt_util.as_utc(need.ready_by) <= horizon
        ]
        candidates.extend(
            await async_calendar_needs(
                self.hass,
                self.entry.options.get(CONF_CALENDAR_ENTITY),
                {vin: vehicle.name for vin, vehicle in self.vehicles.items()},
                now,
            )
        )
        candidates.sort(key=lambda need: dt_util.as_utc(need.ready_by))
        planned: list[ChargingSession] = []
        busy: set[str] = set()
        for need in candidates:
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
            queued = need.source == SOURCE_QUEUE
            try:
                session = await self.async_plan(need)
            except ServiceValidationError as err:
                LOGGER.warning(
                    "Daily check: could not plan special charging for %s: %s",
                    self.vehicle_name(need.vin),
                    err.translation_key,
                )
                if queued and err.translation_key != "soc_unknown":
                    self.store.queue.remove(need)
                continue
            if queued:
                self.store.queue.remove(need)
            busy.add(need.vin)
            planned.append(session)
        await self.store.async_save()
        return planned
