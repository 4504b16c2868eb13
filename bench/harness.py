"""Shared machinery of the benchmarks: clock driver, call log, profile, metrics.

Nothing here sleeps in real time. Home Assistant's clock is frozen (freezegun);
:class:`Clock` moves it from one scheduled timer of the event loop to the next
and runs the timers that became due, so every timer of the integration fires
at its exact moment and a simulated month costs only its events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
import math
import random
import statistics
from typing import Any
from unittest.mock import patch
from zoneinfo import ZoneInfo

from freezegun import api as freezegun_api
from freezegun.api import FrozenDateTimeFactory

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import (
    DEFAULT_HOME,
    AccountConfig,
    Location,
    SimClock,
    SimConfig,
    Simulator,
    Trip,
    VehicleConfig,
    api as sim_api,
    commands as sim_commands,
    endpoints as sim_endpoints,
)
from tesla_fleet_sim.commands import CommandBody
from tesla_fleet_sim.geo import distance_km
from tesla_fleet_sim.vehicle import CommandResult, SimVehicle

TIME_ZONE = "Europe/Warsaw"  # the simulated car's time zone
TZ = ZoneInfo(TIME_ZONE)
HOME = DEFAULT_HOME
HOME_RADIUS_KM = 0.1  # zone.home's default radius
SECONDS_PER_MINUTE = 60.0


# --------------------------------------------------------------------------
# Clock
# --------------------------------------------------------------------------


class WallTimeExceededError(Exception):
    """A run went on past its wall-time limit (a loop that makes no progress)."""


class Clock:
    """Move Home Assistant's frozen clock from due timer to due timer.

    Each step jumps to the earliest scheduled timer of the event loop (or
    ``max_step``, whichever is sooner), fires what is due and waits for every
    task, including background tasks doing loopback HTTP, before the next jump.

    pytest-timeout cannot stop a run that loops here: its exception is raised
    wherever the main thread stands, usually inside a timer's callback or a
    task, and the event loop swallows it there. So the clock itself checks the
    wall time between steps and raises :class:`WallTimeExceededError` in the
    benchmark's own coroutine once ``wall_limit`` seconds (bench/conftest.py
    sets pytest's ``--timeout``) have passed since it was made. The clock is
    read through freezegun's module: a copy of the real function bound in this
    module would be replaced by the frozen one when the freezer starts.
    """

    wall_limit: float | None = None

    def __init__(
        self,
        hass: HomeAssistant,
        freezer: FrozenDateTimeFactory,
        max_step: timedelta = timedelta(hours=1),
    ) -> None:
        """Drive ``hass`` with ``freezer``."""
        self.hass = hass
        self.freezer = freezer
        self.max_step = max_step
        self.steps = 0
        self.deadline = (
            freezegun_api.real_monotonic() + self.wall_limit
            if self.wall_limit
            else None
        )

    def _check_wall_time(self) -> None:
        if self.deadline is not None and freezegun_api.real_monotonic() > self.deadline:
            raise WallTimeExceededError(
                f"simulated time stood at {dt_util.utcnow().isoformat()} after "
                f"{self.wall_limit:.0f} s of wall time ({self.steps} steps)"
            )

    def _seconds_to_next(self) -> float | None:
        """Seconds (loop clock) until the earliest timer that matters is due."""
        loop = self.hass.loop
        handles = loop._scheduled  # type: ignore[attr-defined]
        whens = [h.when() for h in handles if not h.cancelled() and not housekeeping(h)]
        return min(whens) - loop.time() if whens else None

    def next_due(self) -> datetime | None:
        """Return when the earliest live timer of the event loop is due."""
        seconds = self._seconds_to_next()
        if seconds is None:
            return None
        # Round up to the microsecond so the jump never stops just short.
        micros = math.ceil(max(0.0, seconds) * 1e6)
        return dt_util.utcnow() + timedelta(microseconds=micros)

    def _fire_due(self) -> int:
        """Run the timers that are due, earliest first; returns how many.

        Under the test plugin the event loop does not run timers of the frozen
        clock by itself; they are run here, as the plugin's
        ``async_fire_time_changed`` does, but in time order and without its
        per-timer patching (which dominated the run time).
        """
        loop = self.hass.loop
        now = loop.time()
        handles = loop._scheduled  # type: ignore[attr-defined]
        due = sorted(
            (h for h in handles if not h.cancelled() and h.when() <= now),
            key=lambda h: h.when(),
        )
        for handle in due:
            if not handle.cancelled():
                handle._run()
                handle.cancel()
        return len(due)

    async def settle(self) -> None:
        """Run every timer that is due and every task until all are done."""
        loop = self.hass.loop
        while True:
            self._check_wall_time()
            await asyncio.sleep(0)
            fired = self._fire_due()
            await self.hass.async_block_till_done(wait_background_tasks=True)
            # Callbacks scheduled with call_soon (event dispatch hops) too.
            if not fired and not loop._ready:  # type: ignore[attr-defined]
                return

    async def step_to(self, target: datetime) -> None:
        """Jump to ``target`` (not before now) and run what became due."""
        if target > dt_util.utcnow():
            self.freezer.move_to(target)
        self.steps += 1
        await self.settle()

    async def run_until(self, end: datetime) -> None:
        """Let simulated time pass until ``end``, firing every timer on time."""
        await self.settle()
        while (now := dt_util.utcnow()) < end:
            target = min(end, now + self.max_step)
            due = self.next_due()
            if due is not None:
                target = min(target, max(due, now + timedelta(microseconds=1)))
            await self.step_to(target)


def housekeeping(handle: asyncio.TimerHandle) -> bool:
    """Whether a timer only tidies up and need not stop the clock.

    Two timers repeat forever and would make the clock crawl: the legacy
    device tracker's stale check (every 5 s) and the HTTP connector's sweep of
    closed TLS transports (every minute). They run late, at the next stop.
    """
    callback_ = handle._callback  # type: ignore[attr-defined]
    if getattr(callback_, "__qualname__", "") == "_weakref_handle":
        args = handle._args
        return bool(args) and args[0][1] == "_cleanup_closed"
    job = getattr(callback_, "job", None)
    name = str(getattr(job, "name", "") or "")
    return "DeviceTracker.async_update_stale" in name


# --------------------------------------------------------------------------
# Call log: every Fleet API request the simulator answered, with its body
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """One Fleet API request as the simulator saw it."""

    at: datetime
    route: str
    path: str
    method: str
    category: str
    vin: str | None
    command: str | None
    body: dict[str, Any]
    query: dict[str, str]
    status: int
    billed: bool
    expired: bool
    result: bool | None = None  # a command's "result" (None for other requests)
    handshake: bool = False
    """A ``signed_command`` the car answered as a session handshake."""
    carried_out: tuple[tuple[str, dict[str, Any], bool], ...] = ()
    """Commands the car carried out for the request: name, parameters, result."""

    @property
    def commanding(self) -> bool:
        """Whether the request is a command, REST or signed (handshakes too)."""
        return self.route in COMMAND_ROUTES


COMMAND_ROUTES = frozenset({"command", "signed_command"})


class CallLog:
    """Records the Fleet API requests of the simulators it watches."""

    def __init__(self) -> None:
        """Start empty."""
        self._logs: dict[int, list[Call]] = {}
        self.hooks: list[Callable[[Simulator, Call], None]] = []

    def watch(self, sim: Simulator) -> list[Call]:
        """Record the requests of ``sim``; returns its (live) list."""
        return self._logs.setdefault(id(sim), [])

    @contextmanager
    def active(self) -> Iterator[CallLog]:
        """Wrap the simulator's request pipeline while the block runs."""
        original = sim_api.handle
        run_command = sim_commands.run_command
        carried_out: list[tuple[str, dict[str, Any], bool]] = []

        def spy(car: SimVehicle, name: str, body: CommandBody) -> CommandResult:
            result = run_command(car, name, body)
            carried_out.append((name, dict(body), bool(result[0])))
            return result

        def handle(sim: Simulator, request: sim_api.ApiRequest) -> sim_api.ApiResponse:
            carried_out.clear()
            handshakes = _handshakes(sim)
            response = original(sim, request)
            log = self._logs.get(id(sim))
            if log is not None:
                record = sim.requests[-1]
                done = tuple(carried_out)
                signed = request.route.name == "signed_command"
                call = Call(
                    at=record.time,
                    route=request.route.name,
                    path=request.path,
                    method=request.method,
                    category=request.route.category,
                    vin=record.vin,
                    # A signed message names its command only inside: the one
                    # the car carried out stands for it.
                    command=done[0][0] if signed and done else request.command,
                    body=dict(request.body),
                    query=dict(request.query),
                    status=response.status,
                    billed=record.billed,
                    expired=record.expired,
                    result=done[0][2] if signed and done else _command_result(response),
                    handshake=signed and _handshakes(sim) > handshakes,
                    carried_out=done,
                )
                log.append(call)
                for hook in self.hooks:
                    hook(sim, call)
            return response

        with (
            patch.object(sim_api, "handle", handle),
            patch.object(sim_commands, "run_command", spy),
        ):
            yield self


