"""Chaos soak: months of the reference commuter with faults and restarts.

Per seed (``SOAK_SEEDS``, default 1,2,3) and ``SOAK_DAYS`` days (default 90)
from Monday 1 September 2025 (the month includes the end of daylight saving
time), Europe/Warsaw, 8 h access tokens:

* the reference commuter (``harness.Profile``: two drives a day, plugged in on
  Monday, Wednesday and Friday nights, the car's own limit 80 %);
* two special charging sessions a week, planned by the plan action on Monday
  and Wednesday evening (19:00-22:30) for the next morning (06:00-07:00),
  85-95 %, off-peak window or deadline, usually while the car is asleep;
* the chaos of ``soak.draw_plan``: about two Home Assistant restarts a day
  (reloads, downtime, crashes mid-request and between Tesla's token answer and
  the save), token endpoint outages spanning an expiry, Fleet API 5xx windows
  and 429 bursts, commands refused with ``result: false``; some faults and
  restarts aimed at a session's send or cleanup.

The chaos runs from noon of the first day to noon of the day before the end;
timers, listeners and memory are measured at noon of the first day and at the
end, both with the entry loaded, no session open and no fault active.

A session "leaves the car as it found it" when, at its end, the car's limit is
the driver's (80 %) and no session schedule is on the car. When it does not,
the driver puts the car back (as a user acting on the repair would), so every
session is judged on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
import gc
import heapq
import itertools
import logging
import os
import tracemalloc
from typing import Any
from unittest.mock import patch

from _pytest.logging import LogCaptureHandler
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.api import FleetClient
from custom_components.tesla_scout_worker.const import CONF_TOKEN, DOMAIN
from custom_components.tesla_scout_worker.oauth import TeslaOAuth2Implementation
from custom_components.tesla_scout_worker.session_runner import EVENT_SESSION
from custom_components.tesla_scout_worker.token_manager import EVENT_REAUTH_REQUIRED
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import SimClock, Simulator, running_simulator
from tesla_fleet_sim.faults import InjectedFailure

from .conftest import add_entry, device_id, prepare_hass, setup_entry
from .fragments import wall_clock, write_fragment
from .harness import Call, CallLog, Clock, Profile, local_iso
from .soak import (
    CHARGE_LIMIT,
    REFUSAL_REASONS,
    SESSION_SCHEDULE_NAME,
    Chaos,
    Crasher,
    Need,
    RequestCrash,
    SoakPlan,
    draw_plan,
    refusal_body,
)

SEEDS = [int(s) for s in os.environ.get("SOAK_SEEDS", "1,2,3").split(",") if s]
DAYS = int(os.environ.get("SOAK_DAYS", "90"))
FIRST_DAY = date(2025, 9, 1)  # a Monday
FINAL_STATES = frozenset({"completed", "cancelled", "failed"})
TOKEN_PATH = "/oauth2/v3/token"
ISSUE_PREFIX = "session_failed_"
RESTORE_KEY_PREFIX = "session_restore_"
PLAN_RETRY = timedelta(minutes=5)  # the driver's automation waits for HA to be up
PLAN_GIVE_UP = timedelta(hours=3)
TOKEN_REFRESH_LEAD = timedelta(minutes=30)  # the proactive refresh before expiry
TRACE_FRAMES = 2
# Allocations that are the test harness's, not Home Assistant's: the
# simulator, the bench, the mock storage (its parsed copy of every store and
# its record of every write), mocks' call records, captured log records.
IGNORED = (
    (f"*{os.sep}tesla_fleet_sim{os.sep}*", True),
    (f"*{os.sep}bench{os.sep}*", False),
    (f"*{os.sep}unittest{os.sep}mock.py", False),
    (f"*{os.sep}logging{os.sep}__init__.py", False),
    (f"*{os.sep}pytest_homeassistant_custom_component{os.sep}*", True),
    (tracemalloc.__file__, False),
)

Action = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class SessionRecord:
    """What happened to one planned session."""

    need: int
    session_id: str
    state: str = "scheduled"
    reason: str | None = None
    ended_at: datetime | None = None
    limit_at_end: int | None = None
    schedules_at_end: int | None = None
    max_schedules: int = 0
    injected: list[InjectedFailure] = field(default_factory=list)

    @property
    def restored(self) -> bool:
        """Whether the car was as the driver left it when the session ended."""
        return self.limit_at_end == CHARGE_LIMIT and self.schedules_at_end == 0


@dataclass(slots=True)
class Counts:
    """Running counters (kept small: the soak must not grow itself)."""

    calls: int = 0
    calls_with_expired_token: int = 0
    unauthorized_401: int = 0
    answers_5xx: int = 0
    answers_429: int = 0
    commands: int = 0
    commands_refused: int = 0
    wakes: int = 0
    refresh_requests: int = 0
    refresh_failures: int = 0
    refresh_replays: int = 0  # answered from Tesla's grace for a reused token
    reauth_events: int = 0


class LogCounter(logging.Handler):
    """Counts warnings and errors by logger and message template."""

    def __init__(self) -> None:
        """Count from now on."""
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        """Count one record (its template, not its arguments)."""
        self.counts[f"{record.levelname} {record.name}: {str(record.msg)[:90]}"] += 1


@dataclass(slots=True)
class Snapshot:
    """Timers, listeners and memory at one moment."""

    at: str
    entry_state: str
    loop_timers: int
    loop_timers_raw: int
    listeners: int
    memory_kib: float
    gc_objects: int
    timer_kinds: dict[str, int]


class Soak:
    """One seed's run: the driver, the chaos and the bookkeeping."""

    def __init__(
        self,
        hass: HomeAssistant,
        sim: Simulator,
        entry: MockConfigEntry,
        clock: Clock,
        crasher: Crasher,
        plan: SoakPlan,
        calls: list[Call],
    ) -> None:
        """Watch ``entry`` run against ``sim`` under ``plan``."""
        self.hass = hass
        self.calls = calls
        self.sim = sim
        self.car = sim.vehicle()
        self.entry = entry
        self.clock = clock
        self.crasher = crasher
        self.plan = plan
        self.counts = Counts()
        self.queue: list[tuple[datetime, int, Action]] = []
        self._seq = itertools.count()
        self.sessions: dict[str, SessionRecord] = {}
        self.open_session: SessionRecord | None = None
        self.plan_failures: Counter[str] = Counter()
        self.planned = 0
        self.issues: dict[str, tuple[bool, str | None]] = {}
        self.restarts: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.driver_fixes = 0
        self.api_fault_until: datetime | None = None
        self.token_fault_until: datetime | None = None

    # ------------------------------------------------------------ queue

    def at(self, moment: datetime, action: Action) -> None:
        """Run ``action`` at ``moment`` (simulated)."""
        heapq.heappush(self.queue, (moment, next(self._seq), action))

    async def run_until(self, end: datetime) -> None:
        """Run the queued actions in time order, then let time pass to ``end``."""
        while self.queue and self.queue[0][0] <= end:
            moment, _, action = heapq.heappop(self.queue)
            await self.clock.run_until(moment)
            await action()
            self.trim_logs()
        await self.clock.run_until(end)
        self.trim_logs()

    def trim_logs(self) -> None:
        """Count the token requests, then forget the simulator's request log."""
        for record in self.sim.requests:
            if record.path == TOKEN_PATH and record.grant_type == "refresh_token":
                self.counts.refresh_requests += 1
                self.counts.refresh_failures += record.status != 200
                self.counts.refresh_replays += bool(record.replay)
        self.sim.requests.clear()
        self.calls.clear()
        # The mock storage records every write; a real disk does not.
        for method in (Store._async_load, Store._async_write_data, Store.async_remove):
            reset = getattr(method, "reset_mock", None)
            if reset is not None:
                reset()
        # pytest keeps every log record of the test, with its arguments (an
        # exception keeps its frames, and they keep the objects of an entry
        # long unloaded); Home Assistant's own log handlers do not.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, LogCaptureHandler):
                handler.reset()

    @property
    def loaded(self) -> bool:
        """Whether the entry is set up."""
        return self.entry.state is ConfigEntryState.LOADED

    # ------------------------------------------------------------ watching

    def on_call(self, _sim: Simulator, call: Call) -> None:
        """Count a Fleet API request; after a command, count session schedules."""
        counts = self.counts
        counts.calls += 1
        counts.calls_with_expired_token += call.expired
        counts.unauthorized_401 += call.status == 401
        counts.answers_5xx += call.status >= 500
        counts.answers_429 += call.status == 429
        counts.wakes += call.route == "wake_up"
        if call.route != "command":
            return
        counts.commands += 1
        counts.commands_refused += call.result is False
        if self.open_session is not None:
            record = self.open_session
            record.max_schedules = max(record.max_schedules, self.session_schedules())

    def session_schedules(self) -> int:
        """Session schedules on the car now."""
        return sum(
            1
            for s in self.car.charge_schedules
            if s.get("name") == SESSION_SCHEDULE_NAME
        )

    @callback
    def on_session(self, event: Event[dict[str, Any]]) -> None:
        """Follow a session; judge the car the moment it ends."""
        record = self.sessions.get(event.data["session_id"])
        if record is None or record.state in FINAL_STATES:
            return
        record.state = str(event.data["state"])
        record.reason = event.data["reason"]
        if record.state not in FINAL_STATES:
            return
        record.ended_at = dt_util.utcnow()
        record.limit_at_end = self.car.charge_limit_soc
        record.schedules_at_end = self.session_schedules()
        if self.open_session is record:
            self.open_session = None
        # Faults aimed at this session that it never met must not hit the next.
        for failure in record.injected:
            if failure in self.sim.faults.injected:
                self.sim.faults.injected.remove(failure)
        self.crasher.disarm_phase("send")
        self.crasher.disarm_phase("cleanup")
        if not record.restored:
            self.driver_fixes += 1
            self.car.set_charge_limit(CHARGE_LIMIT)
            for schedule in self.car.charge_schedules:
                if schedule.get("name") == SESSION_SCHEDULE_NAME:
                    self.car.remove_charge_schedule(int(schedule["id"]))

    @callback
    def on_issue(self, event: Event[ir.EventIssueRegistryUpdatedData]) -> None:
        """Remember the session repairs raised (a restart may drop them later)."""
        data = event.data
        if data["domain"] != DOMAIN or not data["issue_id"].startswith(ISSUE_PREFIX):
            return
        if data["action"] == "remove":
            return
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, data["issue_id"])
        if issue is not None:
            self.issues[data["issue_id"]] = (
                bool(issue.is_fixable),
                issue.translation_key,
            )

    @callback
    def on_reauth(self, _event: Event[dict[str, Any]]) -> None:
        """Count a reauthentication asked for."""
        self.counts.reauth_events += 1

    # ------------------------------------------------------------ the driver

    def plan_need(self, need: Need, give_up: datetime) -> Action:
        """Return the driver's plan action for a need (it waits while HA is down)."""

        async def action() -> None:
            if not self.loaded and dt_util.utcnow() < give_up:
                self.at(dt_util.utcnow() + PLAN_RETRY, self.plan_need(need, give_up))
                return
            self.crasher.paused = True
            try:
                response = await self.hass.services.async_call(
                    DOMAIN,
                    "plan_special_charging",
                    {
                        "device_id": device_id(self.hass, self.car.vin),
                        "target_soc": need.target_soc,
                        "ready_by": need.ready_by,
                        "mode": need.mode,
                    },
                    blocking=True,
                    return_response=True,
                )
            except HomeAssistantError as err:
                self.plan_failures[err.translation_key or type(err).__name__] += 1
                return
            finally:
                self.crasher.paused = False
            assert response is not None
            self.planned += 1
            record = SessionRecord(need.index, str(response["session_id"]))
            self.sessions[record.session_id] = record
            self.open_session = record
            self.aim_at_session(need, record, response)

        return action

    def aim_at_session(
        self, need: Need, record: SessionRecord, response: dict[str, Any]
    ) -> None:
        """Queue the faults and the restart drawn for this session."""
        now = dt_util.utcnow()
        send_at = datetime.fromisoformat(response["send_at"])
        start = datetime.fromisoformat(response["start"])
        end = datetime.fromisoformat(response["end"])
        cleanup_at = datetime.fromisoformat(response["cleanup_at"])
        minute = timedelta(minutes=1)
        for refusal, moment in (
            (need.refuse_send, send_at - minute),
            (need.refuse_cleanup, cleanup_at - minute),
        ):
            if refusal is not None:
                command, count = refusal
                self.at(max(now, moment), self.refuse(record, command, count))
        for minutes, moment in (
            (need.outage_send_min, send_at),
            (need.outage_cleanup_min, cleanup_at),
        ):
            if minutes is not None:
                self.at(max(now, moment - minute), self.api_5xx(503, minutes))
        u = need.draws
        match need.restart:
            case "crash_in_send" | "crash_in_cleanup":
                phase = need.restart.removeprefix("crash_in_")
                crash = RequestCrash(1 + int(u[0] * 6), u[1] < 0.5, phase)
                self.crasher.requests.append(crash)
            case "down_over_send":
                off = max(now, send_at - timedelta(minutes=1 + int(u[0] * 60)))
                room = min(end - timedelta(minutes=5), send_at + timedelta(minutes=90))
                back = send_at + (room - send_at) * max(0.02, u[1])
                self.at(off, self.down_until(back, "down_over_send"))
            case "down_over_cleanup":
                off = cleanup_at - timedelta(minutes=1 + int(u[0] * 25))
                back = cleanup_at + timedelta(minutes=1 + int(u[1] * 120))
                self.at(off, self.down_until(back, "down_over_cleanup"))
            case "reload_active":
                self.at(start + (end - start) * (0.05 + 0.9 * u[0]), self.reload())

    def refuse(self, record: SessionRecord, command: str, count: int) -> Action:
        """Make the car refuse the next ``count`` of a command."""

        async def action() -> None:
            reason = REFUSAL_REASONS[count % len(REFUSAL_REASONS)]
            self.sim.faults.fail_next(
                f"/command/{command}", 200, count, refusal_body(reason)
            )
            record.injected.append(self.sim.faults.injected[-1])
            self.faults[f"refused_{command}"] += count

        return action

    # ------------------------------------------------------------ chaos

    def chaos(self, item: Chaos) -> Action:
        """Carry out one drawn restart or fault."""
        params = item.params
        match item.kind:
            case "reload":
                return self.reload()
            case "down":
                back = item.at + timedelta(minutes=int(params["minutes"]))
                return self.down_until(back, "down")
            case "crash_mid_request":
                return self.arm_crash(
                    RequestCrash(params["countdown"], params["after"])
                )
            case "crash_after_token_answer":
                return self.arm_token_crash()
            case "token_outage":
                return self.token_outage(
                    int(params["status"]),
                    timedelta(minutes=int(params["before_expiry_min"])),
                    timedelta(minutes=int(params["after_expiry_min"])),
                )
            case "api_5xx":
                return self.api_5xx(int(params["status"]), int(params["minutes"]))
            case "api_429":
                return self.api_429(int(params["count"]))
        raise ValueError(item.kind)

    def reload(self) -> Action:
        """Restart Home Assistant (storage survives, work is cancelled)."""

        async def action() -> None:
            if self.entry.state not in (
                ConfigEntryState.LOADED,
                ConfigEntryState.SETUP_RETRY,
            ):
                self.skipped["reload"] += 1
                return
            self.restarts["reload"] += 1
            await self.hass.config_entries.async_reload(self.entry.entry_id)
            await self.hass.async_block_till_done(wait_background_tasks=True)

        return action

    def down_until(self, back: datetime, kind: str) -> Action:
        """Stop Home Assistant now and start it again at ``back``."""

        async def action() -> None:
            if self.entry.state not in (
                ConfigEntryState.LOADED,
                ConfigEntryState.SETUP_RETRY,
            ):
                self.skipped[kind] += 1
                return
            self.restarts[kind] += 1
            await self.hass.config_entries.async_unload(self.entry.entry_id)
            await self.hass.async_block_till_done(wait_background_tasks=True)
            self.at(max(back, dt_util.utcnow()), self.start())

        return action

    def start(self) -> Action:
        """Start Home Assistant again after downtime."""

        async def action() -> None:
            if self.entry.state is ConfigEntryState.NOT_LOADED:
                await self.hass.config_entries.async_setup(self.entry.entry_id)
                await self.hass.async_block_till_done(wait_background_tasks=True)

        return action

    def arm_crash(self, crash: RequestCrash) -> Action:
        """Crash at the n-th Fleet API request from now (one armed at a time)."""

        async def action() -> None:
            if any(c.phase is None for c in self.crasher.requests):
                self.skipped["crash_mid_request"] += 1
                return
            self.crasher.requests.append(crash)

        return action

    def arm_token_crash(self) -> Action:
        """Crash between the next token answer and its save."""

        async def action() -> None:
            if self.crasher.token_answers:
                self.skipped["crash_after_token_answer"] += 1
                return
            self.crasher.token_answers = 1

        return action

    def token_outage(self, status: int, before: timedelta, after: timedelta) -> Action:
        """Take the token endpoint down across the current token's expiry.

        The outage begins before the proactive refresh (30 min before expiry)
        so that the token in use expires during it.
        """

        async def action() -> None:
            expires = dt_util.utc_from_timestamp(
                float(self.entry.data[CONF_TOKEN]["expires_at"])
            )
            now = dt_util.utcnow()
            begin = max(now, expires - TOKEN_REFRESH_LEAD - before)
            end = max(begin, expires) + after
            self.faults["token_outages"] += 1
            self.faults["token_outage_minutes"] += int(
                (end - begin).total_seconds() // 60
            )
            self.at(begin, self._token_down(status, end))

        return action

    def _token_down(self, status: int, end: datetime) -> Action:
        async def action() -> None:
            self.sim.faults.token_endpoint_status = status
            until = self.token_fault_until
            self.token_fault_until = end if until is None else max(until, end)
            self.at(end, self._token_up())

        return action

    def _token_up(self) -> Action:
        async def action() -> None:
            until = self.token_fault_until
            if until is not None and dt_util.utcnow() >= until:
                self.sim.faults.token_endpoint_status = None
                self.token_fault_until = None

        return action

    def api_5xx(self, status: int, minutes: int) -> Action:
        """Answer every Fleet API request with ``status`` for a while."""

        async def action() -> None:
            end = dt_util.utcnow() + timedelta(minutes=minutes)
            self.sim.faults.api_status = status
            until = self.api_fault_until
            self.api_fault_until = end if until is None else max(until, end)
            self.faults["api_5xx_windows"] += 1
            self.faults["api_5xx_minutes"] += minutes
            self.at(end, self._api_up())

        return action

    def _api_up(self) -> Action:
        async def action() -> None:
            until = self.api_fault_until
            if until is not None and dt_util.utcnow() >= until:
                self.sim.faults.api_status = None
                self.api_fault_until = None

        return action

    def api_429(self, count: int) -> Action:
        """Rate-limit the next ``count`` vehicle requests."""

        async def action() -> None:
            self.sim.faults.fail_next("/api/1/vehicles", 429, count)
            self.faults["api_429_bursts"] += 1
            self.faults["api_429_answers_armed"] += count

        return action

    # ------------------------------------------------------------ measuring

    async def snapshot(self) -> Snapshot:
        """Timers, listeners and memory now, after everything settled."""
        await self.clock.settle()
        gc.collect()
        loop = self.hass.loop
        handles = list(loop._scheduled)  # type: ignore[attr-defined]
        live = [h for h in handles if not h.cancelled()]
        kinds = Counter(_timer_name(h) for h in live)
        memory = 0.0
        if tracemalloc.is_tracing():
            snap = tracemalloc.take_snapshot().filter_traces(
                [
                    tracemalloc.Filter(False, pattern, all_frames=all_frames)
                    for pattern, all_frames in IGNORED
                ]
            )
            memory = sum(stat.size for stat in snap.statistics("filename")) / 1024
        return Snapshot(
            at=local_iso(dt_util.utcnow()),
            entry_state=str(self.entry.state.value),
            loop_timers=len(live),
            loop_timers_raw=len(handles),
            listeners=sum(self.hass.bus.async_listeners().values()),
            memory_kib=round(memory, 1),
            gc_objects=len(gc.get_objects()),
            timer_kinds=dict(sorted(kinds.items())),
        )

    async def quiet(self) -> None:
        """Make sure the entry is up and no fault is on before a measurement."""
        self.sim.faults.clear()
        self.api_fault_until = self.token_fault_until = None
        if self.entry.state is ConfigEntryState.NOT_LOADED:
            await setup_entry(self.hass, self.entry)
        await self.clock.settle()

    # ------------------------------------------------------------ results

    def result(self, start: Snapshot, end: Snapshot) -> dict[str, Any]:
        """Return the seed's numbers."""
        plan = self.plan
        records = list(self.sessions.values())
        ended = [r for r in records if r.state in FINAL_STATES]
        not_restored = [r for r in ended if not r.restored]
        restore_repairs = {
            issue_id.removeprefix(ISSUE_PREFIX)
            for issue_id, (fixable, key) in self.issues.items()
            if fixable and (key or "").startswith(RESTORE_KEY_PREFIX)
        }
        without_repair = [
            r for r in not_restored if r.session_id not in restore_repairs
        ]
        failed = Counter(str(r.reason) for r in ended if r.state == "failed")
        counts = self.counts
        reauth_flows = sum(
            1
            for flow in self.hass.config_entries.flow.async_progress()
            if flow["context"]["source"] == SOURCE_REAUTH
        )
        crashes = self.crasher.done
        restarts = self.restarts + crashes
        return {
            "seed": plan.seed,
            "days": plan.days,
            "first_day": plan.first_day.isoformat(),
            "sessions_needed": len(plan.needs),
            "sessions_planned": self.planned,
            "sessions_not_planned": len(plan.needs) - self.planned,
            "plan_failures_by_reason": dict(sorted(self.plan_failures.items())),
            "sessions_completed": sum(1 for r in ended if r.state == "completed"),
            "sessions_failed": sum(1 for r in ended if r.state == "failed"),
            "sessions_cancelled": sum(1 for r in ended if r.state == "cancelled"),
            "failed_by_reason": dict(sorted(failed.items())),
            "sessions_open_at_end": len(records) - len(ended),
            "sessions_ended": len(ended),
            "cars_restored": len(ended) - len(not_restored),
            "ended_not_restored": len(not_restored),
            "restore_repairs": len(restore_repairs),
            "ended_not_restored_without_repair": len(without_repair),
            "not_restored": [
                {
                    "need": r.need,
                    "state": r.state,
                    "reason": r.reason,
                    "ended_at": local_iso(r.ended_at) if r.ended_at else None,
                    "limit_at_end": r.limit_at_end,
                    "schedules_at_end": r.schedules_at_end,
                    "repair": self.issues.get(ISSUE_PREFIX + r.session_id),
                }
                for r in not_restored
            ],
            "session_repairs": dict(
                Counter(str(key) for _, key in self.issues.values())
            ),
            "driver_fixes": self.driver_fixes,
            "duplicate_schedules": sum(max(0, r.max_schedules - 1) for r in records),
            "schedules_left_on_car": self.session_schedules(),
            "reauths": counts.reauth_events + reauth_flows,
            "calls_with_expired_token": counts.calls_with_expired_token,
            "unauthorized_401": counts.unauthorized_401,
            "calls": counts.calls,
            "answers_5xx": counts.answers_5xx,
            "answers_429": counts.answers_429,
            "commands": counts.commands,
            "commands_refused": counts.commands_refused,
            "wakes": counts.wakes,
            "token_refreshes": counts.refresh_requests,
            "token_refresh_failures": counts.refresh_failures,
            "token_refresh_replays": counts.refresh_replays,
            "restarts": sum(restarts.values()),
            "restarts_per_day": round(sum(restarts.values()) / max(1, plan.days), 2),
            "restarts_by_kind": dict(sorted(restarts.items())),
            "crashes_mid_request": sum(
                n for kind, n in crashes.items() if kind != "crash_after_token_answer"
            ),
            "crashes_after_token_answer": crashes["crash_after_token_answer"],
            "restarts_not_carried_out": dict(sorted(self.skipped.items())),
            "faults": dict(sorted(self.faults.items())),
            "start": snapshot_dict(start),
            "end": snapshot_dict(end),
            "loop_timers_growth": end.loop_timers - start.loop_timers,
            "listeners_growth": end.listeners - start.listeners,
            "memory_kib_growth": round(end.memory_kib - start.memory_kib, 1),
            "gc_objects_growth": end.gc_objects - start.gc_objects,
            "timer_kinds_changed": {
                name: end.timer_kinds.get(name, 0) - start.timer_kinds.get(name, 0)
                for name in sorted(set(start.timer_kinds) | set(end.timer_kinds))
                if end.timer_kinds.get(name, 0) != start.timer_kinds.get(name, 0)
            },
        }


