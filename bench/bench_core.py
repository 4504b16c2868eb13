"""HA core's real ``tesla_fleet`` integration for a month against the simulator.

The month's ``fixed_10min`` column (``baselines.FixedPoller``) is a model of
what Home Assistant core's ``tesla_fleet`` integration does. This scenario runs
the real thing, unmodified: its config entry setup, its OAuth2 session and its
coordinators, inside the same Home Assistant test instance, on the same frozen
clock (``harness.Clock``) as the scout, against the simulator served on
loopback, through the model's reference month (the commuter; both worlds).
Like the model, it replays the requests the scout's special charging sessions
made (fragment ``month_<...>session_calls`` of ``bench_month.py``, so run that
first) at the same moments, so the car charges alike; the replayed requests
are counted apart from core's own.

Only what cannot exist here is redirected: Tesla's regional Fleet API base
URLs (``tesla_fleet_api.const.SERVERS``, from which core picks the token's
``ou_code`` region) point at the simulator's regional URLs, core's OAuth token
URL at the simulator's token endpoint, and core's application credentials are
the simulator's client. Nothing of core is patched.

The model runs in the same test on the same replay (a fresh simulator), so the
two are compared on identical input; fragment ``ha_core_<world>``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from itertools import pairwise
import logging
import os
from pathlib import Path
import re
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from tesla_fleet_api import const as fleet_api_const

from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.components.tesla_fleet import (
    DOMAIN as CORE_DOMAIN,
    coordinator as core_coordinator,
    oauth as core_oauth,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    callback,
)
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import (
    async_track_point_in_utc_time,
    async_track_state_change_event,
)
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import SimClock, Simulator, running_simulator
from tesla_fleet_sim.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

from .baselines import FixedPoller
from .bench_month import (
    REFERENCE,
    WORLDS,
    call_from_dict,
    fragment_name,
    month_result,
    profile_of,
)
from .conftest import log_levels, prepare_hass
from .fragments import read_fragment, wall_clock, write_fragment
from .harness import Call, CallLog, Clock, Profile, Window, cost_of, send

AGREEMENT = 0.01
"""The must: core's state checks, data requests and cost within 1 % of the model."""
COMPARED = ("state_check", "data", "wake", "command")
POLLS = ("get_vehicle", "vehicle_data")  # core's vehicle coordinator's requests
CORE_DAYS = int(os.environ.get("CORE_DAYS", "0")) or None  # shorter: measuring only
CORE_LOGGERS = ("tesla_fleet_api", "homeassistant.components.tesla_fleet")
# What Home Assistant logs when code uses an API it deprecated (as tests/conftest).
HA_DEPRECATION = re.compile(
    r"deprecated|will stop working|Detected that custom integration|Detected code that",
    re.IGNORECASE,
)


class Replay:
    """Send the scout's recorded session requests at their moments, in order."""

    def __init__(
        self, hass: HomeAssistant, sim: Simulator, log: list[Call], calls: list[Call]
    ) -> None:
        """Replay ``calls`` to ``sim`` in-process; ``log`` is the sim's call log."""
        self.hass = hass
        self.sim = sim
        self.log = log
        self.pending = sorted(calls, key=lambda c: c.at)
        self.indices: set[int] = set()  # positions of the replayed calls in ``log``
        self._unsub: CALLBACK_TYPE | None = None

    def start(self) -> None:
        """Arm the timer of the first request."""
        self._arm()

    def stop(self) -> None:
        """Disarm."""
        if self._unsub is not None:
            self._unsub()
            self._unsub = None

    def _arm(self) -> None:
        self._unsub = None
        if self.pending:
            self._unsub = async_track_point_in_utc_time(
                self.hass, self._fire, self.pending[0].at
            )

    @callback
    def _fire(self, now: datetime) -> None:
        # A token of its own: the replay must not touch core's token chain.
        token = str(self.sim.issue_tokens()["access_token"])
        while self.pending and self.pending[0].at <= now:
            send(self.sim, token, self.pending.pop(0))
            self.indices.add(len(self.log) - 1)
        self._arm()


