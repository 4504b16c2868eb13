"""Charging planner for special charging sessions.

A special charging session asks the planner to charge the car from its current
state of charge (SoC) to a target SoC by a ready-by time, as cheaply as
possible.  Everything here is a pure function of its inputs: no Home Assistant
imports, no clock reads, no I/O.

Modes:

* ``deadline``: neither prices nor an off-peak window.  Charge in the latest
  continuous block that ends at ``ready_by``.
* ``off_peak``: an off-peak window but no prices.  Take the window occurrence
  that contains or precedes ``ready_by`` and charge as late as possible inside
  it, so the battery sits full for the least time.
* ``prices``: price slots are known.  Pick the cheapest continuous block (or,
  with ``continuous=False``, the cheapest minutes) between ``now`` and
  ``ready_by``.  Only time covered by a known price is used.  When an off-peak
  window is given as well, the search is further restricted to the window
  occurrences between ``now`` and ``ready_by`` (all of them, not just the
  last one).  When no fully priced block fits, the planner falls back to the
  off-peak or deadline plan and reports ``missing_prices``.

Times are handled internally as whole seconds since the Unix epoch (UTC), so
daylight-saving changes never distort durations.  Charging starts and ends are
aligned to whole minutes because the car's schedules are set in minutes after
midnight.  Results are returned in the time zone of ``PlanRequest.now``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import pairwise
import math
from typing import Any, Final, TypeGuard

__all__ = [
    "CLEANUP_DELAY",
    "COST_TIE_TOLERANCE",
    "DEFAULT_EFFICIENCY",
    "DEFAULT_LEAD_TIME",
    "DEFAULT_SLOT_LENGTH",
    "ERROR_INVALID_CAPACITY",
    "ERROR_INVALID_EFFICIENCY",
    "ERROR_INVALID_LEAD_TIME",
    "ERROR_INVALID_OFF_PEAK_WINDOW",
    "ERROR_INVALID_POWER",
    "ERROR_INVALID_PRICE_SLOT",
    "ERROR_INVALID_SOC",
    "ERROR_INVALID_STORED_PLAN",
    "ERROR_NAIVE_DATETIME",
    "ERROR_NO_PRICES",
    "ERROR_READY_BY_NOT_AFTER_NOW",
    "ERROR_UNRECOGNISED_PRICES",
    "MODE_DEADLINE",
    "MODE_OFF_PEAK",
    "MODE_PRICES",
    "REASON_ALREADY_AT_TARGET",
    "REASON_MISSING_PRICES",
    "REASON_NOT_ENOUGH_TIME",
    "REASON_WINDOW_TOO_SHORT",
    "ChargingPlan",
    "OffPeakWindow",
    "PlanInputError",
    "PlanRequest",
    "PriceSlot",
    "brute_force_best_start",
    "charging_duration",
    "parse_price_series",
    "plan_charging",
    "required_grid_energy_kwh",
]

CLEANUP_DELAY: Final = timedelta(minutes=30)
"""How long after the planned end of charging the session is cleaned up."""

DEFAULT_EFFICIENCY: Final = 0.9
"""Default grid-to-battery efficiency."""

DEFAULT_LEAD_TIME: Final = timedelta(hours=2)
"""Default time between sending the schedule to the car and charging start."""

DEFAULT_SLOT_LENGTH: Final = timedelta(minutes=60)
"""Slot length used when it cannot be inferred from the price series."""

COST_TIE_TOLERANCE: Final = 1e-9
"""Costs closer than this are equal; the later start then wins."""

DURATION_TOLERANCE_MINUTES: Final = 1e-9
"""Float noise ignored when rounding the charging time up to whole minutes."""

MODE_DEADLINE: Final = "deadline"
MODE_OFF_PEAK: Final = "off_peak"
MODE_PRICES: Final = "prices"

REASON_ALREADY_AT_TARGET: Final = "already_at_target"
REASON_WINDOW_TOO_SHORT: Final = "window_too_short"
REASON_NOT_ENOUGH_TIME: Final = "not_enough_time"
REASON_MISSING_PRICES: Final = "missing_prices"

ERROR_INVALID_SOC: Final = "invalid_soc"
ERROR_INVALID_CAPACITY: Final = "invalid_capacity"
ERROR_INVALID_POWER: Final = "invalid_power"
ERROR_INVALID_EFFICIENCY: Final = "invalid_efficiency"
ERROR_INVALID_LEAD_TIME: Final = "invalid_lead_time"
ERROR_NAIVE_DATETIME: Final = "naive_datetime"
ERROR_READY_BY_NOT_AFTER_NOW: Final = "ready_by_not_after_now"
ERROR_INVALID_PRICE_SLOT: Final = "invalid_price_slot"
ERROR_INVALID_OFF_PEAK_WINDOW: Final = "invalid_off_peak_window"
ERROR_NO_PRICES: Final = "no_prices"
ERROR_UNRECOGNISED_PRICES: Final = "unrecognised_prices"
ERROR_INVALID_STORED_PLAN: Final = "invalid_stored_plan"

PERCENT: Final = 100.0
SECONDS_PER_MINUTE: Final = 60
SECONDS_PER_HOUR: Final = 3600
MINUTES_PER_HOUR: Final = 60

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND: Final = timedelta(seconds=1)
_ONE_DAY: Final = timedelta(days=1)

# Attribute keys of price entities, in the order they are read.
_ATTRIBUTE_KEYS: Final = (
    "raw_today",
    "prices_today",
    "raw_tomorrow",
    "prices_tomorrow",
    "prices",
)
_TIME_KEYS: Final = ("start", "time")
_PRICE_KEYS: Final = ("value", "price")
_END_KEY: Final = "end"
_PAIR_LENGTH: Final = 2

type _Span = tuple[int, int]
"""A half-open interval ``[start, end)`` in epoch seconds."""


class PlanInputError(ValueError):
    """Invalid planner input; ``key`` is a stable key for translations."""

    def __init__(self, key: str, message: str | None = None) -> None:
        """Store the translation key next to a human-readable message."""
        super().__init__(message or key)
        self.key = key


# --------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """A price interval ``[start, end)`` with a price in currency per kWh."""

    start: datetime
    end: datetime
    price: float

    def __post_init__(self) -> None:
        """Reject naive times, empty intervals and non-finite prices."""
        _require_aware(self.start)
        _require_aware(self.end)
        if _to_epoch(self.end) <= _to_epoch(self.start):
            raise PlanInputError(
                ERROR_INVALID_PRICE_SLOT, "slot does not end after it starts"
            )
        if not math.isfinite(self.price):
            raise PlanInputError(ERROR_INVALID_PRICE_SLOT, "slot price is not finite")


@dataclass(frozen=True, slots=True)
class OffPeakWindow:
    """A daily off-peak window in local time; it may cross midnight."""

    start: time
    end: time
    tz: tzinfo

    def __post_init__(self) -> None:
        """Reject an empty window."""
        if self.start == self.end:
            raise PlanInputError(
                ERROR_INVALID_OFF_PEAK_WINDOW, "window start equals window end"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanRequest:
    """Everything the planner needs; validated on construction."""

    now: datetime
    current_soc: float
    target_soc: float
    capacity_kwh: float
    power_kw: float
    ready_by: datetime
    efficiency: float = DEFAULT_EFFICIENCY
    lead_time: timedelta = DEFAULT_LEAD_TIME
    off_peak: OffPeakWindow | None = None
    prices: Sequence[PriceSlot] | None = None
    continuous: bool = True

    def __post_init__(self) -> None:
        """Raise PlanInputError when the request cannot be planned."""
        _validate_request(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChargingPlan:
    """The planner's answer: when to charge and what it will bring."""

    start: datetime | None
    end: datetime | None
    segments: tuple[tuple[datetime, datetime], ...]
    duration: timedelta
    energy_kwh: float
    expected_cost: float | None
    expected_soc: float
    send_at: datetime | None
    cleanup_at: datetime | None
    reachable: bool
    reason: str | None
    mode: str
    missing_slots: int

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly mapping (ISO 8601 times) of the plan."""
        return {
            "start": _iso_or_none(self.start),
            "end": _iso_or_none(self.end),
            "segments": [
                {"start": start.isoformat(), "end": end.isoformat()}
                for start, end in self.segments
            ],
            "duration_seconds": self.duration.total_seconds(),
            "energy_kwh": self.energy_kwh,
            "expected_cost": self.expected_cost,
            "expected_soc": self.expected_soc,
            "send_at": _iso_or_none(self.send_at),
            "cleanup_at": _iso_or_none(self.cleanup_at),
            "reachable": self.reachable,
            "reason": self.reason,
            "mode": self.mode,
            "missing_slots": self.missing_slots,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChargingPlan:
        """Rebuild a plan from ``as_dict`` output (e.g. after a restart)."""
        try:
            plan = cls(
                start=_datetime_or_none(data["start"]),
                end=_datetime_or_none(data["end"]),
                segments=tuple(
                    (
                        datetime.fromisoformat(segment["start"]),
                        datetime.fromisoformat(segment["end"]),
                    )
                    for segment in data["segments"]
                ),
                duration=timedelta(seconds=float(data["duration_seconds"])),
                energy_kwh=float(data["energy_kwh"]),
                expected_cost=_float_or_none(data["expected_cost"]),
                expected_soc=float(data["expected_soc"]),
                send_at=_datetime_or_none(data["send_at"]),
                cleanup_at=_datetime_or_none(data["cleanup_at"]),
                reachable=bool(data["reachable"]),
                reason=_str_or_none(data["reason"]),
                mode=str(data["mode"]),
                missing_slots=int(data["missing_slots"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise PlanInputError(ERROR_INVALID_STORED_PLAN, str(err)) from err
        return plan


# --------------------------------------------------------------------------
# Energy and duration
# --------------------------------------------------------------------------


def required_grid_energy_kwh(
    current_soc: float, target_soc: float, capacity_kwh: float, efficiency: float
) -> float:
    """Return the energy drawn from the grid to go from current to target SoC."""
    if target_soc <= current_soc:
        return 0.0
    battery_energy = (target_soc - current_soc) / PERCENT * capacity_kwh
    return battery_energy / efficiency


def charging_duration(grid_energy_kwh: float, power_kw: float) -> timedelta:
    """Return the charging time, rounded up to whole minutes."""
    minutes = grid_energy_kwh / power_kw * MINUTES_PER_HOUR
    return timedelta(minutes=math.ceil(minutes - DURATION_TOLERANCE_MINUTES))


# --------------------------------------------------------------------------
# Price parsing
# --------------------------------------------------------------------------


def parse_price_series(
    data: object, tz: tzinfo, default_slot: timedelta | None = None
) -> list[PriceSlot]:
    """Turn a price entity's attributes (or one of its lists) into price slots.

    Accepted shapes: a mapping with any of ``raw_today``, ``prices_today``,
    ``raw_tomorrow``, ``prices_tomorrow`` and ``prices``; or a list of
    ``{"start", "end", "value"}`` dicts, ``{"time", "price"}`` dicts (``start``
    and ``time`` as well as ``value`` and ``price`` are interchangeable) or
    ``(start, price)`` pairs.  Entries without an end last until the next
    entry of the same list (the smallest spacing in that list); a list with a
    single entry uses ``default_slot`` (one hour if not given).  Entries with a
    missing or non-numeric price are skipped.  Naive times are taken as local
    times in ``tz``; the result is in ``tz``, sorted and without overlaps.
    """
    fallback_length = default_slot or DEFAULT_SLOT_LENGTH
    slots: list[PriceSlot] = []
    for entries in _price_lists(data):
        slots.extend(_slots_from_entries(entries, tz, fallback_length))
    return [
        PriceSlot(_from_epoch(slot.start, tz), _from_epoch(slot.end, tz), slot.price)
        for slot in _normalise_slots(slots)
    ]


def _price_lists(data: object) -> list[Sequence[object]]:
    """Return the price lists contained in ``data``."""
    if isinstance(data, Mapping):
        present = [key for key in _ATTRIBUTE_KEYS if key in data]
        if not present:
            raise PlanInputError(ERROR_UNRECOGNISED_PRICES, "no known price attribute")
        values = [data[key] for key in present]
        return [_as_entry_list(value) for value in values if value is not None]
    return [_as_entry_list(data)]


def _as_entry_list(value: object) -> Sequence[object]:
    """Return ``value`` as a list of entries, or raise if it is not one."""
    if _is_list_like(value):
        return value
    raise PlanInputError(ERROR_UNRECOGNISED_PRICES, "price data is not a list")


@dataclass(frozen=True, slots=True)
class _Entry:
    """One parsed price entry; times in epoch seconds."""

    start: int
    end: int | None
    price: float | None


def _slots_from_entries(
    entries: Sequence[object], tz: tzinfo, fallback_length: timedelta
) -> list[PriceSlot]:
    """Parse one list of entries into price slots (UTC)."""
    parsed = [_parse_entry(entry, tz) for entry in entries]
    length = _infer_slot_length([entry.start for entry in parsed], fallback_length)
    slots: list[PriceSlot] = []
    for entry in parsed:
        if entry.price is None:
            continue
        end = entry.start + length if entry.end is None else entry.end
        slots.append(PriceSlot(_from_epoch(entry.start), _from_epoch(end), entry.price))
    return slots


def _parse_entry(entry: object, tz: tzinfo) -> _Entry:
    """Parse a dict entry or a ``(start, price)`` pair."""
    if isinstance(entry, Mapping):
        start = _parse_time(_first_present(entry, _TIME_KEYS), tz)
        raw_end = entry.get(_END_KEY)
        end = None if raw_end is None else _parse_time(raw_end, tz)
        return _Entry(start, end, _parse_price(_first_present(entry, _PRICE_KEYS)))
    if _is_pair(entry):
        return _Entry(_parse_time(entry[0], tz), None, _parse_price(entry[1]))
    raise PlanInputError(ERROR_UNRECOGNISED_PRICES, f"unknown price entry {entry!r}")


def _is_pair(entry: object) -> TypeGuard[Sequence[object]]:
    """Return whether ``entry`` is a ``(start, price)`` pair."""
    return _is_list_like(entry) and len(entry) == _PAIR_LENGTH


def _is_list_like(value: object) -> TypeGuard[Sequence[object]]:
    """Return whether ``value`` is a sequence other than a string."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _first_present(entry: Mapping[Any, Any], keys: Sequence[str]) -> object:
    """Return the value of the first of ``keys`` present in ``entry``."""
    for key in keys:
        if key in entry:
            return entry[key]
    raise PlanInputError(ERROR_UNRECOGNISED_PRICES, f"price entry lacks {keys}")


