"""Tests for the charging planner (pure functions, no Home Assistant)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
import random
import sys
import time as time_module
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.tesla_scout_worker.planner import (
    CLEANUP_DELAY,
    ERROR_INVALID_CAPACITY,
    ERROR_INVALID_EFFICIENCY,
    ERROR_INVALID_LEAD_TIME,
    ERROR_INVALID_OFF_PEAK_WINDOW,
    ERROR_INVALID_POWER,
    ERROR_INVALID_PRICE_SLOT,
    ERROR_INVALID_SOC,
    ERROR_INVALID_STORED_PLAN,
    ERROR_NAIVE_DATETIME,
    ERROR_NO_PRICES,
    ERROR_READY_BY_NOT_AFTER_NOW,
    ERROR_UNRECOGNISED_PRICES,
    MODE_DEADLINE,
    MODE_OFF_PEAK,
    MODE_PRICES,
    REASON_ALREADY_AT_TARGET,
    REASON_MISSING_PRICES,
    REASON_NOT_ENOUGH_TIME,
    REASON_WINDOW_TOO_SHORT,
    ChargingPlan,
    OffPeakWindow,
    PlanInputError,
    PlanRequest,
    PriceSlot,
    brute_force_best_start,
    charging_duration,
    parse_price_series,
    plan_charging,
    required_grid_energy_kwh,
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


def price_series(
    start: datetime, prices: Sequence[float | None], minutes: int = 60
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


def hourly_from(day: int, prices: dict[int, float], default: float) -> list[float]:
    """Return 48 hourly prices from local midnight of ``day``, some overridden."""
    return [prices.get(hour, default) for hour in range(48)]


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
# Off-peak window mode
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


def test_ready_by_before_window_end() -> None:
    plan = plan_charging(request(off_peak=NIGHT, ready_by=local(11, 5)))

    assert plan.start == local(11, 1, 19)
    assert plan.end == local(11, 5)
    assert plan.send_at == local(10, 23, 19)
    assert plan.reachable


def test_ready_by_inside_window_before_midnight() -> None:
    plan = plan_charging(
        request(off_peak=NIGHT, now=local(10, 12), ready_by=local(10, 23))
    )

    assert plan.start == local(10, 22)
    assert plan.end == local(10, 23)
    assert not plan.reachable
    assert plan.reason == REASON_WINDOW_TOO_SHORT


def test_ready_by_after_window_end_uses_preceding_occurrence() -> None:
    plan = plan_charging(request(off_peak=NIGHT, ready_by=local(11, 8, 30)))

    assert plan.start == local(11, 2, 19)
    assert plan.end == local(11, 6)
    assert plan.reachable


def test_daytime_window_on_the_previous_day() -> None:
    window = OffPeakWindow(time(12), time(17), TZ)
    plan = plan_charging(
        request(off_peak=window, now=local(10, 8), ready_by=local(11, 10))
    )

    assert plan.start == local(10, 13, 19)
    assert plan.end == local(10, 17)
    assert plan.reachable


def test_daytime_window_on_the_same_day() -> None:
    window = OffPeakWindow(time(1), time(17), TZ)
    plan = plan_charging(
        request(off_peak=window, now=local(10, 8), ready_by=local(10, 16))
    )

    assert plan.start == local(10, 12, 19)
    assert plan.end == local(10, 16)


def test_window_too_short() -> None:
    window = OffPeakWindow(time(1), time(3), TZ)
    plan = plan_charging(request(off_peak=window))

    assert plan.start == local(11, 1)
    assert plan.end == local(11, 3)
    assert plan.duration == timedelta(hours=2)
    assert not plan.reachable
    assert plan.reason == REASON_WINDOW_TOO_SHORT
    # 2 h x 11 kW x 0.9 = 19.8 kWh = 26.4 % of 75 kWh.
    assert plan.energy_kwh == pytest.approx(22.0)
    assert plan.expected_soc == pytest.approx(56.4)


def test_not_enough_time_from_now() -> None:
    now = local(11, 3, 0, 20)
    plan = plan_charging(request(off_peak=NIGHT, now=now))

    assert plan.start == local(11, 3, 1)
    assert plan.end == local(11, 6)
    assert not plan.reachable
    assert plan.reason == REASON_NOT_ENOUGH_TIME
    assert plan.send_at == now
    assert plan.expected_soc < 78.5


def test_window_already_over_plans_nothing() -> None:
    plan = plan_charging(
        request(off_peak=NIGHT, now=local(11, 7), ready_by=local(11, 9))
    )

    assert plan.segments == ()
    assert plan.start is None
    assert plan.end is None
    assert plan.send_at is None
    assert plan.cleanup_at is None
    assert plan.duration == timedelta(0)
    assert not plan.reachable
    assert plan.reason == REASON_NOT_ENOUGH_TIME
    assert plan.expected_soc == 30.0


def test_spring_forward_keeps_real_durations() -> None:
    night = datetime(2025, 3, 30, 6, tzinfo=TZ)
    plan = plan_charging(
        request(
            off_peak=NIGHT,
            now=datetime(2025, 3, 29, 18, tzinfo=TZ),
            ready_by=night,
        )
    )

    assert plan.end == night
    assert plan.start == datetime(2025, 3, 30, 1, 19, tzinfo=TZ)
    assert plan.start is not None
    assert plan.end.astimezone(UTC) - plan.start.astimezone(UTC) == REFERENCE_DURATION
    assert plan.duration == REFERENCE_DURATION
    assert plan.send_at == datetime(2025, 3, 29, 23, 19, tzinfo=TZ)


# --------------------------------------------------------------------------
# Deadline mode and shared behaviour
# --------------------------------------------------------------------------


def test_deadline_mode_charges_latest_block() -> None:
    plan = plan_charging(request())

    assert plan.mode == MODE_DEADLINE
    assert plan.start == local(11, 2, 19)
    assert plan.end == local(11, 6)
    assert plan.reachable


def test_deadline_not_enough_time_starts_on_next_minute() -> None:
    plan = plan_charging(
        request(now=local(10, 10, 0, 30), ready_by=local(10, 12, 0, 45))
    )

    assert plan.start == local(10, 10, 1)
    assert plan.end == local(10, 12)
    assert plan.reason == REASON_NOT_ENOUGH_TIME
    assert not plan.reachable


def test_deadline_less_than_a_minute_left() -> None:
    plan = plan_charging(
        request(now=local(10, 10, 0, 10), ready_by=local(10, 10, 0, 50))
    )

    assert plan.segments == ()
    assert plan.reason == REASON_NOT_ENOUGH_TIME


def test_send_at_clamped_to_now() -> None:
    now = local(10, 10, 0, 5)
    plan = plan_charging(request(now=now, ready_by=local(10, 15)))

    assert plan.start == local(10, 11, 19)
    assert plan.send_at == now


@pytest.mark.parametrize(
    ("overrides", "mode", "cost"),
    [
        ({}, MODE_DEADLINE, None),
        ({"off_peak": NIGHT}, MODE_OFF_PEAK, None),
        ({"prices": price_series(local(10, 0), [0.2] * 48)}, MODE_PRICES, 0.0),
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


def test_price_mode_picks_cheapest_block() -> None:
    prices = price_series(
        local(10, 0), hourly_from(10, {26: 0.1, 27: 0.1, 28: 0.1}, 0.3)
    )
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR, now=local(10, 12), ready_by=local(11, 7), prices=prices
        )
    )

    assert plan.mode == MODE_PRICES
    assert plan.start == local(11, 2)
    assert plan.end == local(11, 5)
    assert plan.expected_cost == pytest.approx(3.0)
    assert plan.reachable
    assert plan.reason is None
    assert plan.missing_slots == 0


def test_price_mode_latest_start_on_ties() -> None:
    prices = price_series(local(10, 0), [0.2] * 48)
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR, now=local(10, 12), ready_by=local(11, 7), prices=prices
        )
    )

    assert plan.start == local(11, 4)
    assert plan.end == local(11, 7)
    assert plan.expected_cost == pytest.approx(6.0)


def test_price_mode_latest_of_two_equal_cheap_blocks() -> None:
    cheap = {14: 0.1, 15: 0.1, 16: 0.1, 26: 0.1, 27: 0.1, 28: 0.1}
    prices = price_series(local(10, 0), hourly_from(10, cheap, 0.3))
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR, now=local(10, 12), ready_by=local(11, 7), prices=prices
        )
    )

    assert plan.start == local(11, 2)


def test_price_mode_block_straddles_quarter_hours() -> None:
    # 15-minute prices: cheap from 01:15 to 04:45 except one dear quarter.
    quarters = [0.3] * (48 * 4)
    for index in range(24 * 4 + 5, 24 * 4 + 19):
        quarters[index] = 0.1
    quarters[24 * 4 + 10] = 0.2
    prices = price_series(local(10, 0), quarters, minutes=15)
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR, now=local(10, 12), ready_by=local(11, 7), prices=prices
        )
    )
    best = brute_force_best_start(
        request(
            **THREE_HOUR_CAR, now=local(10, 12), ready_by=local(11, 7), prices=prices
        )
    )

    assert best is not None
    assert plan.start == best[0] == local(11, 1, 45)
    assert plan.expected_cost == best[1]


def test_price_mode_with_window_restricts_to_occurrences() -> None:
    # Cheapest hours are in the afternoon, outside the window.
    cheap = {14: 0.01, 15: 0.01, 16: 0.01, 23: 0.1, 24: 0.1, 25: 0.1}
    prices = price_series(local(10, 0), hourly_from(10, cheap, 0.3))
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR,
            now=local(10, 12),
            ready_by=local(11, 7),
            prices=prices,
            off_peak=NIGHT,
        )
    )

    assert plan.mode == MODE_PRICES
    assert plan.start == local(10, 23)
    assert plan.end == local(11, 2)


def test_price_mode_with_window_can_use_earlier_occurrence() -> None:
    cheap = {1: 0.05, 2: 0.05, 3: 0.05}
    prices = price_series(local(10, 0), hourly_from(10, cheap, 0.3))
    window = OffPeakWindow(time(0), time(4), TZ)
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR,
            now=local(10, 0, 30),
            ready_by=local(11, 7),
            prices=prices,
            off_peak=window,
        )
    )

    assert plan.start == local(10, 1)
    assert plan.expected_cost == pytest.approx(1.5)


def test_sixty_and_fifteen_minute_series_agree() -> None:
    hourly = hourly_from(10, {20: 0.12, 21: 0.11, 22: 0.1, 23: 0.13}, 0.3)
    quarters = [price for price in hourly for _ in range(4)]
    common = {"now": local(10, 12), "ready_by": local(11, 7), **THREE_HOUR_CAR}
    plan_hourly = plan_charging(
        request(**common, prices=price_series(local(10, 0), hourly))
    )
    plan_quarters = plan_charging(
        request(**common, prices=price_series(local(10, 0), quarters, minutes=15))
    )

    assert plan_hourly.start == plan_quarters.start == local(10, 20)
    assert plan_hourly.expected_cost == pytest.approx(plan_quarters.expected_cost)


def test_unsorted_and_duplicate_slots() -> None:
    base = price_series(local(10, 0), hourly_from(10, {30: 0.1}, 0.3))
    duplicate = PriceSlot(local(11, 6), local(11, 7), 0.9)
    swallowed = PriceSlot(local(11, 8), local(11, 8, 30), 0.01)
    shuffled = [*reversed(base), duplicate, swallowed]
    common = {"now": local(10, 12), "ready_by": local(11, 10), **THREE_HOUR_CAR}
    plan = plan_charging(request(**common, prices=shuffled))

    # The later duplicate of the cheap 06:00 slot loses, the slot inside the
    # 08:00 hour is dropped.
    assert plan_charging(request(**common, prices=base)) == plan
    assert plan.missing_slots == 0


def test_overlapping_slot_keeps_only_its_free_part() -> None:
    entries = [
        {"start": local(10, 10), "end": local(10, 11), "value": 0.1},
        {"start": local(10, 10, 30), "end": local(10, 11, 30), "value": 0.2},
        {"start": local(10, 11), "end": local(10, 12), "value": 0.3},
    ]

    assert parse_price_series(entries, TZ) == [
        PriceSlot(local(10, 10), local(10, 11), 0.1),
        PriceSlot(local(10, 11), local(10, 11, 30), 0.2),
        PriceSlot(local(10, 11, 30), local(10, 12), 0.3),
    ]


def test_price_mode_continuous_false_picks_cheapest_minutes() -> None:
    cheap = {14: 0.05, 25: 0.05, 27: 0.06, 28: 0.06}
    prices = price_series(local(10, 0), hourly_from(10, cheap, 0.3))
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR,
            now=local(10, 12),
            ready_by=local(11, 7),
            prices=prices,
            continuous=False,
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
    cheap = {25: 0.05, 26: 0.05, 27: 0.1}
    prices = price_series(local(10, 0), hourly_from(10, cheap, 0.3))
    plan = plan_charging(
        request(
            **{**THREE_HOUR_CAR, "target_soc": 45.0},
            now=local(10, 12),
            ready_by=local(11, 7),
            prices=prices,
            continuous=False,
        )
    )

    # 2.5 hours: the two cheap hours plus the last half of the next one.
    assert plan.segments == (
        (local(11, 1), local(11, 3)),
        (local(11, 3, 30), local(11, 4)),
    )
    assert plan.expected_cost == pytest.approx(10 * (0.05 * 2 + 0.1 * 0.5))


# --------------------------------------------------------------------------
# Missing prices
# --------------------------------------------------------------------------


def test_missing_prices_fall_back_to_deadline() -> None:
    # Only 18:00-20:00 and 23:00-01:00 are priced: no 3-hour block fits.
    hourly: list[float | None] = [None] * 48
    for hour in (18, 19, 23, 24):
        hourly[hour] = 0.1
    prices = price_series(local(10, 0), hourly)
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR, now=local(10, 17), ready_by=local(11, 7), prices=prices
        )
    )

    assert plan.mode == MODE_DEADLINE
    assert plan.reason == REASON_MISSING_PRICES
    assert plan.reachable
    assert plan.start == local(11, 4)
    assert plan.expected_cost is None
    # Gaps: 17-18, 20-23 and 01-07 (the last slot ends at 01:00).
    assert plan.missing_slots == 1 + 3 + 6


def test_missing_prices_fall_back_to_window() -> None:
    hourly: list[float | None] = [0.2] * 48
    hourly[26] = None
    prices = price_series(local(10, 0), hourly)
    window = OffPeakWindow(time(1), time(5), TZ)
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR,
            now=local(10, 17),
            ready_by=local(11, 7),
            prices=prices,
            off_peak=window,
        )
    )

    assert plan.mode == MODE_OFF_PEAK
    assert plan.reason == REASON_MISSING_PRICES
    assert plan.start == local(11, 2)
    assert plan.end == local(11, 5)
    assert plan.missing_slots == 1


def test_empty_prices_with_window_fall_back() -> None:
    plan = plan_charging(request(off_peak=NIGHT, prices=[]))

    assert plan.mode == MODE_OFF_PEAK
    assert plan.reason == REASON_MISSING_PRICES
    assert plan.start == local(11, 2, 19)
    assert plan.expected_cost is None
    assert plan.missing_slots == 12


def test_fallback_keeps_time_reason_and_prices_the_plan() -> None:
    prices = price_series(local(10, 0), [0.2] * 48)
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR, now=local(10, 12), ready_by=local(10, 14), prices=prices
        )
    )

    assert plan.mode == MODE_DEADLINE
    assert plan.reason == REASON_NOT_ENOUGH_TIME
    assert not plan.reachable
    assert plan.start == local(10, 12)
    assert plan.end == local(10, 14)
    assert plan.expected_cost == pytest.approx(4.0)
    assert plan.expected_soc == pytest.approx(40.0)


def test_fallback_unreachable_and_unpriced_has_no_cost() -> None:
    prices = price_series(local(10, 0), [0.2] * 12)
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR, now=local(10, 11), ready_by=local(10, 13), prices=prices
        )
    )

    assert plan.reason == REASON_NOT_ENOUGH_TIME
    assert plan.expected_cost is None
    assert plan.missing_slots == 1


def test_continuous_false_without_enough_priced_time_falls_back() -> None:
    hourly: list[float | None] = [None] * 48
    hourly[20] = 0.1
    hourly[22] = 0.1
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR,
            now=local(10, 12),
            ready_by=local(11, 7),
            prices=price_series(local(10, 0), hourly),
            continuous=False,
        )
    )

    assert plan.reason == REASON_MISSING_PRICES
    assert plan.mode == MODE_DEADLINE


def test_missing_slot_count_uses_shortest_slot() -> None:
    quarters: list[float | None] = [0.2] * (48 * 4)
    quarters[50] = None
    quarters[51] = None
    quarters[60] = None
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR,
            now=local(10, 12),
            ready_by=local(10, 23),
            prices=price_series(local(10, 0), quarters, minutes=15),
        )
    )

    assert plan.missing_slots == 3


# --------------------------------------------------------------------------
# Price parsing
# --------------------------------------------------------------------------


def test_parse_raw_today_and_tomorrow() -> None:
    attributes = {
        "raw_today": [
            {
                "start": "2025-01-10T23:00:00+01:00",
                "end": "2025-01-11T00:00:00+01:00",
                "value": 0.25,
            },
        ],
        "raw_tomorrow": [
            {"start": local(11, 0), "end": local(11, 1), "value": 0.2},
            {"start": local(11, 1), "end": local(11, 2), "value": None},
        ],
        "today": [0.25],
    }
    slots = parse_price_series(attributes, TZ)

    assert slots == [
        PriceSlot(local(10, 23), local(11, 0), 0.25),
        PriceSlot(local(11, 0), local(11, 1), 0.2),
    ]
    assert all(slot.start.tzinfo is TZ for slot in slots)


def test_parse_raw_tomorrow_not_yet_published() -> None:
    attributes = {
        "raw_today": [{"start": local(10, 0), "end": local(10, 1), "value": 1}],
        "raw_tomorrow": None,
    }

    assert parse_price_series(attributes, TZ) == [
        PriceSlot(local(10, 0), local(10, 1), 1.0)
    ]


def test_parse_prices_today_fifteen_minutes() -> None:
    attributes = {
        "prices_today": [
            {"time": "2025-01-10T10:00:00+01:00", "price": 0.1},
            {"time": "2025-01-10T10:15:00+01:00", "price": 0.2},
            {"time": "2025-01-10T10:30:00+01:00", "price": None},
            {"time": "2025-01-10T10:45:00+01:00", "price": 0.4},
        ],
        "prices_tomorrow": [],
    }
    slots = parse_price_series(attributes, TZ)

    assert [(slot.start, slot.end, slot.price) for slot in slots] == [
        (local(10, 10), local(10, 10, 15), 0.1),
        (local(10, 10, 15), local(10, 10, 30), 0.2),
        (local(10, 10, 45), local(10, 11), 0.4),
    ]


def test_parse_hourly_series_with_gap_keeps_hour_slots() -> None:
    entries = [
        {"time": local(10, 10), "price": 0.1},
        {"time": local(10, 12), "price": 0.2},
        {"time": local(10, 13), "price": 0.3},
    ]
    slots = parse_price_series({"prices": entries}, TZ)

    assert [(slot.start, slot.end) for slot in slots] == [
        (local(10, 10), local(10, 11)),
        (local(10, 12), local(10, 13)),
        (local(10, 13), local(10, 14)),
    ]


def test_parse_today_and_tomorrow_infer_separately() -> None:
    attributes = {
        "prices_today": [{"time": local(10, 23), "price": 0.1}],
        "prices_tomorrow": [
            {"time": local(11, 0), "price": 0.2},
            {"time": local(11, 0, 15), "price": 0.3},
        ],
    }
    slots = parse_price_series(attributes, TZ, default_slot=timedelta(minutes=60))

    assert [(slot.start, slot.end) for slot in slots] == [
        (local(10, 23), local(11, 0)),
        (local(11, 0), local(11, 0, 15)),
        (local(11, 0, 15), local(11, 0, 30)),
    ]


def test_parse_plain_lists_and_pairs_with_naive_times() -> None:
    naive = datetime(2025, 1, 10, 10)  # noqa: DTZ001
    pairs = [(naive, 0.1), ["2025-01-10T11:00:00", "0.2"]]
    slots = parse_price_series(pairs, TZ)

    assert slots == [
        PriceSlot(local(10, 10), local(10, 11), 0.1),
        PriceSlot(local(10, 11), local(10, 12), 0.2),
    ]

    raw = [{"start": "2025-01-10T10:00:00", "end": "2025-01-10T10:15:00", "value": 3}]
    assert parse_price_series(raw, TZ) == [
        PriceSlot(local(10, 10), local(10, 10, 15), 3.0)
    ]


def test_parse_single_entry_uses_default_slot() -> None:
    entries = [{"time": local(10, 10), "price": 0.1}]

    assert parse_price_series(entries, TZ)[0].end == local(10, 11)
    assert parse_price_series(entries, TZ, timedelta(minutes=15))[0].end == local(
        10, 10, 15
    )


@pytest.mark.parametrize("price", [None, "unavailable", True, float("nan"), [1], {}])
def test_parse_skips_missing_and_non_numeric_prices(price: object) -> None:
    entries = [
        {"time": local(10, 10), "price": price},
        {"time": local(10, 11), "price": 0.2},
    ]

    assert parse_price_series(entries, TZ) == [
        PriceSlot(local(10, 11), local(10, 12), 0.2)
    ]


def test_parse_accepts_numeric_strings() -> None:
    entries = [{"start": local(10, 10), "value": "0.25"}]

    assert parse_price_series(entries, TZ)[0].price == 0.25


def test_parse_deduplicates_repeated_attributes() -> None:
    raw = [{"start": local(10, 10), "end": local(10, 11), "value": 0.1}]
    listed = [
        {"time": local(10, 10), "price": 0.9},
        {"time": local(10, 11), "price": 0.2},
    ]
    slots = parse_price_series({"prices_today": listed, "raw_today": raw}, TZ)

    assert slots == [
        PriceSlot(local(10, 10), local(10, 11), 0.1),
        PriceSlot(local(10, 11), local(10, 12), 0.2),
    ]


@pytest.mark.parametrize(
    "data",
    [
        42,
        "0.1,0.2",
        {"today": [0.1, 0.2]},
        {"raw_today": "soon"},
        [0.1, 0.2],
        [(local(10, 10), 0.1, 0.2)],
        [{"value": 0.1}],
        [{"start": local(10, 10)}],
        [{"start": "tomorrow", "value": 0.1}],
        [{"start": 1736499600, "value": 0.1}],
    ],
)
def test_parse_rejects_unknown_shapes(data: object) -> None:
    with pytest.raises(PlanInputError) as err:
        parse_price_series(data, TZ)

    assert err.value.key == ERROR_UNRECOGNISED_PRICES


def test_parsed_prices_plan() -> None:
    attributes = {
        "raw_today": [
            {"start": local(10, hour), "end": local(10, hour + 1), "value": 0.3}
            for hour in range(23)
        ],
        "raw_tomorrow": [
            {
                "start": local(11, hour),
                "end": local(11, hour + 1),
                "value": 0.1 if hour < 3 else 0.3,
            }
            for hour in range(23)
        ],
    }
    plan = plan_charging(
        request(
            **THREE_HOUR_CAR,
            now=local(10, 12),
            ready_by=local(11, 7),
            prices=parse_price_series(attributes, TZ),
        )
    )

    assert plan.start == local(11, 0)
    # 23:00-00:00 on the 10th is missing.
    assert plan.missing_slots == 1


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


def test_price_slot_validation() -> None:
    with pytest.raises(PlanInputError) as err:
        PriceSlot(local(10, 10), local(10, 10), 0.1)
    assert err.value.key == ERROR_INVALID_PRICE_SLOT

    with pytest.raises(PlanInputError) as err:
        PriceSlot(local(10, 10), local(10, 11), float("inf"))
    assert err.value.key == ERROR_INVALID_PRICE_SLOT

    with pytest.raises(PlanInputError) as err:
        PriceSlot(datetime(2025, 1, 10, 10), local(10, 11), 0.1)  # noqa: DTZ001
    assert err.value.key == ERROR_NAIVE_DATETIME


def test_off_peak_window_validation() -> None:
    with pytest.raises(PlanInputError) as err:
        OffPeakWindow(time(22), time(22), TZ)

    assert err.value.key == ERROR_INVALID_OFF_PEAK_WINDOW
    assert str(err.value) == "window start equals window end"


def test_error_message_defaults_to_key() -> None:
    assert str(PlanInputError("no_prices")) == "no_prices"


# --------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plan_request",
    [
        request(off_peak=NIGHT),
        request(current_soc=90),
        request(off_peak=NIGHT, now=local(11, 7), ready_by=local(11, 9)),
        request(
            **THREE_HOUR_CAR,
            now=local(10, 12),
            ready_by=local(11, 7),
            prices=price_series(local(10, 0), hourly_from(10, {14: 0.1, 25: 0.1}, 0.3)),
            continuous=False,
        ),
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


def random_prices(rng: random.Random, start: datetime) -> list[PriceSlot]:
    """Return 2 days of 15-minute prices, sometimes with ties or gaps."""
    count = 2 * 24 * 4
    if rng.random() < 0.4:
        levels = [0.1, 0.2, 0.25, 0.3]
        values: list[float | None] = [rng.choice(levels) for _ in range(count)]
    else:
        values = [round(rng.uniform(-0.05, 0.6), 4) for _ in range(count)]
    if rng.random() < 0.3:
        for _ in range(rng.randint(1, 8)):
            values[rng.randrange(count)] = None
    return price_series(start, values, minutes=15)


def random_request(rng: random.Random) -> PlanRequest:
    """Return a random price-mode request over two days."""
    day = rng.choice(
        [datetime(2025, 1, 10, tzinfo=TZ), datetime(2025, 3, 29, tzinfo=TZ)]
    )
    prices = random_prices(rng, day)
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


def test_random_plans_match_brute_force() -> None:
    rng = seeded(20250110)
    matched = 0
    for _ in range(200):
        plan_request = random_request(rng)
        plan = plan_charging(plan_request)
        best = brute_force_best_start(plan_request)
        if best is None:
            assert plan.mode != MODE_PRICES
            continue
        matched += 1
        assert plan.mode == MODE_PRICES
        assert plan.start == best[0]
        assert plan.expected_cost == best[1]
    assert matched > 100


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
    prices = price_series(local(10, 0), [0.2] * 2)
    assert brute_force_best_start(request(prices=prices)) is None


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
