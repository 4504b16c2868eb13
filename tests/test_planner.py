"""Tests for the charging planner (pure functions, no Home Assistant).

Price slots and price-entity parsing are tested in ``test_prices.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
import random
import sys
import time as time_module
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bench.reference_planner import brute_force_best_start
from custom_components.tesla_scout_worker.charging_plan import (
    CLEANUP_DELAY,
    ERROR_INVALID_CAPACITY,
    ERROR_INVALID_EFFICIENCY,
    ERROR_INVALID_LEAD_TIME,
    ERROR_INVALID_OFF_PEAK_WINDOW,
    ERROR_INVALID_POWER,
    ERROR_INVALID_SOC,
    ERROR_INVALID_STORED_PLAN,
    ERROR_NO_PRICES,
    ERROR_READY_BY_NOT_AFTER_NOW,
    MODE_DEADLINE,
    MODE_OFF_PEAK,
    MODE_PRICES,
    REASON_ALREADY_AT_TARGET,
    REASON_MISSING_PRICES,
    REASON_NOT_ENOUGH_TIME,
    REASON_WINDOW_TOO_SHORT,
    ChargingPlan,
    OffPeakWindow,
    PlanRequest,
    charging_duration,
    required_grid_energy_kwh,
)
from custom_components.tesla_scout_worker.const import DEFAULT_LEAD_TIME
from custom_components.tesla_scout_worker.planner import plan_charging
from custom_components.tesla_scout_worker.prices import (
    ERROR_NAIVE_DATETIME,
    PlanInputError,
    PriceSlot,
)

TZ = ZoneInfo("Europe/Amsterdam")
NIGHT = OffPeakWindow(time(22), time(6), TZ)

# 48.5 % of 75 kWh at 90 % efficiency and 11 kW: 220.45 min -> 3 h 41 min.
REFERENCE_CAR: dict[str, Any] = {
    "current_soc": 30.0,
    "target_soc": 78.5,
    "capacity_kwh": 75.0,
    "power_kw": 11.0,
}
REFERENCE_DURATION = timedelta(hours=3, minutes=41)

# 30 kWh at 10 kW and 100 % efficiency: exactly three hours.
THREE_HOUR_CAR: dict[str, Any] = {
    "current_soc": 20.0,
    "target_soc": 50.0,
    "capacity_kwh": 100.0,
    "power_kw": 10.0,
    "efficiency": 1.0,
}


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """Return a January 2025 local time in Amsterdam."""
    return datetime(2025, 1, day, hour, minute, second, tzinfo=TZ)


def request(**overrides: Any) -> PlanRequest:
    """Return a reference request (evening before, ready at 06:00)."""
    fields: dict[str, Any] = {
        "now": local(10, 18),
        "ready_by": local(11, 6),
        **REFERENCE_CAR,
    }
    fields.update(overrides)
    return PlanRequest(**fields)


def three_hours(**overrides: Any) -> PlanRequest:
    """Return a three-hour charge planned at noon, ready by 07:00 next day."""
    fields: dict[str, Any] = {
        "now": local(10, 12),
        "ready_by": local(11, 7),
        **THREE_HOUR_CAR,
    }
    fields.update(overrides)
    return PlanRequest(**fields)


def price_series(
    start: datetime, prices: Sequence[float | None], minutes: float = 60
) -> list[PriceSlot]:
    """Return consecutive slots from ``start``; None leaves a gap."""
    slots = []
    begin = start.astimezone(UTC)
    step = timedelta(minutes=minutes)
    for index, price in enumerate(prices):
        if price is not None:
            slot_start = begin + index * step
            slots.append(PriceSlot(slot_start, slot_start + step, price))
    return slots


def hourly(prices: dict[int, float], default: float = 0.3) -> list[PriceSlot]:
    """Return 48 hourly slots from local midnight of the 10th, some overridden."""
    return price_series(local(10, 0), [prices.get(hour, default) for hour in range(48)])


def with_gaps(hours: dict[int, float]) -> list[PriceSlot]:
    """Return hourly slots from local midnight of the 10th for ``hours`` only."""
    values: list[float | None] = [hours.get(hour) for hour in range(48)]
    return price_series(local(10, 0), values)


# --------------------------------------------------------------------------
# Energy and duration
# --------------------------------------------------------------------------


def test_energy_and_duration_round_up_to_minutes() -> None:
    energy = required_grid_energy_kwh(30, 78.5, 75, 0.9)
    assert energy == pytest.approx(40.41666666)
    assert charging_duration(energy, 11) == REFERENCE_DURATION
    assert required_grid_energy_kwh(80, 80, 75, 0.9) == 0.0
    assert charging_duration(30.0, 10.0) == timedelta(hours=3)


# --------------------------------------------------------------------------
# Off-peak window and deadline modes
# --------------------------------------------------------------------------


def test_reference_example() -> None:
    plan = plan_charging(request(off_peak=NIGHT))

    assert plan.mode == MODE_OFF_PEAK
    assert plan.start == local(11, 2, 19)
    assert plan.end == local(11, 6)
    assert plan.segments == ((local(11, 2, 19), local(11, 6)),)
    assert plan.duration == REFERENCE_DURATION
    assert plan.send_at == local(11, 0, 19)
    assert plan.cleanup_at == local(11, 6) + CLEANUP_DELAY
    assert plan.reachable
    assert plan.reason is None
    assert plan.expected_soc == 78.5
    assert plan.energy_kwh == pytest.approx(40.41666666)
    assert plan.expected_cost is None
    assert plan.missing_slots == 0


# Requests without prices: (overrides of the reference request, mode, planned
# start and end, reason when the target is not reached).
WITHOUT_PRICES = [
    pytest.param(
        {"off_peak": NIGHT, "ready_by": local(11, 5)},
        MODE_OFF_PEAK,
        local(11, 1, 19),
        local(11, 5),
        None,
        id="ready by before the window ends",
    ),
    pytest.param(
        {"off_peak": NIGHT, "now": local(10, 12), "ready_by": local(10, 23)},
        MODE_OFF_PEAK,
        local(10, 22),
        local(10, 23),
        REASON_WINDOW_TOO_SHORT,
        id="ready by inside the window before midnight",
    ),
    pytest.param(
        {"off_peak": NIGHT, "ready_by": local(11, 8, 30)},
        MODE_OFF_PEAK,
        local(11, 2, 19),
        local(11, 6),
        None,
        id="ready by after the window: the preceding occurrence",
    ),
    pytest.param(
        {
            "off_peak": OffPeakWindow(time(12), time(17), TZ),
            "now": local(10, 8),
            "ready_by": local(11, 10),
        },
        MODE_OFF_PEAK,
        local(10, 13, 19),
        local(10, 17),
        None,
        id="daytime window on the previous day",
    ),
    pytest.param(
        {
            "off_peak": OffPeakWindow(time(1), time(17), TZ),
            "now": local(10, 8),
            "ready_by": local(10, 16),
        },
        MODE_OFF_PEAK,
        local(10, 12, 19),
        local(10, 16),
        None,
        id="daytime window on the same day",
    ),
    pytest.param(
        {"off_peak": OffPeakWindow(time(1), time(3), TZ)},
        MODE_OFF_PEAK,
        local(11, 1),
        local(11, 3),
        REASON_WINDOW_TOO_SHORT,
        id="window too short",
    ),
    pytest.param(
        {"off_peak": NIGHT, "now": local(11, 3, 0, 20)},
        MODE_OFF_PEAK,
        local(11, 3, 1),
        local(11, 6),
        REASON_NOT_ENOUGH_TIME,
        id="not enough time left in the window",
    ),
    pytest.param(
        {},
        MODE_DEADLINE,
        local(11, 2, 19),
        local(11, 6),
        None,
        id="deadline: the latest block",
    ),
    pytest.param(
        {"now": local(10, 10, 0, 30), "ready_by": local(10, 12, 0, 45)},
        MODE_DEADLINE,
        local(10, 10, 1),
        local(10, 12),
        REASON_NOT_ENOUGH_TIME,
        id="deadline: not enough time, from the next minute",
    ),
    pytest.param(
        {"now": local(10, 10, 0, 5), "ready_by": local(10, 15)},
        MODE_DEADLINE,
        local(10, 11, 19),
        local(10, 15),
        None,
        id="deadline: sent at once",
    ),
    pytest.param(
        {
            "off_peak": NIGHT,
            "now": datetime(2025, 3, 29, 18, tzinfo=TZ),
            "ready_by": datetime(2025, 3, 30, 6, tzinfo=TZ),
        },
        MODE_OFF_PEAK,
        datetime(2025, 3, 30, 1, 19, tzinfo=TZ),
        datetime(2025, 3, 30, 6, tzinfo=TZ),
        None,
        id="spring forward keeps real durations",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "mode", "start", "end", "reason"), WITHOUT_PRICES
)
def test_plan_without_prices(
    overrides: dict[str, Any],
    mode: str,
    start: datetime,
    end: datetime,
    reason: str | None,
) -> None:
    plan_request = request(**overrides)
    plan = plan_charging(plan_request)

    assert plan.mode == mode
    assert (plan.start, plan.end) == (start, end)
    assert plan.segments == ((start, end),)
    assert plan.duration == end.astimezone(UTC) - start.astimezone(UTC)
    assert plan.reason == reason
    assert plan.reachable == (reason is None)
    if plan.reachable:
        assert plan.duration == REFERENCE_DURATION
        assert plan.expected_soc == plan_request.target_soc
    else:
        assert plan.duration < REFERENCE_DURATION
        assert plan_request.current_soc < plan.expected_soc < plan_request.target_soc
    # Lead time and cleanup delay are real durations (UTC arithmetic).
    assert plan.send_at == max(
        plan_request.now, start.astimezone(UTC) - timedelta(minutes=DEFAULT_LEAD_TIME)
    )
    assert plan.cleanup_at == end.astimezone(UTC) + CLEANUP_DELAY
    assert plan.expected_cost is None
    assert plan.missing_slots == 0


def test_partial_plan_energy_and_soc() -> None:
    plan = plan_charging(request(off_peak=OffPeakWindow(time(1), time(3), TZ)))

    assert plan.duration == timedelta(hours=2)
    # 2 h x 11 kW = 22 kWh; x 0.9 = 19.8 kWh = 26.4 % of 75 kWh.
    assert plan.energy_kwh == pytest.approx(22.0)
    assert plan.expected_soc == pytest.approx(56.4)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(
            {"off_peak": NIGHT, "now": local(11, 7), "ready_by": local(11, 9)},
            id="window already over",
        ),
        pytest.param(
            {"now": local(10, 10, 0, 10), "ready_by": local(10, 10, 0, 50)},
            id="less than a minute left",
        ),
    ],
)
def test_no_time_at_all_plans_nothing(overrides: dict[str, Any]) -> None:
    plan = plan_charging(request(**overrides))

    assert plan.segments == ()
    assert plan.start is None
    assert plan.end is None
    assert plan.send_at is None
    assert plan.cleanup_at is None
    assert plan.duration == timedelta(0)
    assert not plan.reachable
    assert plan.reason == REASON_NOT_ENOUGH_TIME
    assert plan.energy_kwh == 0.0
    assert plan.expected_soc == 30.0


@pytest.mark.parametrize(
    ("overrides", "mode", "cost"),
    [
        ({}, MODE_DEADLINE, None),
        ({"off_peak": NIGHT}, MODE_OFF_PEAK, None),
        ({"prices": hourly({}, 0.2)}, MODE_PRICES, 0.0),
    ],
)
def test_already_at_target(
    overrides: dict[str, Any], mode: str, cost: float | None
) -> None:
    plan = plan_charging(request(current_soc=85, target_soc=80, **overrides))

    assert plan.reason == REASON_ALREADY_AT_TARGET
    assert plan.reachable
    assert plan.mode == mode
    assert plan.duration == timedelta(0)
    assert plan.segments == ()
    assert plan.send_at is None
    assert plan.cleanup_at is None
    assert plan.energy_kwh == 0.0
    assert plan.expected_soc == 85
    assert plan.expected_cost == cost


def test_results_use_the_time_zone_of_now() -> None:
    plan = plan_charging(request(now=local(10, 18).astimezone(UTC)))

    assert plan.start is not None
    assert plan.start.tzinfo is UTC
    assert plan.start == local(11, 2, 19)


# --------------------------------------------------------------------------
# Price mode
# --------------------------------------------------------------------------


def quarters(cheap: range, dear: dict[int, float]) -> list[PriceSlot]:
    """Return 2 days of 15-minute slots: 0.1 in ``cheap``, else 0.3 or ``dear``."""
    values = [0.1 if index in cheap else 0.3 for index in range(48 * 4)]
    for index, price in dear.items():
        values[index] = price
    return price_series(local(10, 0), values, minutes=15)


# Three-hour charges on prices: (overrides of ``three_hours()``, start, cost).
CHEAPEST_BLOCKS = [
    pytest.param(
        {"prices": hourly({26: 0.1, 27: 0.1, 28: 0.1})},
        local(11, 2),
        3.0,
        id="the cheapest block",
    ),
    pytest.param(
        {"prices": hourly({}, 0.2)},
        local(11, 4),
        6.0,
        id="all equal: the latest block",
    ),
    pytest.param(
        {"prices": hourly(dict.fromkeys((14, 15, 16, 26, 27, 28), 0.1))},
        local(11, 2),
        3.0,
        id="two equal cheap blocks: the later one",
    ),
    pytest.param(
        # Cheap from 01:15 to 04:45 except one dear quarter at 02:30.
        {"prices": quarters(range(24 * 4 + 5, 24 * 4 + 19), {24 * 4 + 10: 0.2})},
        local(11, 1, 45),
        3.25,
        id="block straddles quarter hours",
    ),
    pytest.param(
        # The cheapest hours are in the afternoon, outside the window.
        {
            "prices": hourly({14: 0.01, 15: 0.01, 16: 0.01, 23: 0.1, 24: 0.1, 25: 0.1}),
            "off_peak": NIGHT,
        },
        local(10, 23),
        3.0,
        id="window restricts the search to its occurrences",
    ),
    pytest.param(
        {
            "prices": hourly({1: 0.05, 2: 0.05, 3: 0.05}),
            "off_peak": OffPeakWindow(time(0), time(4), TZ),
            "now": local(10, 0, 30),
        },
        local(10, 1),
        1.5,
        id="window: an earlier occurrence",
    ),
    pytest.param(
        # Cheap from 07:30:30 to 08:30:30, priced until 21:00:30.
        {
            "prices": price_series(
                local(10, 0, 0, 30), [0.3] * 30 + [0.1] * 4 + [0.3] * 50, 15
            ),
            "now": local(10, 6),
            "ready_by": local(10, 21),
        },
        local(10, 7, 30),
        7.0,
        id="boundaries off whole minutes",
    ),
]


@pytest.mark.parametrize(("overrides", "start", "cost"), CHEAPEST_BLOCKS)
def test_price_mode_picks_cheapest_block(
    overrides: dict[str, Any], start: datetime, cost: float
) -> None:
    plan_request = three_hours(**overrides)
    plan = plan_charging(plan_request)
    best = brute_force_best_start(plan_request)

    assert plan.mode == MODE_PRICES
    assert plan.reachable
    assert plan.reason is None
    assert plan.start == start
    assert plan.end == start + timedelta(hours=3)
    assert plan.expected_cost == pytest.approx(cost)
    assert plan.missing_slots == 0
    assert best == (plan.start, plan.expected_cost)


def test_sixty_and_fifteen_minute_series_agree() -> None:
    hourly_prices = [
        {20: 0.12, 21: 0.11, 22: 0.1, 23: 0.13}.get(hour, 0.3) for hour in range(48)
    ]
    quarter_prices = [price for price in hourly_prices for _ in range(4)]
    plan_hourly = plan_charging(
        three_hours(prices=price_series(local(10, 0), hourly_prices))
    )
    plan_quarters = plan_charging(
        three_hours(prices=price_series(local(10, 0), quarter_prices, minutes=15))
    )

    assert plan_hourly.start == plan_quarters.start == local(10, 20)
    assert plan_hourly.expected_cost == pytest.approx(plan_quarters.expected_cost)


def test_unsorted_and_duplicate_slots() -> None:
    base = hourly({30: 0.1})
    duplicate = PriceSlot(local(11, 6), local(11, 7), 0.9)
    swallowed = PriceSlot(local(11, 8), local(11, 8, 30), 0.01)
    shuffled = [*reversed(base), duplicate, swallowed]
    plan = plan_charging(three_hours(ready_by=local(11, 10), prices=shuffled))

    # The later duplicate of the cheap 06:00 slot loses, the slot inside the
    # 08:00 hour is dropped.
    assert plan_charging(three_hours(ready_by=local(11, 10), prices=base)) == plan
    assert plan.start == local(11, 6)
    assert plan.missing_slots == 0


def test_changed_price_list_is_planned_afresh() -> None:
    prices = hourly({26: 0.1, 27: 0.1, 28: 0.1})
    first = plan_charging(three_hours(prices=prices))
    # The same list, changed in place: the planner must not reuse what it
    # worked out for the old contents.
    prices[14:17] = hourly({14: 0.05, 15: 0.05, 16: 0.05})[14:17]
    changed = plan_charging(three_hours(prices=prices))

    assert first.start == local(11, 2)
    assert changed.start == local(10, 14)
    assert changed.expected_cost == pytest.approx(1.5)
    assert plan_charging(three_hours(prices=list(reversed(prices)))) == changed


def test_continuous_false_picks_cheapest_minutes() -> None:
    plan = plan_charging(
        three_hours(
            prices=hourly({14: 0.05, 25: 0.05, 27: 0.06, 28: 0.06}), continuous=False
        )
    )

    assert plan.mode == MODE_PRICES
    # 0.05 twice, then the later of the two 0.06 hours.
    assert plan.segments == (
        (local(10, 14), local(10, 15)),
        (local(11, 1), local(11, 2)),
        (local(11, 4), local(11, 5)),
    )
    assert plan.start == local(10, 14)
    assert plan.end == local(11, 5)
    assert plan.duration == timedelta(hours=3)
    assert plan.send_at == local(10, 12)
    assert plan.expected_cost == pytest.approx(10 * (0.05 + 0.05 + 0.06))


def test_continuous_false_merges_and_takes_piece_tails() -> None:
    plan = plan_charging(
        three_hours(
            target_soc=45.0,
            prices=hourly({25: 0.05, 26: 0.05, 27: 0.1}),
            continuous=False,
        )
    )

    # 2.5 hours: the two cheap hours plus the last half of the next one.
    assert plan.segments == (
        (local(11, 1), local(11, 3)),
        (local(11, 3, 30), local(11, 4)),
    )
    assert plan.expected_cost == pytest.approx(10 * (0.05 * 2 + 0.1 * 0.5))


def test_continuous_false_skips_slots_shorter_than_a_minute() -> None:
    # Its only whole minute, 12:01, is not covered to its end.
    sliver = PriceSlot(local(10, 12, 0, 20), local(10, 12, 1, 10), 0.01)
    plan = plan_charging(
        three_hours(
            prices=[sliver, *hourly({26: 0.1, 27: 0.1, 28: 0.1})[13:]],
            continuous=False,
        )
    )

    assert plan.segments == ((local(11, 2), local(11, 5)),)
    assert plan.expected_cost == pytest.approx(3.0)


# --------------------------------------------------------------------------
# Missing prices
# --------------------------------------------------------------------------


# Price requests that cannot be planned on prices alone: (request, mode,
# reason, start, end, expected cost, missing slots).
FALLBACKS = [
    pytest.param(
        # Only 18:00-20:00 and 23:00-01:00 are priced: no 3-hour block fits.
        three_hours(
            now=local(10, 17), prices=with_gaps({18: 0.1, 19: 0.1, 23: 0.1, 24: 0.1})
        ),
        MODE_DEADLINE,
        REASON_MISSING_PRICES,
        local(11, 4),
        local(11, 7),
        None,
        # Gaps: 17-18, 20-23 and 01-07 (the last slot ends at 01:00).
        1 + 3 + 6,
        id="no fully priced block: deadline",
    ),
    pytest.param(
        three_hours(
            now=local(10, 17),
            prices=[slot for slot in hourly({}, 0.2) if slot.start != local(11, 2)],
            off_peak=OffPeakWindow(time(1), time(5), TZ),
        ),
        MODE_OFF_PEAK,
        REASON_MISSING_PRICES,
        local(11, 2),
        local(11, 5),
        None,
        1,
        id="no fully priced block in the window: off-peak",
    ),
    pytest.param(
        request(off_peak=NIGHT, prices=[]),
        MODE_OFF_PEAK,
        REASON_MISSING_PRICES,
        local(11, 2, 19),
        local(11, 6),
        None,
        12,
        id="empty prices with a window",
    ),
    pytest.param(
        three_hours(prices=with_gaps({20: 0.1, 22: 0.1}), continuous=False),
        MODE_DEADLINE,
        REASON_MISSING_PRICES,
        local(11, 4),
        local(11, 7),
        None,
        17,
        id="too few priced minutes",
    ),
    pytest.param(
        three_hours(ready_by=local(10, 14), prices=hourly({}, 0.2)),
        MODE_DEADLINE,
        REASON_NOT_ENOUGH_TIME,
        local(10, 12),
        local(10, 14),
        4.0,
        0,
        id="not enough time: the partial plan is priced",
    ),
    pytest.param(
        three_hours(
            now=local(10, 11),
            ready_by=local(10, 13),
            prices=price_series(local(10, 0), [0.2] * 12),
        ),
        MODE_DEADLINE,
        REASON_NOT_ENOUGH_TIME,
        local(10, 11),
        local(10, 13),
        None,
        1,
        id="not enough time and unpriced: no cost",
    ),
]


@pytest.mark.parametrize(
    ("plan_request", "mode", "reason", "start", "end", "cost", "missing"), FALLBACKS
)
def test_fallback_without_fully_priced_block(
    plan_request: PlanRequest,
    mode: str,
    reason: str,
    start: datetime,
    end: datetime,
    cost: float | None,
    missing: int,
) -> None:
    plan = plan_charging(plan_request)

    assert plan.mode == mode
    assert plan.reason == reason
    assert plan.reachable == (reason == REASON_MISSING_PRICES)
    assert (plan.start, plan.end) == (start, end)
    assert plan.expected_cost == (None if cost is None else pytest.approx(cost))
    assert plan.expected_soc == pytest.approx(
        plan_request.current_soc
        + plan.energy_kwh * plan_request.efficiency / plan_request.capacity_kwh * 100
    )
    assert plan.missing_slots == missing
    if plan_request.continuous:
        assert brute_force_best_start(plan_request) is None


def test_missing_slot_count_uses_shortest_slot() -> None:
    values: list[float | None] = [0.2] * (48 * 4)
    values[50] = values[51] = values[60] = None
    plan = plan_charging(
        three_hours(
            ready_by=local(10, 23), prices=price_series(local(10, 0), values, 15)
        )
    )

    assert plan.missing_slots == 3


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"current_soc": -1}, ERROR_INVALID_SOC),
        ({"target_soc": 100.5}, ERROR_INVALID_SOC),
        ({"current_soc": float("nan")}, ERROR_INVALID_SOC),
        ({"capacity_kwh": 0}, ERROR_INVALID_CAPACITY),
        ({"power_kw": -11}, ERROR_INVALID_POWER),
        ({"power_kw": float("inf")}, ERROR_INVALID_POWER),
        ({"efficiency": 0}, ERROR_INVALID_EFFICIENCY),
        ({"efficiency": 1.01}, ERROR_INVALID_EFFICIENCY),
        ({"lead_time": timedelta(minutes=-1)}, ERROR_INVALID_LEAD_TIME),
        ({"now": datetime(2025, 1, 10, 18)}, ERROR_NAIVE_DATETIME),  # noqa: DTZ001
        ({"ready_by": datetime(2025, 1, 11, 6)}, ERROR_NAIVE_DATETIME),  # noqa: DTZ001
        ({"ready_by": local(10, 18)}, ERROR_READY_BY_NOT_AFTER_NOW),
        ({"ready_by": local(10, 17)}, ERROR_READY_BY_NOT_AFTER_NOW),
        ({"prices": []}, ERROR_NO_PRICES),
    ],
)
def test_request_validation(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(PlanInputError) as err:
        request(**overrides)

    assert err.value.key == key
    assert isinstance(err.value, ValueError)


def test_off_peak_window_validation() -> None:
    with pytest.raises(PlanInputError) as err:
        OffPeakWindow(time(22), time(22), TZ)

    assert err.value.key == ERROR_INVALID_OFF_PEAK_WINDOW
    assert str(err.value) == "window start equals window end"


# --------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plan_request",
    [
        request(off_peak=NIGHT),
        request(current_soc=90),
        request(off_peak=NIGHT, now=local(11, 7), ready_by=local(11, 9)),
        three_hours(prices=hourly({14: 0.1, 25: 0.1}), continuous=False),
    ],
)
def test_as_dict_round_trip(plan_request: PlanRequest) -> None:
    plan = plan_charging(plan_request)
    data = plan.as_dict()

    assert ChargingPlan.from_dict(data) == plan
    assert data["duration_seconds"] == plan.duration.total_seconds()
    if plan.start is not None:
        assert data["start"] == plan.start.isoformat()
        assert data["segments"][0]["start"] == plan.start.isoformat()


def test_as_dict_is_iso() -> None:
    data = plan_charging(request(off_peak=NIGHT)).as_dict()

    assert data["start"] == "2025-01-11T02:19:00+01:00"
    assert data["send_at"] == "2025-01-11T00:19:00+01:00"
    assert data["cleanup_at"] == "2025-01-11T06:30:00+01:00"
    assert data["reason"] is None
    assert data["mode"] == MODE_OFF_PEAK


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data.pop("mode"),
        lambda data: data.update(start="yesterday"),
        lambda data: data.update(segments=[{"start": 1}]),
        lambda data: data.update(energy_kwh=None),
    ],
)
def test_from_dict_rejects_damaged_data(damage: Any) -> None:
    data = plan_charging(request(off_peak=NIGHT)).as_dict()
    damage(data)

    with pytest.raises(PlanInputError) as err:
        ChargingPlan.from_dict(data)

    assert err.value.key == ERROR_INVALID_STORED_PLAN


# --------------------------------------------------------------------------
# Optimality against brute force
# --------------------------------------------------------------------------


def seeded(seed: int) -> random.Random:
    """Return a reproducible random generator (not for cryptography)."""
    return random.Random(seed)


def random_prices(
    rng: random.Random, start: datetime, minutes: float = 15
) -> list[PriceSlot]:
    """Return 2 days of prices, sometimes with ties or gaps."""
    count = int(2 * 24 * 60 / minutes)
    if rng.random() < 0.4:
        levels = [0.1, 0.2, 0.25, 0.3]
        values: list[float | None] = [rng.choice(levels) for _ in range(count)]
    else:
        values = [round(rng.uniform(-0.05, 0.6), 4) for _ in range(count)]
    if rng.random() < 0.3:
        for _ in range(rng.randint(1, 8)):
            values[rng.randrange(count)] = None
    return price_series(start, values, minutes=minutes)


def random_request(
    rng: random.Random, offset: timedelta = timedelta(0), minutes: float = 15
) -> PlanRequest:
    """Return a random price-mode request over two days."""
    day = rng.choice(
        [datetime(2025, 1, 10, tzinfo=TZ), datetime(2025, 3, 29, tzinfo=TZ)]
    )
    prices = random_prices(rng, day + offset, minutes)
    now = day + timedelta(minutes=rng.randrange(0, 30 * 60), seconds=rng.randrange(60))
    ready_by = now + timedelta(
        minutes=rng.randrange(60, 30 * 60), seconds=rng.randrange(60)
    )
    current = rng.uniform(5, 60)
    window = None
    if rng.random() < 0.3:
        start_hour, end_hour = rng.sample(range(24), 2)
        window = OffPeakWindow(
            time(start_hour), time(end_hour, rng.choice([0, 30])), TZ
        )
    return PlanRequest(
        now=now.astimezone(UTC) if rng.random() < 0.5 else now,
        ready_by=ready_by,
        current_soc=current,
        target_soc=min(100.0, current + rng.uniform(5, 40)),
        capacity_kwh=rng.uniform(50, 80),
        power_kw=rng.uniform(7, 11),
        efficiency=rng.uniform(0.85, 0.95),
        prices=prices,
        off_peak=window,
    )


@pytest.mark.parametrize(
    ("seed", "plans", "offset", "minutes"),
    [
        pytest.param(20250110, 200, timedelta(0), 15, id="quarter hours"),
        pytest.param(
            5, 60, timedelta(seconds=30), 15, id="quarter hours off whole minutes"
        ),
        pytest.param(6, 40, timedelta(seconds=7), 12.5, id="odd slot lengths"),
    ],
)
def test_random_plans_match_brute_force(
    seed: int, plans: int, offset: timedelta, minutes: float
) -> None:
    rng = seeded(seed)
    matched = 0
    for _ in range(plans):
        plan_request = random_request(rng, offset, minutes)
        plan = plan_charging(plan_request)
        best = brute_force_best_start(plan_request)
        if best is None:
            assert plan.mode != MODE_PRICES
            continue
        matched += 1
        assert plan.mode == MODE_PRICES
        assert plan.start == best[0]
        assert plan.expected_cost == best[1]
    assert matched > plans // 2


def cheapest_minutes_cost(plan_request: PlanRequest) -> float | None:
    """Reference for continuous=False: sort every priced minute by price."""
    prices = plan_request.prices
    assert prices is not None
    minute = timedelta(minutes=1)
    now = plan_request.now.astimezone(UTC)
    first = now.replace(second=0, microsecond=0)
    if first < now:
        first += minute
    last = plan_request.ready_by.astimezone(UTC)
    minute_prices = []
    for slot in prices:
        moment = max(slot.start.astimezone(UTC), first)
        while moment + minute <= min(slot.end, last):
            minute_prices.append(slot.price)
            moment += minute
    energy = required_grid_energy_kwh(
        plan_request.current_soc,
        plan_request.target_soc,
        plan_request.capacity_kwh,
        plan_request.efficiency,
    )
    needed = int(charging_duration(energy, plan_request.power_kw) / minute)
    if len(minute_prices) < needed:
        return None
    cheapest = sorted(minute_prices)[:needed]
    return sum(cheapest) * plan_request.power_kw / 60


def test_random_non_continuous_plans_are_cheapest() -> None:
    rng = seeded(7)
    for _ in range(25):
        base = random_request(rng)
        plan_request = PlanRequest(
            now=base.now,
            ready_by=base.ready_by,
            current_soc=base.current_soc,
            target_soc=base.target_soc,
            capacity_kwh=base.capacity_kwh,
            power_kw=base.power_kw,
            efficiency=base.efficiency,
            prices=base.prices,
            continuous=False,
        )
        plan = plan_charging(plan_request)
        expected = cheapest_minutes_cost(plan_request)
        if expected is None:
            assert plan.mode != MODE_PRICES
            continue
        assert plan.mode == MODE_PRICES
        assert plan.expected_cost == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert plan.reachable
        ends = [end for _, end in plan.segments]
        starts = [start for start, _ in plan.segments]
        assert all(end < start for end, start in zip(ends, starts[1:], strict=False))


def test_brute_force_without_prices_or_room() -> None:
    assert brute_force_best_start(request()) is None
    assert brute_force_best_start(request(prices=hourly({})[:2])) is None


PLAN_BUDGET = 0.005
TRACED_BUDGET = 0.02  # coverage tracing slows the planner down a few times


def tracing_active() -> bool:
    """Return whether a tracer (e.g. coverage) is slowing the code down."""
    monitoring_tool = sys.monitoring.get_tool(sys.monitoring.COVERAGE_ID)
    return sys.gettrace() is not None or monitoring_tool is not None


def test_plan_is_fast_for_two_days_of_quarter_hours() -> None:
    rng = seeded(1)
    start = local(10, 0)
    values = [round(rng.uniform(0, 0.5), 4) for _ in range(2 * 24 * 4)]
    plan_request = request(
        now=local(10, 0, 5),
        ready_by=local(11, 23, 45),
        prices=price_series(start, values, minutes=15),
    )
    timings = []
    for _ in range(20):
        began = time_module.perf_counter()
        plan_charging(plan_request)
        timings.append(time_module.perf_counter() - began)

    assert min(timings) < (TRACED_BUDGET if tracing_active() else PLAN_BUDGET)
