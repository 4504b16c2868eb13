"""Month: four driver profiles for 30 days, one simulator per policy and world.

Profiles (``harness.Profile``): the reference commuter, an irregular driver, a
car that mostly stays home and a two-shift worker. Worlds: ``keep_awake``
(every ``vehicle_data`` restarts the car's 15-min sleep timer, the simulator's
pessimistic default) and ``may_sleep`` (reads do not keep the car awake).

Policies:

* ``scout``: this integration with default options;
* ``scout_arrival_trigger``: the same plus the driver's phone as arrival
  trigger (the phone's tracker turns ``home`` when the car arrives);
* ``fixed_10min``: HA core's ``tesla_fleet`` behaviour (see baselines.py);
* ``fixed_1min``: the same every minute;
* ``scout_signed`` (reference only): the scout with default options and a car
  that requires signed commands; the installation's key is registered for the
  app and paired with the car, commands are signed in process (no proxy).
  Reported: handshakes (the integration's count and the car's), fleet_status
  requests, and what they cost.

Every policy runs the same weekly special charging session: the integration
plans and runs it, and the baselines replay the requests the integration's
session made at the same moments, so every car charges alike and the
difference between the policies is what watching the car costs.

Run the scout first: the baselines read its session requests. The
commuter in the ``keep_awake`` world is the reference (``month.policies``);
every run is also under ``month.profiles.<profile>.<world>.<policy>``.
``fixed_1min`` runs for the reference only. ``test_month_tradeoff`` runs the
scout with other habit intervals (cost against hours wrong);
``test_month_other_seeds`` runs other months (MONTH_SEEDS) of every profile.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta
import os
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest

from custom_components.tesla_scout_worker.const import (
    CONF_ARRIVAL_ENTITIES,
    CONF_HABIT_INTERVAL,
)
from custom_components.tesla_scout_worker.session_runner import EVENT_SESSION
from custom_components.tesla_scout_worker.token_manager import EVENT_REAUTH_REQUIRED
from custom_components.tesla_scout_worker.usage import PRICES, ApiCategory
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import (
    async_track_point_in_utc_time,
    async_track_state_change_event,
)
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import SimClock, Simulator, running_simulator

from .baselines import FixedPoller
from .conftest import (
    add_entry,
    pair_signing_key,
    plan_session,
    prepare_hass,
    setup_entry,
    usage_counts,
)
from .fragments import read_fragment, wall_clock, write_fragment
from .harness import (
    PROFILE_KINDS,
    Call,
    CallLog,
    Clock,
    Profile,
    Window,
    arrival_delays,
    awake_seconds_without_polling,
    cost_per_day,
    home_state_error,
    in_windows,
    local_iso,
    session_windows,
)

FIRST_DAY = date(2025, 6, 2)  # a Monday; no DST change in the month
PROFILE = Profile(start=FIRST_DAY)  # the reference commuter
WORLDS = {"keep_awake": True, "may_sleep": False}
REFERENCE = ("commuter", "keep_awake")
AT_HOME = "binary_sensor.sim_model_3_at_home"
PHONE = "device_tracker.driver_phone"
PHONE_LEAVES_AFTER = timedelta(minutes=1)
SESSION_CALLS = "month_session_calls"
TRADEOFF_HABIT_MINUTES = tuple(
    int(v) for v in os.environ.get("MONTH_TRADEOFF", "4,6,12,20").split(",") if v
)
"""Habit intervals of the trade-off curve (the default is run anyway)."""
TRADEOFF_PROFILES = tuple(
    v for v in os.environ.get("MONTH_TRADEOFF_PROFILES", "irregular").split(",") if v
)
MONTH_SEEDS = tuple(
    int(v) for v in os.environ.get("MONTH_SEEDS", "1,2,3,4,5,6").split(",") if v
)
"""Other months of every profile (seeds of its random generator): the scout
without trigger and the 10-min poll, reads keeping the car awake. The policy's
constants were chosen on the default month; these show whether its results
hold for months it was not tuned on."""


def profile_of(kind: str, world: str, seed: int = PROFILE.seed) -> Profile:
    """Return the month of one profile in one world."""
    return Profile(
        start=FIRST_DAY, kind=kind, data_keeps_awake=WORLDS[world], seed=seed
    )


def fragment_name(kind: str, world: str, policy: str, seed: int | None = None) -> str:
    """Return the fragment of one run (the reference keeps its old name).

    ``seed``: one of the other months (MONTH_SEEDS).
    """
    if seed is not None:
        return f"month_seed_{seed}_{kind}_{policy}"
    if (kind, world) == REFERENCE:
        return f"month_{policy}"
    return f"month_{kind}_{world}_{policy}"


@pytest.mark.parametrize("world", list(WORLDS))
@pytest.mark.parametrize("kind", PROFILE_KINDS)
@pytest.mark.parametrize("policy", ["scout", "scout_arrival_trigger"])
async def test_month_scout(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    fast_wake_wait: None,
    policy: str,
    kind: str,
    world: str,
) -> None:
    """The integration follows the driver for a month."""
    await run_scout(hass, freezer, policy, profile_of(kind, world), world)


async def test_month_signed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    fast_wake_wait: None,
) -> None:
    """The reference month with a car that takes signed commands only."""
    profile = replace(profile_of(*REFERENCE), command_signing="required")
    await run_scout(hass, freezer, "scout_signed", profile, REFERENCE[1])


@pytest.mark.parametrize("minutes", TRADEOFF_HABIT_MINUTES)
@pytest.mark.parametrize("kind", TRADEOFF_PROFILES)
async def test_month_tradeoff(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    fast_wake_wait: None,
    kind: str,
    minutes: int,
) -> None:
    """The scout without trigger, with another habit interval."""
    await run_scout(
        hass,
        freezer,
        f"scout_habit_{minutes}min",
        profile_of(kind, "keep_awake"),
        "keep_awake",
        options={CONF_HABIT_INTERVAL: minutes},
    )


async def run_scout(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    policy: str,
    profile: Profile,
    world: str,
    options: dict[str, Any] | None = None,
    seed: int | None = None,
) -> None:
    """Run the integration through ``profile``; write its fragment.

    ``seed``: the run is one of the other months (named by fragment_name).
    """
    started = wall_clock()
    freezer.move_to(profile.start_at)
    await prepare_hass(hass)
    sim = profile.build(SimClock.follow(dt_util.utcnow))
    car = sim.vehicle()
    if profile.command_signing == "required":
        await pair_signing_key(hass, sim)
    log = CallLog()
    calls = log.watch(sim)
    home_states: list[tuple[datetime, bool]] = []
    session_events: list[tuple[datetime, str, str]] = []
    reauths: list[datetime] = []

    @callback
    def _at_home(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None and new.state in ("on", "off"):
            home_states.append((dt_util.utcnow(), new.state == "on"))

    @callback
    def _session(event: Event[dict[str, Any]]) -> None:
        session_events.append(
            (dt_util.utcnow(), event.data["session_id"], event.data["state"])
        )

    @callback
    def _reauth(event: Event[dict[str, Any]]) -> None:
        reauths.append(dt_util.utcnow())

    unsubs = [
        async_track_state_change_event(hass, AT_HOME, _at_home),
        hass.bus.async_listen(EVENT_SESSION, _session),
        hass.bus.async_listen(EVENT_REAUTH_REQUIRED, _reauth),
    ]
    options = dict(options or {})
    if policy == "scout_arrival_trigger":
        options[CONF_ARRIVAL_ENTITIES] = [PHONE]
        unsubs.extend(_phone_follows_the_car(hass, profile))
    with log.active(), usage_counts() as counted:
        async with running_simulator(sim) as server:
            entry = add_entry(hass, sim, server.url, options=options)
            await setup_entry(hass, entry)
            clock = Clock(hass, freezer)
            for need in profile.sessions():
                await clock.run_until(need.planned_at)
                await plan_session(
                    hass, car.vin, need.target_soc, need.ready_by, mode="off_peak"
                )
            await clock.run_until(profile.end_at)
            token_stats = entry.runtime_data.tokens.as_dict()
            manager = entry.runtime_data.sessions
            assert manager is not None
            sessions = manager.public_sessions()
            assert await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done(wait_background_tasks=True)
    for unsub in unsubs:
        unsub()

    assert home_states, f"{AT_HOME} never changed: was the entity renamed?"
    windows = session_windows(session_events)
    result = month_result(policy, profile, world, sim, calls, home_states, windows)
    refreshes = sim.token_requests("refresh_token")
    result["signing"]["handshakes"]["counted"] = counted[ApiCategory.HANDSHAKE]
    result["signing"] |= {
        "command_signing": profile.command_signing,
        "usage_counted": {str(k): v for k, v in sorted(counted.items())},
    }
    states = Counter(str(s["state"]) for s in sessions)
    result |= {
        "token_refreshes": len(refreshes),
        "token_refresh_failures": sum(1 for r in refreshes if r.status != 200),
        "reauths": len(reauths),
        "token_manager_refresh_count": token_stats["refresh_count"],
        "sessions": [
            {"state": s["state"], "send_at": s["send_at"], "start": s["start"]}
            for s in sorted(sessions, key=lambda s: str(s["send_at"]))
        ],
        "sessions_planned": len(profile.sessions()),
        "sessions_not_completed": len(profile.sessions()) - states["completed"],
        "clock_steps": clock.steps,
        "wall_seconds": round(wall_clock() - started, 2),
    }
    write_fragment(fragment_name(profile.kind, world, policy, seed), result)
    if policy == "scout":
        write_fragment(
            fragment_name(profile.kind, world, "session_calls", seed),
            {
                "windows": [
                    {"start": w.start.isoformat(), "end": w.end.isoformat()}
                    for w in windows
                ],
                "calls": [call_dict(c) for c in calls if in_windows(c.at, windows)],
            },
        )


def _phone_follows_the_car(hass: HomeAssistant, profile: Profile) -> list[Any]:
    """Move the driver's phone: home when the car arrives, away when it leaves.

    The phone leaves the home zone a minute after the car sets off (it has to
    cross the zone's edge and report it); it enters the zone on arrival.
    """
    hass.states.async_set(PHONE, "home")
    unsubs = []
    for drive in profile.drives():
        for moment, state in (
            (drive.at + PHONE_LEAVES_AFTER, "not_home"),
            (drive.arrives, "home" if drive.home else "not_home"),
        ):

            @callback
            def _set(_now: datetime, state: str = state) -> None:
                hass.states.async_set(PHONE, state)

            unsubs.append(async_track_point_in_utc_time(hass, _set, moment))
    return unsubs


FIXED_RUNS = [
    pytest.param("fixed_10min", 10, kind, world, id=f"fixed_10min-{kind}-{world}")
    for kind in PROFILE_KINDS
    for world in WORLDS
] + [pytest.param("fixed_1min", 1, *REFERENCE, id="fixed_1min-commuter-keep_awake")]


@pytest.mark.parametrize(("policy", "minutes", "kind", "world"), FIXED_RUNS)
async def test_month_fixed_poll(
    policy: str, minutes: int, kind: str, world: str
) -> None:
    """A fixed poll follows the same driver, replaying the same sessions."""
    run_fixed(policy, minutes, profile_of(kind, world), world)


@pytest.mark.parametrize("seed", MONTH_SEEDS)
@pytest.mark.parametrize("kind", PROFILE_KINDS)
async def test_month_other_seeds(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    fast_wake_wait: None,
    kind: str,
    seed: int,
) -> None:
    """Another month of each profile: the scout, then the 10-min poll."""
    profile = profile_of(kind, "keep_awake", seed)
    await run_scout(hass, freezer, "scout", profile, "keep_awake", seed=seed)
    run_fixed("fixed_10min", 10, profile, "keep_awake", seed=seed)


def run_fixed(
    policy: str, minutes: int, profile: Profile, world: str, seed: int | None = None
) -> None:
    """Run a fixed poll through ``profile``, replaying the scout's sessions."""
    started = wall_clock()
    kind = profile.kind
    recorded = read_fragment(fragment_name(kind, world, "session_calls", seed)) or {
        "windows": [],
        "calls": [],
    }
    replay = [call_from_dict(c) for c in recorded["calls"]]
    windows = [
        Window(datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"]))
        for w in recorded["windows"]
    ]
    clock = SimClock.manual(profile.start_at)
    sim = profile.build(clock)
    log = CallLog()
    calls = log.watch(sim)
    poller = FixedPoller(sim, clock, timedelta(minutes=minutes))
    with log.active():
        poller.run(profile.start_at, profile.end_at, replay)
    result = month_result(
        policy, profile, world, sim, calls, poller.home_states, windows
    )
    result |= {
        "token_refreshes": poller.refreshes,
        "token_refresh_failures": poller.refresh_failures,
        "reauths": poller.reauths,
        "sessions_replayed": len(windows) // 2,
        "wall_seconds": round(wall_clock() - started, 2),
    }
    write_fragment(fragment_name(kind, world, policy, seed), result)


def month_result(
    policy: str,
    profile: Profile,
    world: str,
    sim: Simulator,
    calls: list[Call],
    home_states: list[tuple[datetime, bool]],
    windows: list[Window],
) -> dict[str, Any]:
    """Return the month's numbers common to every policy."""
    car = sim.vehicle()
    ledger = sim.ledger
    trips = car.trips
    delays = arrival_delays(trips, home_states, profile.end_at)
    wakes = [c for c in calls if c.route == "wake_up"]
    handshakes = sum(v.verifier.handshakes for v in sim.vehicles)
    fleet_status = sum(1 for c in calls if c.route == "fleet_status" and c.billed)
    awake = car.awake_seconds
    awake_without = awake_seconds_without_polling(
        profile, calls, windows, profile.end_at
    )
    return {
        "policy": policy,
        "profile": profile.kind,
        "world": world,
        "days": profile.days,
        "first_day": profile.start.isoformat(),
        "calls": dict(ledger.counts),
        "calls_total": sum(ledger.counts.values()),
        "calls_unbilled_5xx": ledger.unbilled,
        "calls_in_sessions": sum(1 for c in calls if in_windows(c.at, windows)),
        "cost_usd": {
            "state_checks_billed": ledger.cost_usd(bill_state_checks=True),
            "state_checks_free": ledger.cost_usd(bill_state_checks=False),
        },
        "cost_per_day_usd": cost_per_day(sim, calls, profile.start, profile.days),
        "wakes": len(wakes),
        "wakes_outside_sessions": sum(
            1 for c in wakes if not in_windows(c.at, windows)
        ),
        "awake_minutes": round(awake / 60, 1),
        "awake_minutes_without_polling": round(awake_without / 60, 1),
        "awake_minutes_by_polling": round(max(0.0, awake - awake_without) / 60, 1),
        "arrival": delays.summary(),
        "home_state": home_state_error(
            trips, home_states, profile.start_at, profile.end_at
        ),
        "calls_with_expired_token": sum(1 for c in calls if c.expired),
        "signing": {
            "handshakes": {"simulator": handshakes},
            "handshakes_in_sessions": sum(
                1 for c in calls if c.handshake and in_windows(c.at, windows)
            ),
            "rest_commands": sum(1 for c in calls if c.route == "command"),
            "signed_commands": sum(
                1 for c in calls if c.route == "signed_command" and not c.handshake
            ),
            "fleet_status_requests": fleet_status,
            "cost_usd_handshakes": round(handshakes * PRICES[ApiCategory.HANDSHAKE], 4),
            "cost_usd_fleet_status": round(fleet_status * PRICES[ApiCategory.DATA], 4),
        },
        "trips": len(trips),
        "session_windows": [
            {"start": local_iso(w.start), "end": local_iso(w.end)} for w in windows
        ],
    }


def call_dict(call: Call) -> dict[str, Any]:
    """Serialise a call for the baselines' replay."""
    return {
        "at": call.at.isoformat(),
        "route": call.route,
        "path": call.path,
        "method": call.method,
        "category": call.category,
        "vin": call.vin,
        "command": call.command,
        "body": call.body,
        "query": call.query,
    }


def call_from_dict(data: dict[str, Any]) -> Call:
    """Rebuild a recorded call."""
    return Call(
        at=datetime.fromisoformat(data["at"]),
        route=data["route"],
        path=data["path"],
        method=data["method"],
        category=data["category"],
        vin=data["vin"],
        command=data["command"],
        body=dict(data["body"]),
        query=dict(data["query"]),
        status=0,
        billed=False,
        expired=False,
    )