def recorded_sessions(
    kind: str, world: str, profile: Profile
) -> tuple[list[Call], list[Window]]:
    """Return the scout's session requests and windows (empty when not run)."""
    recorded = read_fragment(fragment_name(kind, world, "session_calls")) or {
        "windows": [],
        "calls": [],
    }
    calls = [
        c
        for c in (call_from_dict(d) for d in recorded["calls"])
        if profile.start_at <= c.at < profile.end_at
    ]
    windows = [
        Window(datetime.fromisoformat(w["start"]), datetime.fromisoformat(w["end"]))
        for w in recorded["windows"]
    ]
    return calls, windows


def endpoint(call: Call) -> str:
    """Return a request's method and path with the VIN replaced."""
    path = call.path.replace(call.vin, "{vin}") if call.vin else call.path
    return f"{call.method} {path}"


def requests_by_endpoint(sim: Simulator, calls: list[Call]) -> dict[str, Any]:
    """Count requests per route: endpoint, category, billed, answers, cost."""
    found: dict[str, dict[str, Any]] = {}
    for call in calls:
        entry = found.setdefault(
            call.route,
            {
                "endpoint": endpoint(call),
                "category": call.category,
                "requests": 0,
                "billed": 0,
                "statuses": Counter[str](),
                "cost_usd": 0.0,
            },
        )
        entry["requests"] += 1
        entry["billed"] += int(call.billed)
        entry["statuses"][str(call.status)] += 1
        entry["cost_usd"] += cost_of(sim, call, bill_state_checks=True)
    for entry in found.values():
        entry["statuses"] = dict(entry["statuses"])
        entry["cost_usd"] = round(entry["cost_usd"], 6)
    return dict(sorted(found.items()))


def billed_counts(calls: list[Call]) -> dict[str, int]:
    """Billed requests by category."""
    counts = Counter(c.category for c in calls if c.billed)
    return {category: counts.get(category, 0) for category in COMPARED}


def cost(sim: Simulator, calls: list[Call], bill_state_checks: bool) -> float:
    """Cost of ``calls``."""
    return round(sum(cost_of(sim, c, bill_state_checks) for c in calls), 6)


def gaps_s(moments: list[datetime]) -> dict[str, int]:
    """Seconds between consecutive moments, rounded, with their counts."""
    counts = Counter(round((b - a).total_seconds()) for a, b in pairwise(moments))
    return {str(k): v for k, v in sorted(counts.items())}