def _parse_time(value: object, tz: tzinfo) -> int:
    """Parse a datetime or ISO 8601 string; naive values are local to ``tz``."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as err:
            raise PlanInputError(ERROR_UNRECOGNISED_PRICES, str(err)) from err
    if not isinstance(value, datetime):
        raise PlanInputError(ERROR_UNRECOGNISED_PRICES, f"not a time: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return _to_epoch(value)


def _parse_price(value: object) -> float | None:
    """Return the price as a float, or None when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        price = float(value)
    except ValueError:
        return None
    return price if math.isfinite(price) else None


def _infer_slot_length(starts: Iterable[int], fallback: timedelta) -> int:
    """Return the smallest spacing between distinct starts, in seconds."""
    ordered = sorted(set(starts))
    spacings = [later - earlier for earlier, later in pairwise(ordered)]
    if spacings:
        return min(spacings)
    return int(fallback.total_seconds())


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Slot:
    """A normalised price slot; times in epoch seconds."""

    start: int
    end: int
    price: float


@dataclass(frozen=True, slots=True)
class _Schedule:
    """Charging intervals chosen by one of the modes (epoch seconds)."""

    segments: tuple[_Span, ...]
    mode: str
    reachable: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class _Context:
    """A request translated to epoch seconds."""

    request: PlanRequest
    now: int
    ready_by: int
    duration: int
    grid_energy_kwh: float
    prices: _PriceTable | None