def snapshot_dict(snap: Snapshot) -> dict[str, Any]:
    """Return a measurement for results.json (without the timer breakdown)."""
    return {
        "at": snap.at,
        "entry_state": snap.entry_state,
        "loop_timers": snap.loop_timers,
        "loop_timers_raw": snap.loop_timers_raw,
        "listeners": snap.listeners,
        "memory_kib": snap.memory_kib,
        "gc_objects": snap.gc_objects,
    }


def _timer_name(handle: Any) -> str:
    callback_ = handle._callback
    job = getattr(callback_, "job", None)
    target = getattr(job, "target", None) if job is not None else None
    for candidate in (target, callback_):
        name = getattr(candidate, "__qualname__", None)
        if name:
            return str(name)
    return type(callback_).__name__


@pytest.mark.parametrize("seed", SEEDS)
async def test_soak(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    fast_wake_wait: None,
    seed: int,
) -> None:
    """One seed of the chaos soak."""
    started = wall_clock()
    tracing = not tracemalloc.is_tracing()
    if tracing:
        tracemalloc.start(TRACE_FRAMES)
    try:
        result = await run_soak(hass, freezer, seed, DAYS)
    finally:
        if tracing:
            tracemalloc.stop()
    result["wall_seconds"] = round(wall_clock() - started, 2)
    write_fragment(f"soak_seed_{seed}", result)