def _handshakes(sim: Simulator) -> int:
    """Session handshakes the simulator's cars have answered so far."""
    return sum(car.verifier.handshakes for car in sim.vehicles)


def _command_result(response: sim_api.ApiResponse) -> bool | None:
    inner = response.body.get("response")
    if isinstance(inner, dict) and isinstance(inner.get("result"), bool):
        return bool(inner["result"])
    return None


ROUTES = {
    route.name: route
    for route in (
        sim_endpoints.LIST_VEHICLES,
        sim_endpoints.GET_VEHICLE,
        sim_endpoints.VEHICLE_DATA,
        sim_endpoints.WAKE_UP,
        sim_endpoints.COMMAND_ROUTE,
        sim_endpoints.PRODUCTS,
    )
}


def send(sim: Simulator, token: str, call: Call) -> sim_api.ApiResponse:
    """Send the request ``call`` describes to ``sim`` in-process (no HTTP)."""
    request = sim_api.ApiRequest(
        method=call.method,
        path=call.path,
        route=ROUTES[call.route],
        authorization=f"Bearer {token}",
        query=call.query,
        body=call.body,
        base_url="http://bench.invalid",
        vin=call.vin,
        command=call.command,
    )
    return sim_api.handle(sim, request)


# --------------------------------------------------------------------------
# The reference commuter profile
# --------------------------------------------------------------------------