class _PriceTable:
    """Normalised price slots with a running price integral for fast costs."""

    def __init__(self, slots: Sequence[_Slot]) -> None:
        """Index the slots by start and accumulate price times seconds."""
        self.slots = slots
        self.starts = [slot.start for slot in slots]
        self.cumulative = [0.0]
        for slot in slots:
            area = slot.price * (slot.end - slot.start)
            self.cumulative.append(self.cumulative[-1] + area)

    def _integral_to(self, moment: int) -> float:
        """Return the price integral from the first slot up to ``moment``.

        Only valid for moments covered by a slot (or at a slot's end).
        """
        index = bisect_right(self.starts, moment) - 1
        slot = self.slots[index]
        return self.cumulative[index] + slot.price * (
            min(moment, slot.end) - slot.start
        )

    def block_cost(self, start: int, duration: int, power_kw: float) -> float:
        """Return the cost of a fully priced block, from the running integral."""
        area = self._integral_to(start + duration) - self._integral_to(start)
        return area * power_kw / SECONDS_PER_HOUR

    def exact_cost(self, segments: Iterable[_Span], power_kw: float) -> float | None:
        """Return the cost of the segments, or None if any part has no price."""
        area = 0.0
        for start, end in segments:
            covered = 0
            index = max(bisect_right(self.starts, start) - 1, 0)
            while index < len(self.slots) and self.slots[index].start < end:
                slot = self.slots[index]
                overlap = min(slot.end, end) - max(slot.start, start)
                if overlap > 0:
                    covered += overlap
                    area += slot.price * overlap
                index += 1
            if covered < end - start:
                return None
        return area * power_kw / SECONDS_PER_HOUR

    def spans(self) -> list[_Span]:
        """Return the maximal intervals covered by contiguous slots."""
        spans: list[_Span] = []
        for slot in self.slots:
            if spans and spans[-1][1] == slot.start:
                spans[-1] = (spans[-1][0], slot.end)
            else:
                spans.append((slot.start, slot.end))
        return spans

    def boundaries(self) -> set[int]:
        """Return every distinct slot start and end."""
        return {moment for slot in self.slots for moment in (slot.start, slot.end)}

    def smallest_slot(self) -> int:
        """Return the shortest slot length in seconds (one hour if empty)."""
        lengths = [slot.end - slot.start for slot in self.slots]
        return min(lengths, default=int(DEFAULT_SLOT_LENGTH.total_seconds()))


