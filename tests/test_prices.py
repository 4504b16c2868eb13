"""Tests for price slots and price-entity parsing (pure functions, no Home Assistant)."""

from __future__ import annotations

from copy import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import pickle
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.tesla_scout_worker.charging_plan import (
    MODE_PRICES,
    PlanRequest,
)
from custom_components.tesla_scout_worker.planner import plan_charging
from custom_components.tesla_scout_worker.prices import (
    ERROR_INVALID_PRICE_SLOT,
    ERROR_NAIVE_DATETIME,
    ERROR_UNRECOGNISED_PRICES,
    PlanInputError,
    PriceSlot,
    normalise_slots,
    parse_price_series,
    to_epoch,
)

TZ = ZoneInfo("Europe/Amsterdam")


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """Return a January 2025 local time in Amsterdam."""
    return datetime(2025, 1, day, hour, minute, second, tzinfo=TZ)


def spans(slots: list[PriceSlot]) -> list[tuple[datetime, datetime, float]]:
    """Return the slots as ``(start, end, price)``."""
    return [(slot.start, slot.end, slot.price) for slot in slots]


# --------------------------------------------------------------------------
# Price slots
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "price", "key"),
    [
        pytest.param(
            local(10, 10), local(10, 10), 0.1, ERROR_INVALID_PRICE_SLOT, id="empty"
        ),
        pytest.param(
            local(10, 11), local(10, 10), 0.1, ERROR_INVALID_PRICE_SLOT, id="reversed"
        ),
        pytest.param(
            local(10, 10),
            local(10, 11),
            float("inf"),
            ERROR_INVALID_PRICE_SLOT,
            id="inf",
        ),
        pytest.param(
            local(10, 10),
            local(10, 11),
            float("nan"),
            ERROR_INVALID_PRICE_SLOT,
            id="nan",
        ),
        pytest.param(
            datetime(2025, 1, 10, 10),  # noqa: DTZ001
            local(10, 11),
            0.1,
            ERROR_NAIVE_DATETIME,
            id="naive start",
        ),
        pytest.param(
            local(10, 10),
            datetime(2025, 1, 10, 11),  # noqa: DTZ001
            0.1,
            ERROR_NAIVE_DATETIME,
            id="naive end",
        ),
    ],
)
def test_price_slot_validation(
    start: datetime, end: datetime, price: float, key: str
) -> None:
    with pytest.raises(PlanInputError) as err:
        PriceSlot(start, end, price)

    assert err.value.key == key
    assert isinstance(err.value, ValueError)


def test_error_message_defaults_to_key() -> None:
    assert str(PlanInputError("no_prices")) == "no_prices"
    assert str(PlanInputError("no_prices", "no prices at all")) == "no prices at all"


def test_price_slot_keeps_epoch_seconds() -> None:
    slot = PriceSlot(local(10, 10, 0, 30), local(10, 11), 0.1)
    epoch_start = int(datetime(2025, 1, 10, 9, 0, 30, tzinfo=UTC).timestamp())

    assert (slot.start_epoch, slot.end_epoch) == (epoch_start, epoch_start + 3570)
    assert repr(slot).count("epoch") == 0
    # The epoch seconds follow the times; they do not take part in equality.
    moved = replace(slot, start=local(10, 10, 30))
    assert moved.start_epoch == epoch_start + 1770
    assert moved != slot
    assert slot == PriceSlot(local(10, 10, 0, 30).astimezone(UTC), local(10, 11), 0.1)
    assert copy(slot).end_epoch == slot.end_epoch
    assert pickle.loads(pickle.dumps(slot)).start_epoch == epoch_start  # noqa: S301


def test_epoch_rounding() -> None:
    moment = datetime(2025, 1, 10, 9, 0, 0, 500_000, tzinfo=UTC)
    whole = int(moment.replace(microsecond=0).timestamp())

    assert to_epoch(moment) == whole
    assert to_epoch(moment, round_up=True) == whole + 1
    assert to_epoch(moment.replace(microsecond=0), round_up=True) == whole


def test_normalise_slots_sorts_and_cuts_overlaps() -> None:
    first = PriceSlot(local(10, 10), local(10, 11), 0.1)
    same_start = PriceSlot(local(10, 10), local(10, 12), 0.9)
    overlapping = PriceSlot(local(10, 10, 30), local(10, 11, 30), 0.2)
    swallowed = PriceSlot(local(10, 10, 15), local(10, 10, 45), 0.3)
    earlier = PriceSlot(local(10, 8), local(10, 9), 0.4)
    hour = 3600
    nine = to_epoch(local(10, 9))

    assert normalise_slots([first, same_start, overlapping, swallowed, earlier]) == [
        (nine - hour, nine, 0.4),
        (nine + hour, nine + 2 * hour, 0.1),
        (nine + 2 * hour, nine + 3 * hour, 0.9),
    ]
    assert normalise_slots([]) == []