PLUG_IN_WEEKDAYS = frozenset({0, 2, 4})  # Monday, Wednesday, Friday nights
SESSION_WEEKDAY = 2  # Wednesday night: charge to 90 % by Thursday 07:00
SESSION_TARGET = 90
SESSION_PLANNED_AT = time(21, 0)
SESSION_READY_BY = time(7, 0)


@dataclass(frozen=True, slots=True)
class Drive:
    """One scripted drive."""

    at: datetime
    action: str  # drive_to_work, drive_home or drive_to (with ``to``)
    minutes: float
    plug_in: bool
    to: Location | None = None

    @property
    def home(self) -> bool:
        """Whether the drive ends at home."""
        return self.action == "drive_home"

    @property
    def arrives(self) -> datetime:
        """When the drive ends."""
        return self.at + timedelta(minutes=self.minutes)


@dataclass(frozen=True, slots=True)
class SessionNeed:
    """A special charging session the driver asks for."""

    planned_at: datetime
    ready_by: datetime
    target_soc: int


PROFILE_KINDS = ("commuter", "irregular", "homebody", "two_shift")
"""The month's driver profiles (see Profile)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """A seeded month of one driver.

    ``kind`` picks the driver (times and durations are drawn from a seeded
    random generator, so every policy sees the same month):

    * ``commuter`` (the reference): every day to work between 07:15 and 07:45
      (22-30 min), home between 16:30 and 18:00 (25-40 min); plugged in on
      arriving home on Monday, Wednesday and Friday; on Wednesday at 21:00 the
      driver plans a special charging session to 90 % by Thursday 07:00;
    * ``irregular``: no routine. Two trips away of 2-4 days (a 2.5-4 h drive
      each way, starting between 07:00 and 15:00); other days 0-3 errands
      (weekends 1-3) at random times between 08:00 and 20:30, to a random place
      2-15 km away (sometimes a second place before home), 15 min to 3 h
      there; plugged in after a third of the drives home;
    * ``homebody``: stays home; every 2-4 days one errand between 09:00 and
      18:00 (5-20 min each way, 30 min to 2 h there);
    * ``two_shift``: alternate weeks of early shifts (leaves about 05:30, back
      from about 14:00) and late shifts (leaves about 13:30, back from about
      22:00), Monday to Friday; on Saturday one errand in the morning;
      plugged in on Monday, Wednesday and Friday.

    Only the commuter plans special charging sessions.
    """

    start: date
    days: int = 30
    seed: int = 2025
    battery_level: float = 62.0
    charge_limit: int = 80
    kind: str = "commuter"
    data_keeps_awake: bool = True
    command_signing: str = "allowed"
    """The car's ``VehicleConfig.command_signing`` ("required": signed only)."""

    @property
    def start_at(self) -> datetime:
        """Local midnight of the first day."""
        return datetime.combine(self.start, time(0), tzinfo=TZ)

    @property
    def end_at(self) -> datetime:
        """Local midnight after the last day."""
        return datetime.combine(
            self.start + timedelta(days=self.days), time(0), tzinfo=TZ
        )

    def drives(self) -> list[Drive]:
        """Return the month's drives."""
        match self.kind:
            case "commuter":
                return self._commuter()
            case "irregular":
                return self._irregular()
            case "homebody":
                return self._homebody()
            case "two_shift":
                return self._two_shift()
        raise ValueError(f"unknown profile {self.kind!r}")

    def _day(self, offset: int, hour: int, minute: int = 0) -> datetime:
        day = self.start + timedelta(days=offset)
        return datetime.combine(day, time(hour, minute), tzinfo=TZ)

    def _commuter(self) -> list[Drive]:
        rng = random.Random(self.seed)
        found: list[Drive] = []
        for offset in range(self.days):
            day = self.start + timedelta(days=offset)
            leave_home = datetime.combine(day, time(7, 30), tzinfo=TZ) + timedelta(
                minutes=rng.randint(-15, 15)
            )
            leave_work = datetime.combine(day, time(17, 0), tzinfo=TZ) + timedelta(
                minutes=rng.randint(-30, 60)
            )
            found.append(
                Drive(leave_home, "drive_to_work", rng.uniform(22, 30), plug_in=False)
            )
            found.append(
                Drive(
                    leave_work,
                    "drive_home",
                    rng.uniform(25, 40),
                    plug_in=day.weekday() in PLUG_IN_WEEKDAYS,
                )
            )
        return found

    def _errand(
        self,
        rng: random.Random,
        leave: datetime,
        *,
        km: tuple[float, float],
        stay_min: tuple[float, float],
        stops: int = 1,
        plug_in: float = 0.0,
    ) -> list[Drive]:
        """Home to ``stops`` random places and back; drives at about 30 km/h."""
        found: list[Drive] = []
        here, at = HOME, leave
        for _ in range(stops):
            place = _place_near(rng, rng.uniform(*km))
            minutes = max(5.0, distance_km(here, place) / 30 * 60)
            found.append(Drive(at, "drive_to", minutes, plug_in=False, to=place))
            at = found[-1].arrives + timedelta(minutes=rng.uniform(*stay_min))
            here = place
        minutes = max(5.0, distance_km(here, HOME) / 30 * 60)
        found.append(Drive(at, "drive_home", minutes, plug_in=rng.random() < plug_in))
        return found

    def _irregular(self) -> list[Drive]:
        rng = random.Random(self.seed)
        found: list[Drive] = []
        away: set[int] = set()
        for first in rng.sample(range(1, self.days - 5, 7), 2):
            length = rng.randint(2, 4)
            far = _place_near(rng, rng.uniform(150, 250))
            out = self._day(first, 7) + timedelta(minutes=rng.randint(0, 480))
            back = self._day(first + length, 9) + timedelta(minutes=rng.randint(0, 360))
            found.append(Drive(out, "drive_to", rng.uniform(150, 240), False, to=far))
            found.append(Drive(back, "drive_home", rng.uniform(150, 240), False))
            away.update(range(first, first + length + 1))
        for offset in range(self.days):
            if offset in away:
                continue
            weekend = (self.start + timedelta(days=offset)).weekday() >= 5
            count = rng.choice((1, 2, 2, 3) if weekend else (0, 1, 1, 2, 3))
            free = self._day(offset, 8)
            for _ in range(count):
                leave = free + timedelta(minutes=rng.uniform(0, 240))
                if leave >= self._day(offset, 20, 30):
                    break
                errand = self._errand(
                    rng,
                    leave,
                    km=(2, 15),
                    stay_min=(15, 180),
                    stops=2 if rng.random() < 0.25 else 1,
                    plug_in=1 / 3,
                )
                found.extend(errand)
                free = errand[-1].arrives + timedelta(minutes=10)
        return sorted(found, key=lambda d: d.at)

    def _homebody(self) -> list[Drive]:
        rng = random.Random(self.seed)
        found: list[Drive] = []
        offset = rng.randint(0, 2)
        while offset < self.days:
            leave = self._day(offset, 9) + timedelta(minutes=rng.uniform(0, 540))
            found.extend(self._errand(rng, leave, km=(2, 8), stay_min=(30, 120)))
            offset += rng.randint(2, 4)
        return found

    def _two_shift(self) -> list[Drive]:
        rng = random.Random(self.seed)
        found: list[Drive] = []
        for offset in range(self.days):
            day = self.start + timedelta(days=offset)
            if day.weekday() == 5:
                leave = self._day(offset, 9, 30) + timedelta(
                    minutes=rng.uniform(0, 150)
                )
                found.extend(self._errand(rng, leave, km=(2, 10), stay_min=(20, 90)))
                continue
            if day.weekday() == 6:
                continue
            early = (offset // 7) % 2 == 0
            go, back = ((5, 30), (14, 0)) if early else ((13, 30), (22, 0))
            leave = self._day(offset, *go) + timedelta(minutes=rng.randint(-10, 10))
            done = self._day(offset, *back) + timedelta(minutes=rng.randint(-10, 30))
            found.append(Drive(leave, "drive_to_work", rng.uniform(20, 30), False))
            found.append(
                Drive(
                    done,
                    "drive_home",
                    rng.uniform(20, 35),
                    plug_in=day.weekday() in PLUG_IN_WEEKDAYS,
                )
            )
        return found

    def sessions(self) -> list[SessionNeed]:
        """Return the weekly special charging sessions."""
        found: list[SessionNeed] = []
        if self.kind != "commuter":
            return found
        for offset in range(self.days - 1):
            day = self.start + timedelta(days=offset)
            if day.weekday() != SESSION_WEEKDAY:
                continue
            found.append(
                SessionNeed(
                    planned_at=datetime.combine(day, SESSION_PLANNED_AT, tzinfo=TZ),
                    ready_by=datetime.combine(
                        day + timedelta(days=1), SESSION_READY_BY, tzinfo=TZ
                    ),
                    target_soc=SESSION_TARGET,
                )
            )
        return found

    def config(self) -> SimConfig:
        """Return the simulator's configuration (one car, asleep at home)."""
        car = VehicleConfig(
            state="asleep",
            battery_level=self.battery_level,
            charge_limit_soc=self.charge_limit,
            battery_capacity_kwh=75.0,
            timezone=TIME_ZONE,
            command_signing=self.command_signing,
        )
        return SimConfig(
            accounts=[AccountConfig(vehicles=[car])],
            data_keeps_awake=self.data_keeps_awake,
        )

    def build(self, clock: SimClock) -> Simulator:
        """Return a simulator with the month's drives scripted."""
        sim = Simulator(self.config(), clock=clock)
        for drive in self.drives():
            place: dict[str, Any] = {} if drive.to is None else {"location": drive.to}
            sim.schedule_event(
                drive.at,
                drive.action,
                duration=timedelta(minutes=drive.minutes),
                plug_in_on_arrival=drive.plug_in,
                **place,
            )
        return sim


def _place_near(rng: random.Random, km: float) -> Location:
    """Return a place ``km`` from home in a random direction."""
    angle = rng.uniform(0, 2 * math.pi)
    lat = HOME.lat + km * math.cos(angle) / 111.32
    lon = HOME.lon + km * math.sin(angle) / (111.32 * math.cos(math.radians(HOME.lat)))
    return Location(lat=lat, lon=lon)


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


@dataclass(slots=True)
class Window:
    """A time span during which a special charging session used the car."""

    start: datetime
    end: datetime

    def __contains__(self, moment: datetime) -> bool:
        """Whether ``moment`` lies in the window (inclusive)."""
        return self.start <= moment <= self.end


def in_windows(moment: datetime, windows: Sequence[Window]) -> bool:
    """Whether ``moment`` lies in one of ``windows``."""
    return any(moment in window for window in windows)


def session_windows(events: Iterable[tuple[datetime, str, str]]) -> list[Window]:
    """Turn (time, session id, state) events into send and cleanup windows."""
    windows: list[Window] = []
    opened: dict[str, datetime] = {}
    for at, session_id, state in events:
        if state in ("sending", "cleaning"):
            opened.setdefault(session_id, at)
        elif session_id in opened:
            windows.append(Window(opened.pop(session_id), at))
    windows.extend(Window(start, start) for start in opened.values())
    return windows


def is_polling(call: Call, windows: Sequence[Window]) -> bool:
    """Whether a call is a check of the car rather than a session's work."""
    return call.category in ("state_check", "data") and not in_windows(call.at, windows)


def awake_seconds_without_polling(
    profile: Profile, calls: Sequence[Call], windows: Sequence[Window], end: datetime
) -> float:
    """Replay the month with every call except the polling ones; awake seconds.

    Wakes, commands and the session's own reads reach a fresh simulator of the
    same profile at the same moments, so the difference to the real run is the
    time the checks kept the car awake.
    """
    clock = SimClock.manual(profile.start_at)
    sim = profile.build(clock)
    for call in sorted(calls, key=lambda c: c.at):
        if is_polling(call, windows) or call.vin is None or call.status >= 400:
            continue
        clock.set(max(call.at, clock.now()))
        car = sim.vehicle(call.vin)
        if call.route == "wake_up":
            car.request_wake()
        elif call.route == "vehicle_data":
            if sim.config.data_keeps_awake:
                car.note_activity()
        elif call.route == "command" and car.note_activity():
            sim_commands.run_command(car, call.command or "", call.body)
        elif call.route == "signed_command" and car.note_activity():
            for name, params, _result in call.carried_out:
                sim_commands.run_command(car, name, params)
    clock.set(max(end, clock.now()))
    return sim.vehicle().awake_seconds


def cost_of(sim: Simulator, call: Call, bill_state_checks: bool) -> float:
    """Return the price of one call."""
    if not call.billed or (call.category == "state_check" and not bill_state_checks):
        return 0.0
    return sim.config.prices.price_of(call.category)


def cost_per_day(
    sim: Simulator, calls: Iterable[Call], first: date, days: int
) -> list[float]:
    """Return the cost (state checks billed) of each local day."""
    totals = [0.0] * days
    for call in calls:
        index = (call.at.astimezone(TZ).date() - first).days
        if 0 <= index < days:
            totals[index] += cost_of(sim, call, bill_state_checks=True)
    return [round(v, 6) for v in totals]


def at_home(payload: dict[str, Any]) -> bool | None:
    """Whether a vehicle_data answer places the car in the home zone."""
    drive = payload.get("drive_state") or {}
    lat, lon = drive.get("latitude"), drive.get("longitude")
    if lat is None or lon is None:
        return None
    return distance_km(Location(float(lat), float(lon)), HOME) <= HOME_RADIUS_KM


@dataclass(slots=True)
class Arrivals:
    """Delays from the car's arrivals home to the policy's "at home"."""

    delays_s: list[float] = field(default_factory=list)
    missed: int = 0
    departure_unseen: int = 0

    @property
    def count(self) -> int:
        """Arrivals considered."""
        return len(self.delays_s) + self.missed + self.departure_unseen

    def summary(self) -> dict[str, Any]:
        """Return the JSON summary."""
        delays = sorted(self.delays_s)
        return {
            "arrivals": self.count,
            "detected": len(delays),
            "missed": self.missed,
            "departure_unseen": self.departure_unseen,
            "median_min": _minutes(percentile(delays, 50)),
            "p95_min": _minutes(percentile(delays, 95)),
            "max_min": _minutes(delays[-1] if delays else None),
        }


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / SECONDS_PER_MINUTE, 2)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Return the nearest-rank percentile of sorted ``values``."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def arrival_delays(
    trips: Sequence[Trip],
    home_states: Sequence[tuple[datetime, bool]],
    end: datetime,
) -> Arrivals:
    """Match each trip home with the policy's first "at home" during it or after.

    ``home_states`` are the policy's at-home changes (time, value) in order.
    The change must come after the trip's departure and before the next one;
    the delay counts from the arrival (0 when the car was seen inside the home
    zone just before its trip ended). A trip home never seen counts as
    ``missed``; one during which the policy kept showing "home" because it
    never saw the car leave counts as ``departure_unseen``.
    """
    result = Arrivals()
    departures = sorted(t.departed for t in trips)
    for trip in trips:
        if not trip.home:
            continue
        leaves = min((d for d in departures if d > trip.arrived), default=end)
        seen = next(
            (at for at, value in home_states if value and trip.departed <= at < leaves),
            None,
        )
        if seen is not None:
            result.delays_s.append(max(0.0, (seen - trip.arrived).total_seconds()))
            continue
        before = [value for at, value in home_states if at < trip.departed]
        if before and before[-1]:
            result.departure_unseen += 1
        else:
            result.missed += 1
    return result