def plan_charging(request: PlanRequest) -> ChargingPlan:
    """Plan a special charging session; see the module docstring for modes."""
    context = _build_context(request)
    if context.duration == 0:
        mode = _requested_mode(request)
        schedule = _Schedule((), mode, True, REASON_ALREADY_AT_TARGET)
        cost = None if context.prices is None else 0.0
        return _build_plan(context, schedule, cost)
    if context.prices is None:
        return _build_plan(context, _plan_without_prices(context), None)
    schedule = _plan_with_prices(context, context.prices)
    return _build_plan(
        context,
        schedule,
        context.prices.exact_cost(schedule.segments, request.power_kw),
    )


def brute_force_best_start(request: PlanRequest) -> tuple[datetime, float] | None:
    """Return the cheapest continuous start by trying every whole minute.

    A slow reference for tests and benchmarks of the continuous price mode:
    every minute-aligned block inside ``[now, ready_by]`` (and inside one
    off-peak window occurrence, if a window is given) that is fully priced is
    costed; ties go to the latest start.  Returns ``(start, cost)``, or None
    when no fully priced block fits or the request has no prices.
    """
    context = _build_context(request)
    if context.prices is None:
        return None
    costs: list[tuple[int, float]] = []
    for first, last in _allowed_spans(context):
        latest = _floor_minute(last - context.duration)
        for start in range(_ceil_minute(first), latest + 1, SECONDS_PER_MINUTE):
            block = (start, start + context.duration)
            cost = context.prices.exact_cost((block,), request.power_kw)
            if cost is not None:
                costs.append((start, cost))
    best = _latest_cheapest(costs)
    if best is None:
        return None
    return _from_epoch(best, request.now.tzinfo), dict(costs)[best]


