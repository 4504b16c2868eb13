"""The chaos soak's world: its seeded plan of needs, faults and restarts.

Nothing here runs Home Assistant; ``bench_soak.py`` does. This module draws,
from one seed, everything that happens to the integration over the soak:

* the driver's special charging needs (two a week, planned in the evening for
  the next morning, while the car is often asleep);
* Home Assistant restarts, about two a day, at random moments: clean
  restarts, restarts with some downtime, crashes in the middle of a Fleet API
  request (before or after Tesla answered) and crashes between Tesla's token
  answer and the save of the rotated token;
* faults of Tesla's side: token endpoint outages spanning the access token's
  expiry, Fleet API 5xx windows and 429 bursts, and commands refused with
  ``result: false``; some are aimed at a session's send or cleanup.

A restart is a reload of the config entry: storage survives, running work is
cancelled; a crash kills the running task where it stands (see
:class:`Crasher`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
import random
from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.api import FleetClient
from custom_components.tesla_scout_worker.oauth import TeslaOAuth2Implementation
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from .harness import TZ

# The driver plans on the nights the car is plugged in (Monday, Wednesday).
NEED_WEEKDAYS = (0, 2)
CHARGE_LIMIT = 80  # the driver's own limit, which every session must restore
SESSION_SCHEDULE_NAME = "Special charging"  # charge_control.SESSION_SCHEDULE_NAME
REFUSAL_REASONS = ("could_not_wake_buses", "timeout")
RESTARTS_PER_DAY = 2
# General restarts by weight: (kind, weight).
RESTART_KINDS = (
    ("reload", 25),
    ("down", 20),
    ("crash_mid_request", 35),
    ("crash_after_token_answer", 20),
)
# Restarts aimed at one session (at most one per session).
SESSION_RESTARTS = (
    "crash_in_send",
    "crash_in_cleanup",
    "down_over_send",
    "down_over_cleanup",
    "reload_active",
)


@dataclass(frozen=True, slots=True)
class Need:
    """A special charging session the driver asks for, and its chaos."""

    index: int
    planned_at: datetime
    ready_by: datetime
    target_soc: int
    mode: str
    # Faults aimed at this session (None: none).
    refuse_send: tuple[str, int] | None  # command, how many refusals
    refuse_cleanup: tuple[str, int] | None
    outage_send_min: int | None  # Fleet API 5xx from the send time, minutes
    outage_cleanup_min: int | None
    restart: str | None  # one of SESSION_RESTARTS
    draws: tuple[float, ...]  # random numbers for the restart's timing


@dataclass(frozen=True, slots=True)
class Chaos:
    """Something that happens at a moment: a restart or a fault."""

    at: datetime
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SoakPlan:
    """Everything one seed makes happen, drawn up front."""

    seed: int
    first_day: date
    days: int
    needs: list[Need]
    chaos: list[Chaos]

    @property
    def start_at(self) -> datetime:
        """Local midnight of the first day."""
        return datetime.combine(self.first_day, time(0), tzinfo=TZ)

    @property
    def measure_from(self) -> datetime:
        """The first measurement (timers, listeners, memory): day 1, noon."""
        return datetime.combine(self.first_day, time(12), tzinfo=TZ)

    @property
    def end_at(self) -> datetime:
        """The last measurement: noon after the last day (a quiet day)."""
        return datetime.combine(
            self.first_day + timedelta(days=self.days), time(12), tzinfo=TZ
        )

    @property
    def chaos_until(self) -> datetime:
        """General chaos stops a day before the end."""
        return self.end_at - timedelta(days=1)


def draw_plan(seed: int, first_day: date, days: int) -> SoakPlan:
    """Draw the needs and the chaos of one seed."""
    rng = random.Random(seed)
    plan = SoakPlan(seed, first_day, days, [], [])
    begin = plan.measure_from
    until = plan.chaos_until
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        midnight = datetime.combine(day, time(0), tzinfo=TZ)
        for _ in range(RESTARTS_PER_DAY):
            at = midnight + timedelta(seconds=rng.uniform(0, 86400))
            kind = _weighted(rng, RESTART_KINDS)
            params: dict[str, Any] = {}
            if kind == "down":
                params["minutes"] = rng.randint(1, 15)
            elif kind == "crash_mid_request":
                params = {"countdown": rng.randint(1, 4), "after": rng.random() < 0.5}
            if begin <= at < until:
                plan.chaos.append(Chaos(at, kind, params))
        if rng.random() < 0.35:  # the token endpoint fails around an expiry
            at = midnight + timedelta(seconds=rng.uniform(0, 86400))
            params = {
                "status": rng.choice((500, 502, 503, 429)),
                "before_expiry_min": rng.randint(2, 45),
                "after_expiry_min": rng.randint(1, 180),
            }
            if begin <= at < until:
                plan.chaos.append(Chaos(at, "token_outage", params))
        if rng.random() < 0.5:  # a window of Fleet API 5xx
            at = midnight + timedelta(seconds=rng.uniform(0, 86400))
            params = {
                "status": rng.choice((500, 502, 503)),
                "minutes": rng.randint(2, 40),
            }
            if begin <= at < until:
                plan.chaos.append(Chaos(at, "api_5xx", params))
        if rng.random() < 0.5:  # a burst of 429s
            at = midnight + timedelta(seconds=rng.uniform(0, 86400))
            if begin <= at < until:
                plan.chaos.append(Chaos(at, "api_429", {"count": rng.randint(1, 5)}))
        if day.weekday() in NEED_WEEKDAYS and offset < days - 1:
            planned_at = datetime.combine(day, time(19), tzinfo=TZ) + timedelta(
                minutes=rng.randint(0, 210)
            )
            ready_by = datetime.combine(
                day + timedelta(days=1), time(6), tzinfo=TZ
            ) + timedelta(minutes=rng.choice((0, 15, 30, 45, 60)))
            plan.needs.append(_need(rng, len(plan.needs), planned_at, ready_by))
    plan.chaos.sort(key=lambda c: c.at)
    return plan


def _need(
    rng: random.Random, index: int, planned_at: datetime, ready_by: datetime
) -> Need:
    def refusal(commands: tuple[str, ...], most: int) -> tuple[str, int] | None:
        if rng.random() >= 0.3:
            return None
        return rng.choice(commands), rng.randint(1, most)

    return Need(
        index=index,
        planned_at=planned_at,
        ready_by=ready_by,
        target_soc=rng.randint(85, 95),
        mode=rng.choice(("off_peak", "off_peak", "deadline")),
        refuse_send=refusal(("set_charge_limit", "add_charge_schedule"), 2),
        refuse_cleanup=refusal(("set_charge_limit", "remove_charge_schedule"), 3),
        outage_send_min=rng.randint(3, 30) if rng.random() < 0.25 else None,
        outage_cleanup_min=rng.randint(3, 30) if rng.random() < 0.25 else None,
        restart=rng.choice(SESSION_RESTARTS) if rng.random() < 0.5 else None,
        draws=tuple(rng.random() for _ in range(4)),
    )


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    kinds = [kind for kind, _ in choices]
    weights = [weight for _, weight in choices]
    return rng.choices(kinds, weights)[0]


def refusal_body(reason: str) -> dict[str, Any]:
    """Return the answer of a command the car refuses."""
    return {"response": {"result": False, "reason": reason}}


# --------------------------------------------------------------------------
# Crashes
# --------------------------------------------------------------------------


@dataclass(slots=True)
class RequestCrash:
    """Die at the n-th Fleet API request (of a session phase, or any)."""

    countdown: int
    after: bool  # after Tesla answered (the answer is lost)
    phase: str | None = None  # "send", "cleanup" or None for any request


@dataclass(slots=True)
class Crasher:
    """Kills Home Assistant's work in the middle of a request and restarts it.

    The task that was making the request stops where it stands (it waits
    until the restart is done and is then cancelled, so nothing after the
    crash point runs); the entry is reloaded meanwhile. Work the bench itself
    started (a plan action) and work during a setup or unload never crashes.
    """

    hass: HomeAssistant
    entry: MockConfigEntry
    requests: list[RequestCrash] = field(default_factory=list)
    token_answers: int = 0  # crashes armed between a token answer and the save
    done: Counter[str] = field(default_factory=Counter)
    paused: bool = False
    _restarting: bool = False

    def _eligible(self) -> bool:
        task = asyncio.current_task()
        return (
            not self.paused
            and not self._restarting
            and self.entry.state is ConfigEntryState.LOADED
            and task is not None
            and task not in self.entry._tasks
        )

    async def call(
        self,
        original: Callable[..., Awaitable[dict[str, Any]]],
        client: FleetClient,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run a Fleet API call, or die during it when a crash is armed."""
        crash = self._take_request_crash()
        if crash is None:
            return await original(client, *args, **kwargs)
        if crash.after:
            await original(client, *args, **kwargs)
        kind = f"crash_in_{crash.phase}" if crash.phase else "crash_mid_request"
        await self._die(kind)
        raise AssertionError("unreachable")  # pragma: no cover

    def _take_request_crash(self) -> RequestCrash | None:
        if not self.requests or not self._eligible():
            return None
        task = asyncio.current_task()
        name = task.get_name() if task is not None else ""
        phase = next((p for p in ("send", "cleanup") if f" {p} " in name), None)
        # A crash aimed at this session phase first, then one at any request.
        mine = [c for c in self.requests if c.phase is not None and c.phase == phase]
        crash = next(iter(mine), None) or next(
            (c for c in self.requests if c.phase is None), None
        )
        if crash is None:
            return None
        crash.countdown -= 1
        if crash.countdown > 0:
            return None
        self.requests.remove(crash)
        return crash

    async def refresh(
        self,
        original: Callable[..., Awaitable[dict[str, Any]]],
        implementation: TeslaOAuth2Implementation,
        token: dict[str, Any],
    ) -> dict[str, Any]:
        """Exchange the refresh token; die before the answer is saved if armed."""
        new = await original(implementation, token)
        if self.token_answers and self._eligible():
            self.token_answers -= 1
            await self._die("crash_after_token_answer")
        return new

    def disarm_phase(self, phase: str) -> None:
        """Forget the crashes armed for a session phase that is over."""
        self.requests = [c for c in self.requests if c.phase != phase]

    async def _die(self, kind: str) -> None:
        self._restarting = True
        self.done[kind] += 1
        zombie = asyncio.current_task()
        assert zombie is not None
        # Restart once this task is suspended: a task in its eager first step
        # is not yet registered with the entry, so an unload started from
        # inside it could not cancel it.
        self.hass.loop.call_soon(self._restart, zombie)
        await asyncio.Event().wait()  # cancelled once the restart is done

    def _restart(self, zombie: asyncio.Task[Any]) -> None:
        self.hass.async_create_task(self._async_restart(zombie))

    async def _async_restart(self, zombie: asyncio.Task[Any]) -> None:
        try:
            await self.hass.config_entries.async_reload(self.entry.entry_id)
        finally:
            self._restarting = False
            zombie.cancel()