def home_state_error(
    trips: Sequence[Trip],
    home_states: Sequence[tuple[datetime, bool]],
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """Minutes the policy's "at home" was wrong, and unknown, over the run.

    The truth starts at home and changes at every departure and arrival.
    """
    changes: list[tuple[datetime, int, bool]] = []
    for trip in trips:
        changes.append((trip.departed, 0, False))
        changes.append((trip.arrived, 0, trip.home))
    changes.extend((at, 1, value) for at, value in home_states)
    changes.sort(key=lambda item: (item[0], item[1]))
    truth: bool = True
    belief: bool | None = None
    wrong = unknown = 0.0
    believed_home = 0.0  # truth away, belief home: a departure not yet seen
    spans: list[tuple[float, datetime]] = []
    cursor = start
    for at, kind, value in [*changes, (end, 2, False)]:
        moment = min(max(at, start), end)
        span = (moment - cursor).total_seconds()
        if belief is None:
            unknown += span
        elif belief != truth:
            wrong += span
            if belief:
                believed_home += span
            if spans and spans[-1][1] + timedelta(seconds=spans[-1][0]) == cursor:
                spans[-1] = (spans[-1][0] + span, spans[-1][1])
            elif span > 0:
                spans.append((span, cursor))
        cursor = moment
        if kind == 0:
            truth = value
        elif kind == 1:
            belief = value
    longest = sorted(spans, reverse=True)[:3]
    return {
        "wrong_minutes": round(wrong / SECONDS_PER_MINUTE, 1),
        "unknown_minutes": round(unknown / SECONDS_PER_MINUTE, 1),
        "wrong_believed_home_minutes": round(believed_home / SECONDS_PER_MINUTE, 1),
        "wrong_believed_away_minutes": round(
            (wrong - believed_home) / SECONDS_PER_MINUTE, 1
        ),
        "longest_wrong": [
            {"from": local_iso(at), "minutes": round(seconds / SECONDS_PER_MINUTE, 1)}
            for seconds, at in longest
        ],
    }


def summarize(values: Sequence[float]) -> dict[str, float | None]:
    """Median, p95 and max of a list of numbers."""
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered) if ordered else None,
        "p95": percentile(ordered, 95),
        "max": ordered[-1] if ordered else None,
    }


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


def local_iso(moment: datetime) -> str:
    """Format a moment in the car's time zone."""
    return moment.astimezone(TZ).isoformat(timespec="seconds")