def _build_context(request: PlanRequest) -> _Context:
    """Translate the request to epoch seconds and whole-minute durations."""
    energy = required_grid_energy_kwh(
        request.current_soc,
        request.target_soc,
        request.capacity_kwh,
        request.efficiency,
    )
    duration = charging_duration(energy, request.power_kw)
    prices = None
    if request.prices is not None:
        prices = _PriceTable(_normalise_slots(request.prices))
    return _Context(
        request=request,
        now=_to_epoch(request.now, round_up=True),
        ready_by=_to_epoch(request.ready_by),
        duration=int(duration.total_seconds()),
        grid_energy_kwh=energy,
        prices=prices,
    )


def _requested_mode(request: PlanRequest) -> str:
    """Return the mode the request asks for."""
    if request.prices is not None:
        return MODE_PRICES
    if request.off_peak is not None:
        return MODE_OFF_PEAK
    return MODE_DEADLINE


def _plan_without_prices(context: _Context) -> _Schedule:
    """Plan the latest block in the off-peak window, or before the deadline."""
    window = context.request.off_peak
    if window is None:
        return _latest_block(
            context.now, None, context.ready_by, context.duration, MODE_DEADLINE
        )
    window_start, window_end = _last_occurrence(window, context)
    return _latest_block(
        context.now,
        window_start,
        min(context.ready_by, window_end),
        context.duration,
        MODE_OFF_PEAK,
    )