async def run_core(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    profile: Profile,
    world: str,
    replayed: list[Call],
    windows: list[Window],
) -> dict[str, Any]:
    """Run core's tesla_fleet through ``profile``; return its month."""
    started = wall_clock()
    freezer.move_to(profile.start_at)
    await prepare_hass(hass)
    await async_import_client_credential(
        hass,
        CORE_DOMAIN,
        ClientCredential(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        CORE_DOMAIN,
    )
    sim = profile.build(SimClock.follow(dt_util.utcnow))
    log = CallLog()
    calls = log.watch(sim)
    home_states: list[tuple[datetime, bool]] = []

    @callback
    def _tracker(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None and new.state in ("home", "not_home"):
            home = new.state == "home"
            if not home_states or home_states[-1][1] != home:
                home_states.append((dt_util.utcnow(), home))

    replay = Replay(hass, sim, calls, replayed)
    async with AsyncExitStack() as stack:
        stack.enter_context(log.active())
        server = await stack.enter_async_context(running_simulator(sim))
        # Tesla's servers, by region, are the simulator's regional base URLs.
        stack.enter_context(
            patch.dict(
                fleet_api_const.SERVERS,
                {
                    region: server.region_url(region)
                    for region in fleet_api_const.SERVERS
                },
            )
        )
        stack.enter_context(patch.object(core_oauth, "TOKEN_URL", server.token_url))
        # The entry core's config flow creates: the token, titled by its subject.
        token = sim.issue_tokens()
        token["expires_at"] = dt_util.utcnow().timestamp() + int(token["expires_in"])
        account = sim.config.accounts[0]
        entry = MockConfigEntry(
            domain=CORE_DOMAIN,
            title=account.sub,
            unique_id=account.sub,
            data={"auth_implementation": CORE_DOMAIN, "token": token},
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.state is ConfigEntryState.LOADED
        setup_calls = list(calls)
        vehicles = entry.runtime_data.vehicles
        assert [v.vin for v in vehicles] == [sim.vehicle().vin]
        interval = vehicles[0].coordinator.update_interval
        signing = vehicles[0].signing
        pre2021 = vehicles[0].api.pre2021
        tracker = er.async_get(hass).async_get_entity_id(
            "device_tracker", CORE_DOMAIN, f"{vehicles[0].vin}-location"
        )
        assert tracker is not None, "core's location tracker was renamed"
        unsub = async_track_state_change_event(hass, tracker, _tracker)
        replay.start()
        clock = Clock(hass, freezer)
        await clock.run_until(profile.end_at)
        replay.stop()
        unsub()
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
    assert not replay.pending

    own = [c for i, c in enumerate(calls) if i not in replay.indices]
    refreshes = sim.token_requests("refresh_token")
    result = month_result("ha_core", profile, world, sim, calls, home_states, windows)
    result |= {
        "token_refreshes": len(refreshes),
        "token_refresh_failures": sum(1 for r in refreshes if r.status != 200),
        "token_requests": len(sim.token_requests()),
        "reauths": sum(
            1
            for flow in hass.config_entries.flow.async_progress()
            if flow["context"]["source"] == "reauth"
        ),
        "own": {
            "calls": billed_counts(own),
            "requests": len(own),
            "by_endpoint": requests_by_endpoint(sim, own),
            "setup_requests": requests_by_endpoint(sim, setup_calls),
            "other_requests": sum(1 for c in own if c.route not in POLLS),
            "cost_usd": {
                "state_checks_billed": cost(sim, own, bill_state_checks=True),
                "state_checks_free": cost(sim, own, bill_state_checks=False),
            },
            "state_check_gaps_s": gaps_s(
                [c.at for c in own if c.route == "get_vehicle"]
            ),
            "signed_commands": signing,
            # A pre-2021 Model S/X would be left 15 min to fall asleep (not modelled).
            "pre2021": pre2021,
            "vehicle_interval_s": core_coordinator.VEHICLE_INTERVAL.total_seconds(),
            "update_interval_s_after_setup": (
                interval.total_seconds() if interval is not None else None
            ),
        },
        "replayed": {
            "requests": len(replay.indices),
            "calls": billed_counts([calls[i] for i in sorted(replay.indices)]),
            "by_endpoint": requests_by_endpoint(
                sim, [calls[i] for i in sorted(replay.indices)]
            ),
        },
        "clock_steps": clock.steps,
        "wall_seconds": round(wall_clock() - started, 2),
    }
    return result


def run_model(
    profile: Profile, world: str, replayed: list[Call], windows: list[Window]
) -> dict[str, Any]:
    """Run the model (``baselines.FixedPoller``, 10 min) on the same replay."""
    started = wall_clock()
    clock = SimClock.manual(profile.start_at)
    sim = profile.build(clock)
    log = CallLog()
    calls = log.watch(sim)
    poller = FixedPoller(sim, clock, timedelta(minutes=10))
    with log.active():
        poller.run(profile.start_at, profile.end_at, replayed)
    result = month_result(
        "fixed_10min", profile, world, sim, calls, poller.home_states, windows
    )
    return result | {
        "token_refreshes": poller.refreshes,
        "by_endpoint": requests_by_endpoint(sim, calls),  # with the replay
        "wall_seconds": round(wall_clock() - started, 2),
    }


def compare(core: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """Core against the model: differences per category and cost; the verdict."""

    def row(core_value: float, model_value: float) -> dict[str, Any]:
        diff = core_value - model_value
        rel = diff / model_value if model_value else (0.0 if not diff else None)
        return {
            "core": core_value,
            "model": model_value,
            "difference": round(diff, 6),
            "relative": None if rel is None else round(rel, 6),
            "within": rel is not None and abs(rel) <= AGREEMENT,
        }

    rows = {c: row(core["calls"].get(c, 0), model["calls"].get(c, 0)) for c in COMPARED}
    for key in ("state_checks_billed", "state_checks_free"):
        rows[f"cost_usd_{key}"] = row(core["cost_usd"][key], model["cost_usd"][key])
    return {
        "tolerance": AGREEMENT,
        "rows": rows,
        "agrees": all(r["within"] for r in rows.values()),
        "differences": explain(core, model),
    }


def explain(core: dict[str, Any], model: dict[str, Any]) -> list[str]:
    """Say where core's requests differ from the model's, from what was counted."""
    notes: list[str] = []
    own = core["own"]
    setup = own["setup_requests"]
    checks = setup.get("get_vehicle", {}).get("requests", 0)
    difference = core["calls"]["state_check"] - model["calls"]["state_check"]
    if checks and difference > 0:
        notes.append(
            "Core's first refresh at setup checks the state (GET /api/1/vehicles/"
            "{vin}) after the product list; the model reuses the product list's "
            f"state for its first cycle ({difference} state check more for core)"
        )
    if own["pre2021"]:
        notes.append(
            "Core treats the car as a pre-2021 Model S/X: once it is idle and "
            "awake for 15 min, core waits 15 min between checks (not modelled)"
        )
    gaps = {int(k): v for k, v in own["state_check_gaps_s"].items()}
    interval = round(own["vehicle_interval_s"])
    if set(gaps) - {interval}:
        notes.append(f"Core's state checks are not all {interval} s apart: gaps {gaps}")
    extra = {
        route: v["requests"]
        for route, v in own["by_endpoint"].items()
        if route not in ("products", *POLLS)
    }
    if extra:
        notes.append(f"Core made requests the model does not: {extra}")
    labels = {"state_check": "State checks", "data": "Data requests"}
    for category in ("state_check", "data"):
        diff = core["calls"][category] - model["calls"][category]
        if diff:
            notes.append(f"{labels[category]}: core {diff:+d} against the model")
    return notes


@pytest.fixture
def core_logs_quiet() -> Iterator[None]:
    """Core's and the library's debug logs (every answer's JSON) are off."""
    with log_levels(CORE_LOGGERS, logging.INFO):
        yield


@pytest.mark.parametrize("world", list(WORLDS))
async def test_ha_core_month(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    caplog: pytest.LogCaptureFixture,
    core_logs_quiet: None,
    tmp_path: Path,
    world: str,
) -> None:
    """HA core's tesla_fleet follows the reference month; compare with the model."""
    # Core writes its command signing key to the configuration folder (only
    # for a car that requires signed commands); the test harness's is shared.
    hass.config.config_dir = str(tmp_path)
    kind = REFERENCE[0]
    profile = profile_of(kind, world)
    if CORE_DAYS is not None:
        profile = Profile(
            start=profile.start,
            days=CORE_DAYS,
            kind=kind,
            data_keeps_awake=profile.data_keeps_awake,
        )
    replayed, windows = recorded_sessions(kind, world, profile)
    core = await run_core(hass, freezer, profile, world, replayed, windows)
    model = run_model(profile, world, replayed, windows)
    logged = [
        r
        for r in caplog.get_records("call")
        if r.levelno >= logging.WARNING
        and (r.name.startswith(CORE_LOGGERS) or r.name.startswith("homeassistant"))
    ]
    deprecations = [
        r.getMessage() for r in logged if HA_DEPRECATION.search(r.getMessage())
    ]
    model["other_requests"] = sum(
        v["requests"]
        - core["replayed"]["by_endpoint"].get(route, {}).get("requests", 0)
        for route, v in model["by_endpoint"].items()
        if route not in POLLS
    )
    published = read_fragment(fragment_name(kind, world, "fixed_10min"))
    result = {
        "profile": kind,
        "world": world,
        "days": profile.days,
        "first_day": profile.start.isoformat(),
        "sessions_replayed": len(windows) // 2,
        "core": core,
        "model": model,
        # The month's published fixed_10min column, when bench_month ran (it must
        # equal the model run here: same replay, same code).
        "model_published_calls": published["calls"] if published else None,
        "model_matches_published": (
            published["calls"] == model["calls"] if published else None
        ),
        "comparison": compare(core, model),
        "log_warnings": dict(
            Counter(f"{r.name}: {r.getMessage()[:120]}" for r in logged)
        ),
        "deprecations": deprecations,
    }
    write_fragment(
        f"ha_core_{world}" + (f"_{profile.days}d" if CORE_DAYS else ""), result
    )
    assert not deprecations, deprecations
