"""Token storm: concurrent callers, the deadlock replay and a token endpoint outage."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.token_manager import (
    EVENT_REAUTH_REQUIRED,
    EVENT_REFRESH_FAILED,
)
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import SimClock, Simulator, running_simulator
from tesla_fleet_sim.config import DEFAULT_VIN

from .conftest import add_entry, prepare_hass, setup_entry
from .fragments import wall_clock, write_fragment
from .harness import Clock, local_iso

START = datetime(2025, 6, 2, 9, 0, tzinfo=dt_util.UTC)
TOKEN_PATH = "/oauth2/v3/token"
CALLERS = 100
CALLER_PERIOD = timedelta(seconds=15)  # the retry rhythm in the design notes' log


def refresh_requests(sim: Simulator) -> list[Any]:
    """Return the refresh grants the simulator answered."""
    return sim.token_requests("refresh_token")


def reauth_flows(hass: HomeAssistant) -> int:
    """Reauthentication flows in progress."""
    return sum(
        1
        for flow in hass.config_entries.flow.async_progress()
        if flow["context"]["source"] == SOURCE_REAUTH
    )


def expired_calls(sim: Simulator) -> int:
    """Fleet API requests that carried an expired access token."""
    return sum(1 for r in sim.api_requests() if r.expired)


async def start(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, sim_url: str, sim: Simulator
) -> MockConfigEntry:
    """Set up an entry whose scout does not poll (the callers are the load)."""
    entry = add_entry(hass, sim, sim_url, polling=False)
    await setup_entry(hass, entry)
    return entry


@pytest.mark.parametrize(
    ("case", "left"),
    [("at_expiry", timedelta(0)), ("reactive_window", timedelta(minutes=4))],
)
async def test_concurrent_callers(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    case: str,
    left: timedelta,
) -> None:
    """100 Fleet API calls at once when the token runs out share one refresh."""
    freezer.move_to(START)
    await prepare_hass(hass)
    sim = Simulator(clock=SimClock.follow(dt_util.utcnow))
    async with running_simulator(sim) as server:
        entry = await start(hass, freezer, server.url, sim)
        tokens = entry.runtime_data.tokens
        client = entry.runtime_data.client
        before = len(refresh_requests(sim))
        old = tokens.access_token
        # Jump without running timers: the proactive refresh did not happen
        # (say the machine slept); it becomes due together with the callers.
        freezer.move_to(tokens.expires_at - left)
        began = wall_clock()
        results = await asyncio.gather(
            *(client.async_vehicle_state(DEFAULT_VIN) for _ in range(CALLERS)),
            return_exceptions=True,
        )
        elapsed = wall_clock() - began
        await hass.async_block_till_done(wait_background_tasks=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        result = {
            "callers": CALLERS,
            "token_left_s": left.total_seconds(),
            "refresh_requests": len(refresh_requests(sim)) - before,
            "callers_failed": len(failed),
            "calls_with_expired_token": expired_calls(sim),
            "token_changed": tokens.access_token != old,
            "wall_ms": round(elapsed * 1000, 1),
        }
        assert await hass.config_entries.async_unload(entry.entry_id)
    write_fragment(f"tokens_concurrent_{case}", result)


@pytest.mark.parametrize("case", ["replay", "endpoint_back_50s_before_expiry"])
async def test_deadlock_replay(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    case: str,
) -> None:
    """The design notes' deadlock, replayed against the token manager.

    Both cases: the token endpoint is down from 31 min before expiry, so the
    proactive refresh and its retries fail; callers come every 15 s.

    replay (the log of the design notes): a caller finds under 5 min left and
    its attempt is the last to fail; Tesla is fine again from then on, but
    at 09:45:01, 09:45:06, 09:45:21, ... the one-a-minute limiter is engaged.
    The old design blocked every attempt from then on until the token
    expired. Recovery is measured from 09:45:01.

    endpoint_back_50s_before_expiry: the endpoint returns with 50 s left; the
    next caller is under a minute and must bypass every limit. Recovery is
    measured from the endpoint's return.
    """
    freezer.move_to(START)
    await prepare_hass(hass)
    sim = Simulator(clock=SimClock.follow(dt_util.utcnow))
    async with running_simulator(sim) as server:
        entry = await start(hass, freezer, server.url, sim)
        tokens = entry.runtime_data.tokens
        client = entry.runtime_data.client
        clock = Clock(hass, freezer)
        expires = tokens.expires_at
        old = tokens.access_token
        if case == "replay":
            # 09:44:51: a caller finds under 5 min left; its attempt fails.
            back = first = expires - timedelta(minutes=4, seconds=59)
            t0 = back + timedelta(seconds=10)  # 09:45:01, limiter engaged
        else:
            t0 = back = expires - timedelta(seconds=50)
            first = expires - timedelta(minutes=20)
        await clock.run_until(expires - timedelta(minutes=31))
        before = len(refresh_requests(sim))
        sim.faults.token_endpoint_status = 503
        moments = [first + CALLER_PERIOD * i for i in range(200)]
        if case == "replay":  # 09:44:51, 09:45:01, 09:45:06, 09:45:21, ...
            moments = [first, t0, t0 + timedelta(seconds=5)] + [
                t0 + timedelta(seconds=5) + CALLER_PERIOD * i for i in range(1, 200)
            ]
        end = expires + timedelta(minutes=5)
        outcomes: list[tuple[datetime, bool]] = []
        for moment in (m for m in moments if m <= end):
            if sim.faults.token_endpoint_status and moment > back:
                await clock.run_until(back)
                sim.faults.token_endpoint_status = None
            await clock.run_until(moment)
            try:
                await client.async_vehicle_state(DEFAULT_VIN)
            except HomeAssistantError:
                outcomes.append((moment, False))
            else:
                outcomes.append((moment, True))
            if moment == back:
                sim.faults.token_endpoint_status = None
        await clock.run_until(end)
        fresh = [
            r.time
            for r in refresh_requests(sim)[before:]
            if r.status == 200 and r.time >= t0
        ]
        result = {
            "case": case,
            "t0": local_iso(t0),
            "t0_token_left_s": (expires - t0).total_seconds(),
            "seconds_to_recovery": (fresh[0] - t0).total_seconds() if fresh else None,
            "refresh_requests": len(refresh_requests(sim)) - before,
            "refresh_requests_after_t0": sum(
                1 for r in refresh_requests(sim)[before:] if r.time >= t0
            ),
            "callers": len(outcomes),
            "callers_failed": sum(1 for _, ok in outcomes if not ok),
            "callers_failed_after_t0": sum(
                1 for at, ok in outcomes if not ok and at >= t0
            ),
            "calls_with_expired_token": expired_calls(sim),
            "reauths": reauth_flows(hass),
            "token_changed": tokens.access_token != old,
            "rate_limited_count": tokens.stats.rate_limited_count,
        }
        assert await hass.config_entries.async_unload(entry.entry_id)
    write_fragment(f"tokens_deadlock_{case}", result)


async def test_token_endpoint_down_two_hours(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
) -> None:
    """Tesla's token endpoint answers 503 for 2 h around the token's expiry.

    The outage starts 45 min before expiry (the proactive refresh at 30 min
    fails) and the token expires 45 min into it. The scout keeps checking a
    commuting car meanwhile. No reauthentication may be asked for.
    """
    freezer.move_to(START)
    await prepare_hass(hass)
    sim = Simulator(clock=SimClock.follow(dt_util.utcnow))
    failures: list[dict[str, Any]] = []
    reauth_events: list[dict[str, Any]] = []

    @callback
    def _failed(event: Event[dict[str, Any]]) -> None:
        failures.append(dict(event.data))

    @callback
    def _reauth(event: Event[dict[str, Any]]) -> None:
        reauth_events.append(dict(event.data))

    unsubs = [
        hass.bus.async_listen(EVENT_REFRESH_FAILED, _failed),
        hass.bus.async_listen(EVENT_REAUTH_REQUIRED, _reauth),
    ]
    async with running_simulator(sim) as server:
        entry = add_entry(hass, sim, server.url, polling=True)
        await setup_entry(hass, entry)
        tokens = entry.runtime_data.tokens
        clock = Clock(hass, freezer)
        expires = tokens.expires_at
        outage_start = expires - timedelta(minutes=45)
        outage_end = outage_start + timedelta(hours=2)
        car = sim.vehicle()
        drive = timedelta(minutes=25)
        sim.schedule_event(
            expires - timedelta(minutes=10), "drive_to_work", duration=drive
        )
        sim.schedule_event(
            expires + timedelta(minutes=50), "drive_home", duration=drive
        )
        await clock.run_until(outage_start)
        before = len(refresh_requests(sim))
        checks_before = len(sim.api_requests())
        sim.faults.token_endpoint_status = 503
        await clock.run_until(outage_end)
        sim.faults.token_endpoint_status = None
        during = len(refresh_requests(sim)) - before
        api_during = len(sim.api_requests()) - checks_before
        await clock.run_until(outage_end + timedelta(hours=1))
        fresh = [
            r.time
            for r in refresh_requests(sim)[before:]
            if r.status == 200 and r.time >= outage_end
        ]
        result = {
            "outage_minutes": 120,
            "outage_starts_before_expiry_min": 45,
            "reauths": reauth_flows(hass) + len(reauth_events),
            "refresh_requests_during_outage": during,
            "refresh_failures": len(failures),
            "seconds_to_recovery": (
                round((fresh[0] - outage_end).total_seconds(), 1) if fresh else None
            ),
            "api_calls_during_outage": api_during,
            "calls_with_expired_token": expired_calls(sim),
            "token_status_after": str(tokens.status),
            "car_trips": len(car.trips),
            "car_wakes": car.wake_count,
        }
        assert await hass.config_entries.async_unload(entry.entry_id)
    for unsub in unsubs:
        unsub()
    write_fragment("tokens_outage", result)