def _latest_block(
    now: int, window_start: int | None, end_limit: int, duration: int, mode: str
) -> _Schedule:
    """Return the latest block ending by ``end_limit``, or as much as fits.

    ``window_start`` is the start of the off-peak window occurrence (None in
    deadline mode); charging never starts before it or before ``now``.
    """
    earliest = _ceil_minute(now if window_start is None else max(now, window_start))
    latest_end = _floor_minute(end_limit)
    if latest_end - duration >= earliest:
        return _Schedule(((latest_end - duration, latest_end),), mode, True, None)
    reason = REASON_NOT_ENOUGH_TIME
    if window_start is not None and latest_end - _ceil_minute(window_start) < duration:
        reason = REASON_WINDOW_TOO_SHORT
    segments = ((earliest, latest_end),) if latest_end > earliest else ()
    return _Schedule(segments, mode, False, reason)


def _plan_with_prices(context: _Context, prices: _PriceTable) -> _Schedule:
    """Plan on prices; fall back to the plan without prices if none fits."""
    usable = _intersect(prices.spans(), _allowed_spans(context))
    if context.request.continuous:
        block = _best_continuous_block(context, prices, usable)
        chosen = None if block is None else [block]
    else:
        chosen = _cheapest_minutes(prices, usable, context.duration)
    if chosen is not None:
        return _Schedule(tuple(chosen), MODE_PRICES, True, None)
    fallback = _plan_without_prices(context)
    if fallback.reachable:
        return replace(fallback, reason=REASON_MISSING_PRICES)
    return fallback


def _best_continuous_block(
    context: _Context, prices: _PriceTable, usable: Sequence[_Span]
) -> _Span | None:
    """Return the cheapest fully priced block, the latest one on ties.

    The cost of a block is piecewise linear in its start, with breakpoints
    where the block's start or end meets a slot boundary.  The minimum over
    whole-minute starts (and the latest of several equal minima) therefore
    lies on a minute next to a breakpoint or at the edge of the feasible
    range, so only those starts are costed.
    """
    duration = context.duration
    candidates = _candidate_starts(prices.boundaries(), duration)
    costs: list[tuple[int, float]] = []
    for first, last in usable:
        lowest = _ceil_minute(first)
        highest = _floor_minute(last - duration)
        if highest < lowest:
            continue
        starts = {lowest, highest}
        starts.update(start for start in candidates if lowest <= start <= highest)
        costs.extend(
            (start, prices.block_cost(start, duration, context.request.power_kw))
            for start in starts
        )
    best = _latest_cheapest(costs)
    return None if best is None else (best, best + duration)


def _candidate_starts(boundaries: Iterable[int], duration: int) -> set[int]:
    """Return the whole minutes next to every breakpoint of the cost function."""
    candidates: set[int] = set()
    for boundary in boundaries:
        for breakpoint_ in (boundary, boundary - duration):
            candidates.add(_floor_minute(breakpoint_))
            candidates.add(_ceil_minute(breakpoint_))
    return candidates


def _latest_cheapest(costs: Sequence[tuple[int, float]]) -> int | None:
    """Return the latest start whose cost ties with the minimum."""
    if not costs:
        return None
    cheapest = min(cost for _, cost in costs)
    limit = cheapest + COST_TIE_TOLERANCE
    return max(start for start, cost in costs if cost <= limit)


def _cheapest_minutes(
    prices: _PriceTable, usable: Sequence[_Span], duration: int
) -> list[_Span] | None:
    """Return the cheapest whole minutes (later ones on ties), merged.

    Returns None when the usable time is shorter than the duration.
    """
    pieces: list[tuple[float, int, int]] = []
    for first, last in usable:
        lowest, highest = _ceil_minute(first), _floor_minute(last)
        for slot in prices.slots:
            start = _ceil_minute(max(slot.start, lowest))
            end = _floor_minute(min(slot.end, highest))
            if end > start:
                pieces.append((slot.price, start, end))
    pieces.sort(key=lambda piece: (piece[0], -piece[1]))
    chosen: list[_Span] = []
    remaining = duration
    for _, start, end in pieces:
        if remaining == 0:
            break
        taken = min(end - start, remaining)
        chosen.append((end - taken, end))
        remaining -= taken
    if remaining > 0:
        return None
    return _merge_adjacent(chosen)


def _merge_adjacent(spans: Iterable[_Span]) -> list[_Span]:
    """Sort spans and merge those that touch."""
    merged: list[_Span] = []
    for start, end in sorted(spans):
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _intersect(first: Iterable[_Span], second: Sequence[_Span]) -> list[_Span]:
    """Return the non-empty pairwise intersections, sorted."""
    result: list[_Span] = []
    for first_start, first_end in first:
        for second_start, second_end in second:
            start = max(first_start, second_start)
            end = min(first_end, second_end)
            if end > start:
                result.append((start, end))
    return sorted(result)