# --------------------------------------------------------------------------
# Parsing price entities
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "options", "expected"),
    [
        pytest.param(
            {
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
            },
            {},
            [(local(10, 23), local(11, 0), 0.25), (local(11, 0), local(11, 1), 0.2)],
            id="raw today and tomorrow (Nord Pool)",
        ),
        pytest.param(
            {
                "raw_today": [{"start": local(10, 0), "end": local(10, 1), "value": 1}],
                "raw_tomorrow": None,
            },
            {},
            [(local(10, 0), local(10, 1), 1.0)],
            id="tomorrow not yet published",
        ),
        pytest.param(
            {
                "prices_today": [
                    {"time": "2025-01-10T10:00:00+01:00", "price": 0.1},
                    {"time": "2025-01-10T10:15:00+01:00", "price": 0.2},
                    {"time": "2025-01-10T10:30:00+01:00", "price": None},
                    {"time": "2025-01-10T10:45:00+01:00", "price": 0.4},
                ],
                "prices_tomorrow": [],
            },
            {},
            [
                (local(10, 10), local(10, 10, 15), 0.1),
                (local(10, 10, 15), local(10, 10, 30), 0.2),
                (local(10, 10, 45), local(10, 11), 0.4),
            ],
            id="quarter hours (EnergyZero style)",
        ),
        pytest.param(
            {
                "prices": [
                    {"time": local(10, 10), "price": 0.1},
                    {"time": local(10, 12), "price": 0.2},
                    {"time": local(10, 13), "price": 0.3},
                ]
            },
            {},
            [
                (local(10, 10), local(10, 11), 0.1),
                (local(10, 12), local(10, 13), 0.2),
                (local(10, 13), local(10, 14), 0.3),
            ],
            id="hourly with a gap keeps hour slots",
        ),
        pytest.param(
            {
                "prices_today": [{"time": local(10, 23), "price": 0.1}],
                "prices_tomorrow": [
                    {"time": local(11, 0), "price": 0.2},
                    {"time": local(11, 0, 15), "price": 0.3},
                ],
            },
            {"default_slot": timedelta(minutes=60)},
            [
                (local(10, 23), local(11, 0), 0.1),
                (local(11, 0), local(11, 0, 15), 0.2),
                (local(11, 0, 15), local(11, 0, 30), 0.3),
            ],
            id="today and tomorrow infer their lengths separately",
        ),
        pytest.param(
            [(datetime(2025, 1, 10, 10), 0.1), ["2025-01-10T11:00:00", "0.2"]],  # noqa: DTZ001
            {},
            [(local(10, 10), local(10, 11), 0.1), (local(10, 11), local(10, 12), 0.2)],
            id="pairs with naive times",
        ),
        pytest.param(
            [
                {
                    "start": "2025-01-10T10:00:00",
                    "end": "2025-01-10T10:15:00",
                    "value": 3,
                }
            ],
            {},
            [(local(10, 10), local(10, 10, 15), 3.0)],
            id="plain list with naive ISO strings",
        ),
        pytest.param(
            [{"time": local(10, 10), "price": 0.1}],
            {},
            [(local(10, 10), local(10, 11), 0.1)],
            id="single entry lasts an hour",
        ),
        pytest.param(
            [{"time": local(10, 10), "price": 0.1}],
            {"default_slot": timedelta(minutes=15)},
            [(local(10, 10), local(10, 10, 15), 0.1)],
            id="single entry lasts the default slot",
        ),
        pytest.param(
            [{"start": local(10, 10), "value": "0.25"}],
            {},
            [(local(10, 10), local(10, 11), 0.25)],
            id="numeric string price",
        ),
        pytest.param(
            {
                "prices_today": [
                    {"time": local(10, 10), "price": 0.9},
                    {"time": local(10, 11), "price": 0.2},
                ],
                "raw_today": [
                    {"start": local(10, 10), "end": local(10, 11), "value": 0.1}
                ],
            },
            {},
            [(local(10, 10), local(10, 11), 0.1), (local(10, 11), local(10, 12), 0.2)],
            id="repeated attributes: raw_today is read first and wins",
        ),
        pytest.param(
            [
                {"start": local(10, 10), "end": local(10, 11), "value": 0.1},
                {"start": local(10, 10, 30), "end": local(10, 11, 30), "value": 0.2},
                {"start": local(10, 11), "end": local(10, 12), "value": 0.3},
            ],
            {},
            [
                (local(10, 10), local(10, 11), 0.1),
                (local(10, 11), local(10, 11, 30), 0.2),
                (local(10, 11, 30), local(10, 12), 0.3),
            ],
            id="overlapping slot keeps only its free part",
        ),
    ],
)
def test_parse_price_series(
    data: object,
    options: dict[str, Any],
    expected: list[tuple[datetime, datetime, float]],
) -> None:
    slots = parse_price_series(data, TZ, **options)

    assert spans(slots) == expected
    assert all(slot.start.tzinfo is TZ and slot.end.tzinfo is TZ for slot in slots)


@pytest.mark.parametrize("price", [None, "unavailable", True, float("nan"), [1], {}])
def test_parse_skips_missing_and_non_numeric_prices(price: object) -> None:
    entries = [
        {"time": local(10, 10), "price": price},
        {"time": local(10, 11), "price": 0.2},
    ]

    assert parse_price_series(entries, TZ) == [
        PriceSlot(local(10, 11), local(10, 12), 0.2)
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
    # 30 kWh at 10 kW and 100 % efficiency: exactly three hours.
    plan = plan_charging(
        PlanRequest(
            now=local(10, 12),
            ready_by=local(11, 7),
            current_soc=20.0,
            target_soc=50.0,
            capacity_kwh=100.0,
            power_kw=10.0,
            efficiency=1.0,
            prices=parse_price_series(attributes, TZ),
        )
    )

    assert plan.mode == MODE_PRICES
    assert plan.start == local(11, 0)
    assert plan.expected_cost == pytest.approx(3.0)
    # 23:00-00:00 on the 10th is missing.
    assert plan.missing_slots == 1
