"""Planner: speed on 2 days of 15-minute prices, and cost against brute force."""

from __future__ import annotations

from datetime import datetime, time, timedelta
import gc
import math
import random

from custom_components.tesla_scout_worker.charging_plan import (
    MODE_PRICES,
    OffPeakWindow,
    PlanRequest,
)
from custom_components.tesla_scout_worker.planner import plan_charging
from custom_components.tesla_scout_worker.prices import PriceSlot

from .fragments import wall_clock, write_fragment
from .harness import TZ
from .reference_planner import brute_force_best_start

SEED = 11
PLANS = 2000  # timed
REPEATS = 3  # timed passes; the fastest counts
CHECKED = 300  # also solved by brute force (every start minute)
SLOT = timedelta(minutes=15)
DAY_ONE = datetime(2025, 6, 2, tzinfo=TZ)
NIGHT = OffPeakWindow(time(22), time(6), TZ)


def day_ahead_prices(rng: random.Random) -> list[PriceSlot]:
    """Two days of 15-minute prices: a daily shape, noise and price spikes."""
    slots = []
    for index in range(2 * 24 * 4):
        start = DAY_ONE + SLOT * index
        hour = (index % 96) / 4
        shape = 0.22 + 0.12 * math.cos((hour - 19) / 24 * 2 * math.pi)
        price = max(0.01, shape + rng.gauss(0, 0.04))
        if rng.random() < 0.03:
            price += rng.uniform(0.2, 0.6)
        slots.append(PriceSlot(start, start + SLOT, round(price, 4)))
    return slots


def random_request(rng: random.Random, prices: list[PriceSlot]) -> PlanRequest:
    """Return a random car, state of charge and deadline within the price data."""
    now = DAY_ONE + timedelta(minutes=rng.randint(0, 20 * 60))
    latest = DAY_ONE + timedelta(days=2)
    ready_by = min(latest, now + timedelta(minutes=rng.randint(4 * 60, 40 * 60)))
    soc = rng.uniform(5, 80)
    return PlanRequest(
        now=now,
        current_soc=soc,
        target_soc=min(100.0, soc + rng.uniform(5, 60)),
        capacity_kwh=rng.choice((57.5, 75.0, 82.0, 100.0)),
        power_kw=rng.choice((3.7, 7.4, 11.0, 16.5)),
        ready_by=ready_by,
        prices=prices,
        off_peak=NIGHT if rng.random() < 0.3 else None,
        continuous=True,
    )


def test_planner() -> None:
    """Plans per second and the cost ratio to the cheapest start found by trying all."""
    rng = random.Random(SEED)
    requests = []
    prices: list[PriceSlot] = []
    for index in range(PLANS):
        if index % 20 == 0:  # a new day-ahead price series now and then
            prices = day_ahead_prices(rng)
        requests.append(random_request(rng, prices))
    # The best of three timed passes (the usual way to time a pure function:
    # the slower passes measure the machine, not the code), after a full
    # collection so no pass pays for garbage other scenarios left behind.
    gc.collect()
    elapsed = math.inf
    for _ in range(REPEATS):
        began = wall_clock()
        plans = [plan_charging(request) for request in requests]
        elapsed = min(elapsed, wall_clock() - began)

    ratios: list[float] = []
    no_block = mismatched_fallback = 0
    brute_seconds = 0.0
    for request, plan in list(zip(requests, plans, strict=True))[:CHECKED]:
        began = wall_clock()
        best = brute_force_best_start(request)
        brute_seconds += wall_clock() - began
        if best is None:
            no_block += 1
            mismatched_fallback += plan.mode == MODE_PRICES
            continue
        assert plan.expected_cost is not None
        ratios.append(plan.expected_cost / best[1])
    write_fragment(
        "planner",
        {
            "price_slots": 2 * 24 * 4,
            "slot_minutes": 15,
            "plans": PLANS,
            "plans_per_second": round(PLANS / elapsed, 1),
            "mean_plan_ms": round(elapsed / PLANS * 1000, 3),
            "checked_against_brute_force": len(ratios),
            "cost_ratio_min": round(min(ratios), 6),
            "cost_ratio_max": round(max(ratios), 6),
            "no_fully_priced_block": no_block,
            "no_block_but_price_plan": mismatched_fallback,
            "brute_force_ms_per_plan": round(brute_seconds / CHECKED * 1000, 2),
            "with_off_peak_window": sum(1 for r in requests if r.off_peak),
        },
    )