def _allowed_spans(context: _Context) -> list[_Span]:
    """Return the time charging may use: the horizon, cut to the window."""
    horizon = [(context.now, context.ready_by)]
    window = context.request.off_peak
    if window is None:
        return horizon
    first_day = context.request.now.astimezone(window.tz).date() - _ONE_DAY
    last_day = context.request.ready_by.astimezone(window.tz).date()
    return _intersect(_window_occurrences(window, first_day, last_day), horizon)


def _window_occurrences(
    window: OffPeakWindow, first_day: date, last_day: date
) -> list[_Span]:
    """Return the window occurrences starting on ``first_day``..``last_day``."""
    occurrences: list[_Span] = []
    day = first_day
    while day <= last_day:
        end_day = day if window.end > window.start else day + _ONE_DAY
        start = datetime.combine(day, window.start, tzinfo=window.tz)
        end = datetime.combine(end_day, window.end, tzinfo=window.tz)
        occurrences.append((_to_epoch(start), _to_epoch(end)))
        day += _ONE_DAY
    return occurrences


def _last_occurrence(window: OffPeakWindow, context: _Context) -> _Span:
    """Return the window occurrence that contains or precedes ``ready_by``."""
    ready_day = context.request.ready_by.astimezone(window.tz).date()
    occurrences = _window_occurrences(window, ready_day - _ONE_DAY, ready_day)
    started = [span for span in occurrences if span[0] < context.ready_by]
    return started[-1]


def _count_missing_slots(prices: _PriceTable, start: int, end: int) -> int:
    """Count the slots missing between ``start`` and ``end``.

    Every gap (including time after the last known slot) counts as its length
    divided by the shortest slot length, rounded up.
    """
    slot_length = prices.smallest_slot()
    missing = 0
    cursor = start
    for slot in prices.slots:
        if slot.end <= cursor:
            continue
        if slot.start >= end:
            break
        if slot.start > cursor:
            missing += _ceil_div(slot.start - cursor, slot_length)
        cursor = slot.end
    if cursor < end:
        missing += _ceil_div(end - cursor, slot_length)
    return missing


def _build_plan(
    context: _Context, schedule: _Schedule, expected_cost: float | None
) -> ChargingPlan:
    """Turn a schedule into the public plan, in the time zone of ``now``."""
    request = context.request
    tz = request.now.tzinfo
    charged_seconds = sum(end - start for start, end in schedule.segments)
    energy, soc = _expected_energy_and_soc(context, schedule, charged_seconds)
    start, end, send_at, cleanup_at = _timeline(request, schedule.segments)
    missing = 0
    if context.prices is not None:
        missing = _count_missing_slots(context.prices, context.now, context.ready_by)
    return ChargingPlan(
        start=start,
        end=end,
        segments=tuple(
            (_from_epoch(segment_start, tz), _from_epoch(segment_end, tz))
            for segment_start, segment_end in schedule.segments
        ),
        duration=timedelta(seconds=charged_seconds),
        energy_kwh=energy,
        expected_cost=expected_cost,
        expected_soc=soc,
        send_at=send_at,
        cleanup_at=cleanup_at,
        reachable=schedule.reachable,
        reason=schedule.reason,
        mode=schedule.mode,
        missing_slots=missing,
    )


def _expected_energy_and_soc(
    context: _Context, schedule: _Schedule, charged_seconds: int
) -> tuple[float, float]:
    """Return the grid energy drawn and the SoC reached by the end."""
    request = context.request
    if schedule.reachable:
        return context.grid_energy_kwh, max(request.current_soc, request.target_soc)
    energy = request.power_kw * charged_seconds / SECONDS_PER_HOUR
    battery_energy = energy * request.efficiency
    soc = request.current_soc + battery_energy / request.capacity_kwh * PERCENT
    return energy, soc


type _Timeline = tuple[
    datetime | None, datetime | None, datetime | None, datetime | None
]


def _timeline(request: PlanRequest, segments: Sequence[_Span]) -> _Timeline:
    """Return start, end, send_at and cleanup_at in the time zone of ``now``.

    The arithmetic is done in UTC, so lead time and cleanup delay are real
    durations even across a daylight-saving change.
    """
    if not segments:
        return None, None, None, None
    tz = request.now.tzinfo
    start = _from_epoch(segments[0][0])
    end = _from_epoch(segments[-1][1])
    send_at = max(_to_instant(request.now), start - request.lead_time)
    cleanup_at = end + CLEANUP_DELAY
    return (
        start.astimezone(tz),
        end.astimezone(tz),
        send_at.astimezone(tz),
        cleanup_at.astimezone(tz),
    )