async def run_soak(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seed: int, days: int
) -> dict[str, Any]:
    """Run one seed; return its numbers."""
    plan = draw_plan(seed, FIRST_DAY, days)
    profile = Profile(start=FIRST_DAY, days=days + 1, seed=seed)
    freezer.move_to(plan.start_at)
    await prepare_hass(hass)
    sim = profile.build(SimClock.follow(dt_util.utcnow))
    log = CallLog()
    calls = log.watch(sim)
    warnings = LogCounter()
    logging.getLogger().addHandler(warnings)
    try:
        result = await _run(hass, freezer, plan, sim, log, calls)
    finally:
        logging.getLogger().removeHandler(warnings)
    result["log_warnings"] = dict(sorted(warnings.counts.items()))
    return result


async def _run(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    plan: SoakPlan,
    sim: Simulator,
    log: CallLog,
    calls: list[Call],
) -> dict[str, Any]:
    with log.active():
        async with running_simulator(sim) as server:
            entry = add_entry(hass, sim, server.url)
            await setup_entry(hass, entry)
            clock = Clock(hass, freezer)
            crasher = Crasher(hass, entry)
            soak = Soak(hass, sim, entry, clock, crasher, plan, calls)
            log.hooks.append(soak.on_call)
            unsubs = [
                hass.bus.async_listen(EVENT_SESSION, soak.on_session),
                hass.bus.async_listen(
                    ir.EVENT_REPAIRS_ISSUE_REGISTRY_UPDATED, soak.on_issue
                ),
                hass.bus.async_listen(EVENT_REAUTH_REQUIRED, soak.on_reauth),
            ]
            for need in plan.needs:
                soak.at(
                    need.planned_at,
                    soak.plan_need(need, need.planned_at + PLAN_GIVE_UP),
                )
            for item in plan.chaos:
                soak.at(item.at, soak.chaos(item))
            original_call = FleetClient._call
            original_refresh = TeslaOAuth2Implementation.async_refresh_token

            async def _call(client: FleetClient, *args: Any, **kwargs: Any) -> Any:
                return await crasher.call(original_call, client, *args, **kwargs)

            async def _refresh(
                implementation: TeslaOAuth2Implementation, token: dict[str, Any]
            ) -> dict[str, Any]:
                return await crasher.refresh(original_refresh, implementation, token)

            with (
                patch.object(FleetClient, "_call", _call),
                patch.object(
                    TeslaOAuth2Implementation, "async_refresh_token", _refresh
                ),
            ):
                await soak.run_until(plan.measure_from)
                start = await soak.snapshot()
                await soak.run_until(plan.end_at)
                await soak.quiet()
                end = await soak.snapshot()
            result = soak.result(start, end)
            for unsub in unsubs:
                unsub()
            if entry.state is ConfigEntryState.LOADED:
                assert await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done(wait_background_tasks=True)
    result["trips"] = len(sim.vehicle().trips)
    result["clock_steps"] = clock.steps
    return result
