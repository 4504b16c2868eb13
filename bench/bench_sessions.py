"""Sessions: 200 special charging sessions with random restarts injected.

One car, plugged in at home, a session a day: at noon the driver sets a
random charge limit (the one the session must restore), and plans a charge
to a higher target by the next morning. Each session gets 0-2 restarts, chosen
by a seeded random generator:

* ``reload_scheduled``: Home Assistant restarts between planning and send;
* ``down_over_send``: it is down over the send time and back inside the window;
* ``crash_in_send``: it dies during the send, right before or right after the
  n-th Fleet API request (the car did what was asked, the answer is lost);
* ``reload_active``: it restarts while the car charges;
* ``crash_in_cleanup``: it dies during the cleanup, like crash_in_send;
* ``down_over_cleanup``: it is down over the cleanup time.

A restart is a reload of the config entry (storage survives, running tasks
are cancelled); "down" is an unload, simulated time passing, and a setup.
The scout keeps polling throughout.

Two variants with the same seed: ``rest`` (a car that takes REST commands, the
``sessions`` results) and ``signed`` (a car that requires signed commands,
signed in process with the installation's key, registered and paired; the
``sessions_signed`` results). Each handshake opens a signed-command session
with the car and is billed as a command; the integration's count of them must
match the simulated car's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
import random
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.api import FleetClient
from custom_components.tesla_scout_worker.session_manager import SessionManager
from custom_components.tesla_scout_worker.session_runner import EVENT_SESSION
from custom_components.tesla_scout_worker.usage import PRICES, ApiCategory
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import (
    AccountConfig,
    SimClock,
    SimConfig,
    Simulator,
    VehicleConfig,
    running_simulator,
)
from tesla_fleet_sim.schedules import ScheduleBook

from .conftest import (
    add_entry,
    pair_signing_key,
    plan_session,
    prepare_hass,
    setup_entry,
    usage_counts,
)
from .fragments import wall_clock, write_fragment
from .harness import (
    TZ,
    Call,
    CallLog,
    Clock,
    cost_of,
    in_windows,
    session_windows,
    summarize,
)

SESSIONS = 200
SEED = 7
FIRST_DAY = date(2025, 9, 1)
FINAL_STATES = frozenset({"completed", "cancelled", "failed"})
RESTART_KINDS = (
    "reload_scheduled",
    "down_over_send",
    "crash_in_send",
    "reload_active",
    "crash_in_cleanup",
    "down_over_cleanup",
)
FORCE_UPDATE = "button.sim_model_3_force_update"
VARIANTS = {"rest": "sessions", "signed": "sessions_signed"}
"""Variant: the fragment (results.json key) it writes."""


Action = Callable[[], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class Crash:
    """Die at the n-th request of a phase (send or cleanup)."""

    countdown: int
    after: bool  # after the request was answered (the answer is lost)


@dataclass(slots=True)
class Crasher:
    """Kills Home Assistant's session work in the middle of a Fleet API call."""

    hass: HomeAssistant
    entry: MockConfigEntry
    armed: dict[str, Crash] = field(default_factory=dict)
    crashed: list[str] = field(default_factory=list)  # phases, in order

    async def call(
        self,
        original: Callable[..., Awaitable[dict[str, Any]]],
        client: FleetClient,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run a Fleet API call, or die during it when armed for this phase."""
        task = asyncio.current_task()
        name = task.get_name() if task is not None else ""
        phase = next((p for p in ("send", "cleanup") if f" {p} " in name), None)
        crash = self.armed.get(phase or "")
        if phase is None or crash is None:
            return await original(client, *args, **kwargs)
        crash.countdown -= 1
        if crash.countdown > 0:
            return await original(client, *args, **kwargs)
        del self.armed[phase]
        if crash.after:
            await original(client, *args, **kwargs)
        self.crashed.append(phase)
        # Restart once this task is suspended: a task still in its eager
        # first step is not yet registered with the entry, so an unload
        # started from inside it could not cancel it.
        self.hass.loop.call_soon(self._restart)
        await asyncio.Event().wait()  # cancelled by the unload, like a crash
        raise AssertionError("unreachable")  # pragma: no cover

    def _restart(self) -> None:
        self.hass.async_create_task(
            self.hass.config_entries.async_reload(self.entry.entry_id)
        )


@dataclass(slots=True)
class Outcome:
    """What happened to one session."""

    index: int
    restarts: list[str]  # drawn
    done: list[str] = field(default_factory=list)  # carried out
    state: str | None = None
    reason: str | None = None
    limit_restored: bool = False
    schedules_left: int = 0
    schedule_adds: int = 0
    max_schedules: int = 0
    schedule_removals: int = 0  # the session's schedule left the car
    schedule_removes_by_command: int = 0  # successful remove_charge_schedule
    handshakes: int = 0  # answered by the car (simulator)
    handshakes_counted: int = 0  # counted by the integration
    lateness_s: float | None = None

    @property
    def clean(self) -> bool:
        """Completed, limit back, one schedule added and the same one gone."""
        return (
            self.state == "completed"
            and self.limit_restored
            and self.schedules_left == 0
            and self.schedule_adds == 1
            and self.schedule_removals == 1
        )


@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_sessions_with_restarts(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    fast_wake_wait: None,
    variant: str,
) -> None:
    """200 sessions, each resumed across its injected restarts."""
    started = wall_clock()
    signed = variant == "signed"
    rng = random.Random(SEED)
    freezer.move_to(datetime.combine(FIRST_DAY, time(11, 0), tzinfo=TZ))
    await prepare_hass(hass)
    car_config = VehicleConfig(
        plugged_in=True,
        battery_level=60,
        charge_limit_soc=60,
        state="asleep",
        command_signing="required" if signed else "allowed",  # allowed: default
    )
    sim = Simulator(
        SimConfig(accounts=[AccountConfig(vehicles=[car_config])]),
        clock=SimClock.follow(dt_util.utcnow),
    )
    car = sim.vehicle()
    if signed:
        await pair_signing_key(hass, sim)
    log = CallLog()
    calls = log.watch(sim)
    schedules_seen: list[int] = []
    removals: list[datetime] = []  # a schedule left the car (command or car)

    def _count_schedules(_sim: Simulator, call: Call) -> None:
        if call.commanding:
            schedules_seen.append(len(car.charge_schedules))

    log.hooks.append(_count_schedules)
    remove = ScheduleBook.remove

    def _removed(book: ScheduleBook, schedule_id: int) -> bool:
        found = remove(book, schedule_id)
        if found:
            removals.append(dt_util.utcnow())
        return found

    states: dict[str, list[tuple[datetime, str, str | None]]] = {}

    @callback
    def _session(event: Event[dict[str, Any]]) -> None:
        states.setdefault(event.data["session_id"], []).append(
            (dt_util.utcnow(), event.data["state"], event.data["reason"])
        )

    unsub = hass.bus.async_listen(EVENT_SESSION, _session)
    outcomes: list[Outcome] = []
    with (
        log.active(),
        usage_counts() as counted,
        patch.object(ScheduleBook, "remove", _removed),
    ):
        async with running_simulator(sim) as server:
            entry = add_entry(hass, sim, server.url, polling=True)
            await setup_entry(hass, entry)
            clock = Clock(hass, freezer)
            crasher = Crasher(hass, entry)
            original_call = FleetClient._call

            async def _call(client: FleetClient, *args: Any, **kwargs: Any) -> Any:
                return await crasher.call(original_call, client, *args, **kwargs)

            with patch.object(FleetClient, "_call", _call):
                for index in range(SESSIONS):
                    day = FIRST_DAY + timedelta(days=index)
                    await clock.run_until(datetime.combine(day, time(12), tzinfo=TZ))
                    first_call = len(calls)
                    first_count = len(schedules_seen)
                    first_removal = len(removals)
                    handshakes = car.verifier.handshakes
                    handshakes_counted = counted[ApiCategory.HANDSHAKE]
                    outcome = await run_session(
                        hass, entry, sim, clock, crasher, rng, index, states
                    )
                    mine = calls[first_call:]
                    outcome.schedule_adds = sum(
                        1
                        for c in mine
                        if c.command == "add_charge_schedule" and c.result
                    )
                    outcome.schedule_removes_by_command = sum(
                        1
                        for c in mine
                        if c.command == "remove_charge_schedule" and c.result
                    )
                    outcome.schedule_removals = len(removals) - first_removal
                    outcome.max_schedules = max(schedules_seen[first_count:], default=0)
                    outcome.handshakes = car.verifier.handshakes - handshakes
                    outcome.handshakes_counted = (
                        counted[ApiCategory.HANDSHAKE] - handshakes_counted
                    )
                    outcomes.append(outcome)
            crashes = len(crasher.crashed)
            assert await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done(wait_background_tasks=True)
    unsub()

    adds = [c for c in calls if c.command == "add_charge_schedule" and c.result]
    by_kind = Counter(kind for o in outcomes for kind in o.done)
    # The crashes find the session's work by its task names; if those change,
    # say so instead of quietly testing less.
    assert crashes > 0, "no crash was injected: did the session task names change?"
    completed_restored = [
        o
        for o in outcomes
        if o.state == "completed" and o.limit_restored and o.schedules_left == 0
    ]
    timely = [o.lateness_s for o in outcomes if o.lateness_s is not None]
    problems = [
        {
            "session": o.index,
            "restarts": o.done,
            "state": o.state,
            "reason": o.reason,
            "limit_restored": o.limit_restored,
            "schedules_left": o.schedules_left,
            "schedule_adds": o.schedule_adds,
            "schedule_removals": o.schedule_removals,
            "handshakes": o.handshakes,
            "handshakes_counted": o.handshakes_counted,
        }
        for o in outcomes
        if not o.clean or o.handshakes != o.handshakes_counted
    ]
    clean = sum(1 for o in outcomes if o.clean)
    events = sorted(
        (
            (at, session_id, state)
            for session_id, history in states.items()
            for at, state, _reason in history
        ),
        key=lambda event: event[0],
    )
    windows = session_windows(events)
    in_sessions = [c for c in calls if in_windows(c.at, windows)]
    handshakes = car.verifier.handshakes
    session_cost = sum(cost_of(sim, c, bill_state_checks=True) for c in in_sessions)
    handshake_cost = handshakes * PRICES[ApiCategory.HANDSHAKE]
    per_session = [o.handshakes for o in outcomes]
    result = {
        "sessions": len(outcomes),
        "restarts": sum(len(o.done) for o in outcomes),
        "restarts_by_kind": dict(sorted(by_kind.items())),
        "crashes_mid_request": crashes,
        "sessions_without_restart": sum(1 for o in outcomes if not o.done),
        "sessions_with_two_restarts": sum(1 for o in outcomes if len(o.done) > 1),
        "completed_with_limit_restored": len(completed_restored),
        "completed_with_limit_restored_fraction": round(
            len(completed_restored) / len(outcomes), 4
        ),
        "final_states": dict(Counter(str(o.state) for o in outcomes)),
        "duplicate_schedules": sum(max(0, o.max_schedules - 1) for o in outcomes),
        "schedule_adds": len(adds),
        "sessions_with_more_than_one_add": sum(
            1 for o in outcomes if o.schedule_adds > 1
        ),
        "schedules_left_on_car": sum(o.schedules_left for o in outcomes),
        "send_lateness_s": {
            key: None if value is None else round(value, 3)
            for key, value in summarize(timely).items()
        },
        "send_lateness_sessions": len(timely),
        "completed_one_add_one_removal": clean,
        "completed_one_add_one_removal_fraction": round(clean / len(outcomes), 4),
        "schedule_removals": {
            "by_command": sum(o.schedule_removes_by_command for o in outcomes),
            "by_car": sum(
                o.schedule_removals - o.schedule_removes_by_command for o in outcomes
            ),
        },
        "wakes": sum(1 for c in calls if c.route == "wake_up"),
        "commands": sum(1 for c in calls if c.commanding and not c.handshake),
        "rest_commands": sum(1 for c in calls if c.route == "command"),
        "commands_billed": sim.ledger.counts.get("command", 0),
        "command_signing": car.config.command_signing,
        "handshakes": {
            "counted": counted[ApiCategory.HANDSHAKE],
            "simulator": handshakes,
        },
        "handshakes_per_session": {
            "mean": round(sum(per_session) / len(per_session), 3),
            "max": max(per_session),
            "sessions_by_count": {
                str(n): k for n, k in sorted(Counter(per_session).items())
            },
        },
        "handshakes_outside_sessions": sum(
            1 for c in calls if c.handshake and not in_windows(c.at, windows)
        ),
        "calls_in_sessions": len(in_sessions),
        "cost_usd": {
            "total": round(
                sum(cost_of(sim, c, bill_state_checks=True) for c in calls), 4
            ),
            "sessions": round(session_cost, 4),
            "per_session": round(session_cost / len(outcomes), 5),
            "handshakes": round(handshake_cost, 4),
            "handshake_share_of_sessions": (
                round(handshake_cost / session_cost, 4) if session_cost else None
            ),
        },
        "calls_with_expired_token": sum(1 for c in calls if c.expired),
        "problems": problems,
        "simulated_days": SESSIONS,
        "wall_seconds": round(wall_clock() - started, 2),
    }
    write_fragment(VARIANTS[variant], result)


async def run_session(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    clock: Clock,
    crasher: Crasher,
    rng: random.Random,
    index: int,
    states: dict[str, list[tuple[datetime, str, str | None]]],
) -> Outcome:
    """Plan one session at noon, inject its restarts, run it to its end."""
    car = sim.vehicle()
    limit = rng.randint(50, 80)
    target = min(100, limit + rng.randint(5, 30))
    ready_by = datetime.combine(
        dt_util.now().date() + timedelta(days=1),
        time(rng.randint(4, 8), rng.choice((0, 15, 30, 45))),
        tzinfo=TZ,
    )
    mode = rng.choice(("deadline", "off_peak"))
    count = rng.choice((0, 1, 1, 2))
    restarts = sorted(rng.sample(RESTART_KINDS, count), key=RESTART_KINDS.index)
    outcome = Outcome(index, restarts)

    # The driver sets the limit in the app and the car reports in.
    car.set_charge_limit(limit)
    car.set_battery(limit)
    car.come_online()
    await hass.services.async_call(
        "button", "press", {"entity_id": FORCE_UPDATE}, blocking=True
    )
    await clock.settle()
    schedules_before = len(car.charge_schedules)
    response = await plan_session(hass, car.vin, target, ready_by, mode=mode)
    session_id = str(response["session_id"])
    send_at = datetime.fromisoformat(response["send_at"])
    start = datetime.fromisoformat(response["start"])
    end = datetime.fromisoformat(response["end"])
    cleanup_at = datetime.fromisoformat(response["cleanup_at"])
    now = dt_util.utcnow()

    # Down over the send: off before it, back inside the charging window.
    send_off = max(now, send_at - timedelta(minutes=rng.randint(1, 60)))
    room = min(end - timedelta(minutes=5), send_at + timedelta(minutes=90))
    send_back = send_at + (room - send_at) * rng.uniform(0.02, 1.0)
    down_over_send = "down_over_send" in restarts
    actions: list[tuple[datetime, str, Action]] = []
    for kind in restarts:
        if kind == "reload_scheduled":
            latest = send_off if down_over_send else send_at
            if latest - now > timedelta(minutes=2):
                at = now + (latest - now) * rng.uniform(0.05, 0.95)
                actions.append((at, kind, _reload(hass, entry)))
        elif kind == "down_over_send":
            actions.append((send_off, kind, _unload(hass, entry)))
            actions.append((send_back, "", _setup(hass, entry)))
        elif kind in ("crash_in_send", "crash_in_cleanup"):
            phase = kind.removeprefix("crash_in_")
            crasher.armed[phase] = Crash(rng.randint(1, 6), rng.random() < 0.5)
        elif kind == "reload_active":
            first = max(start, send_back) if down_over_send else start
            at = first + (end - first) * rng.uniform(0.05, 0.95)
            actions.append((at, kind, _reload(hass, entry)))
        elif kind == "down_over_cleanup":
            off = cleanup_at - timedelta(minutes=rng.randint(1, 25))
            back = cleanup_at + timedelta(minutes=rng.randint(1, 120))
            actions.append((off, kind, _unload(hass, entry)))
            actions.append((back, "", _setup(hass, entry)))
    crashes_before = len(crasher.crashed)
    for at, kind, action in sorted(actions, key=lambda item: item[0]):
        await clock.run_until(at)
        await action()
        if kind:
            outcome.done.append(kind)
    deadline = cleanup_at + timedelta(hours=8)
    while not _finished(states, session_id) and dt_util.utcnow() < deadline:
        await clock.run_until(min(deadline, dt_util.utcnow() + timedelta(minutes=30)))
    crasher.armed.clear()
    outcome.done += [f"crash_in_{p}" for p in crasher.crashed[crashes_before:]]
    outcome.done.sort(key=RESTART_KINDS.index)

    history = states.get(session_id, [])
    if history:
        outcome.state, outcome.reason = history[-1][1], history[-1][2]
    outcome.limit_restored = car.charge_limit_soc == limit
    outcome.schedules_left = len(car.charge_schedules) - schedules_before
    manager: SessionManager | None = entry.runtime_data.sessions
    session = manager.sessions.get(session_id) if manager is not None else None
    if session is not None and not down_over_send:
        started = session.send_started_at
        planned = session.plan.send_at
        if started is not None and planned is not None:
            outcome.lateness_s = (started - planned).total_seconds()
    return outcome


def _finished(
    states: dict[str, list[tuple[datetime, str, str | None]]], session_id: str
) -> bool:
    history = states.get(session_id)
    if not history:
        return False
    return history[-1][1] in FINAL_STATES


def _reload(hass: HomeAssistant, entry: MockConfigEntry) -> Action:
    async def action() -> None:
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)

    return action


def _unload(hass: HomeAssistant, entry: MockConfigEntry) -> Action:
    async def action() -> None:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)

    return action


def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> Action:
    async def action() -> None:
        await setup_entry(hass, entry)

    return action