# --------------------------------------------------------------------------
# Validation and small helpers
# --------------------------------------------------------------------------


def _validate_request(request: PlanRequest) -> None:
    """Raise PlanInputError for the first invalid field of the request."""
    for soc in (request.current_soc, request.target_soc):
        if not 0 <= soc <= PERCENT:
            raise PlanInputError(ERROR_INVALID_SOC, f"SoC {soc} is outside 0..100")
    _require_positive(request.capacity_kwh, ERROR_INVALID_CAPACITY)
    _require_positive(request.power_kw, ERROR_INVALID_POWER)
    if not 0 < request.efficiency <= 1:
        raise PlanInputError(ERROR_INVALID_EFFICIENCY, "efficiency must be in (0, 1]")
    if request.lead_time < timedelta(0):
        raise PlanInputError(ERROR_INVALID_LEAD_TIME, "lead time is negative")
    _require_aware(request.now)
    _require_aware(request.ready_by)
    if _to_instant(request.ready_by) <= _to_instant(request.now):
        raise PlanInputError(ERROR_READY_BY_NOT_AFTER_NOW, "ready_by is not after now")
    if request.prices is not None and not request.prices and request.off_peak is None:
        raise PlanInputError(ERROR_NO_PRICES, "no prices and no off-peak window")


def _require_positive(value: float, key: str) -> None:
    """Raise PlanInputError(key) unless ``value`` is finite and positive."""
    if not (math.isfinite(value) and value > 0):
        raise PlanInputError(key, f"{value} is not a positive number")


def _require_aware(value: datetime) -> None:
    """Raise PlanInputError unless ``value`` carries a time zone."""
    if value.utcoffset() is None:
        raise PlanInputError(ERROR_NAIVE_DATETIME, f"{value} has no time zone")


def _normalise_slots(slots: Iterable[PriceSlot]) -> list[_Slot]:
    """Sort slots by start and drop overlaps deterministically.

    On equal starts the slot given first wins; a slot overlapping the one
    before it is cut to start where that one ends (and dropped if empty).
    """
    converted = sorted(
        ((_to_epoch(slot.start), _to_epoch(slot.end), slot.price) for slot in slots),
        key=lambda item: item[0],
    )
    normalised: list[_Slot] = []
    for start, end, price in converted:
        free_from = start if not normalised else max(start, normalised[-1].end)
        if end > free_from:
            normalised.append(_Slot(free_from, end, price))
    return normalised


def _to_instant(value: datetime) -> datetime:
    """Return ``value`` in UTC, so comparisons ignore wall-clock quirks."""
    return value.astimezone(UTC)


def _to_epoch(value: datetime, *, round_up: bool = False) -> int:
    """Return whole seconds since the epoch (rounded down unless asked)."""
    elapsed = value - _EPOCH
    if round_up:
        return -(-elapsed // _ONE_SECOND)
    return elapsed // _ONE_SECOND


def _from_epoch(seconds: int, tz: tzinfo | None = UTC) -> datetime:
    """Return the aware datetime for epoch seconds, in ``tz``."""
    return (_EPOCH + timedelta(seconds=seconds)).astimezone(tz)


def _floor_minute(seconds: int) -> int:
    """Round epoch seconds down to a whole minute."""
    return seconds // SECONDS_PER_MINUTE * SECONDS_PER_MINUTE


def _ceil_minute(seconds: int) -> int:
    """Round epoch seconds up to a whole minute."""
    return -(-seconds // SECONDS_PER_MINUTE) * SECONDS_PER_MINUTE


def _ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding up."""
    return -(-numerator // denominator)


def _iso_or_none(value: datetime | None) -> str | None:
    """Return the ISO string of ``value``, or None."""
    return None if value is None else value.isoformat()


def _datetime_or_none(value: Any) -> datetime | None:
    """Parse an ISO string, passing None through."""
    return None if value is None else datetime.fromisoformat(value)


def _float_or_none(value: Any) -> float | None:
    """Convert to float, passing None through."""
    return None if value is None else float(value)


def _str_or_none(value: Any) -> str | None:
    """Convert to str, passing None through."""
    return None if value is None else str(value)
