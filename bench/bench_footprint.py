"""Footprint: setup time and memory of the integration for 1 and for 10 vehicles."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
import gc
import statistics
import tracemalloc

from freezegun.api import FrozenDateTimeFactory

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import (
    AccountConfig,
    SimClock,
    SimConfig,
    Simulator,
    VehicleConfig,
    running_simulator,
)

from .conftest import add_entry, prepare_hass, setup_entry
from .fragments import wall_clock, write_fragment

START = datetime(2025, 6, 2, 9, 0, tzinfo=dt_util.UTC)
ROUNDS = 5  # timed setups per size; the median is reported
TRACED_ROUNDS = 7  # setups under tracemalloc per size; the median is reported
SIZES = (1, 10)


def cars(count: int, first: int) -> list[VehicleConfig]:
    """Online cars with distinct VINs and names."""
    return [
        VehicleConfig(
            vin=f"5YJ3E7EB0KF{first + index:06d}", display_name=f"Car {first + index}"
        )
        for index in range(count)
    ]


async def test_footprint(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, socket_enabled: None
) -> None:
    """Set the integration up repeatedly; time it, then trace its allocations."""
    freezer.move_to(START)
    await prepare_hass(hass)
    accounts = [
        AccountConfig(sub=f"fleet-{size}", email=f"fleet{size}@example.com")
        for size in SIZES
    ]
    first = 1
    for account, size in zip(accounts, SIZES, strict=True):
        account.vehicles = cars(size, first)
        first += size
    sim = Simulator(SimConfig(accounts=accounts), clock=SimClock.follow(dt_util.utcnow))
    results: dict[str, dict[str, float]] = {}
    setups: Counter[str] = Counter()
    async with running_simulator(sim) as server:

        async def setup_once(sub: str, trace: bool) -> tuple[float, float, float]:
            entry = add_entry(hass, sim, server.url, sub=sub)
            setups[sub] += 1
            gc.collect()
            if trace:
                tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            began = wall_clock()
            await setup_entry(hass, entry)
            elapsed = wall_clock() - began
            retained = peak = 0.0
            if trace:
                gc.collect()
                current, top = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                retained, peak = current - before, top - before
            assert await hass.config_entries.async_remove(entry.entry_id)
            await hass.async_block_till_done(wait_background_tasks=True)
            return elapsed, retained, peak

        await setup_once(accounts[0].sub, trace=False)  # warm-up: imports, caches
        for account, size in zip(accounts, SIZES, strict=True):
            times = [
                (await setup_once(account.sub, trace=False))[0] for _ in range(ROUNDS)
            ]
            traced = [
                await setup_once(account.sub, trace=True) for _ in range(TRACED_ROUNDS)
            ]
            retained = statistics.median(t[1] for t in traced)
            peak = statistics.median(t[2] for t in traced)
            results[f"vehicles_{size}"] = {
                "vehicles": size,
                "setup_ms_median": round(statistics.median(times) * 1000, 1),
                "setup_ms_max": round(max(times) * 1000, 1),
                "memory_kib_retained": round(retained / 1024, 1),
                "memory_kib_peak": round(peak / 1024, 1),
            }
    write_fragment(
        "footprint",
        {
            "rounds": ROUNDS,
            "traced_rounds": TRACED_ROUNDS,
            **results,
            "api_calls_per_setup": {
                f"vehicles_{size}": sum(
                    1 for r in sim.api_requests() if r.sub == account.sub
                )
                / setups[account.sub]
                for account, size in zip(accounts, SIZES, strict=True)
            },
        },
    )
