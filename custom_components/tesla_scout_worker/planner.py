"""Charging planner for special charging sessions.

A special charging session asks the planner to charge the car from its current
state of charge (SoC) to a target SoC by a ready-by time, as cheaply as
possible.  Everything here is a pure function of its inputs: no Home Assistant
imports, no clock reads, no I/O.  (The price table of a series is kept for the
next plans on the same series; that only saves time.)

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

In price mode a continuous block is found without trying every start: the
cost of a block changes slope only where its start or end crosses a slot
boundary, so only the starts next to those breakpoints are costed, each from
a running integral of the prices (``_PriceTable``).  ``bench/reference_planner.py``
tries every start minute instead; tests and the benchmark compare the two.

Price slots, reading them from price entities and ``PlanInputError`` live in
``prices.py``; ``PriceSlot`` and ``PlanInputError`` are re-exported here as the
planner's input type and error.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import accumulate, compress
import math
from operator import sub
from typing import Any, Final

from .const import DEFAULT_LEAD_TIME
from .prices import (
    DEFAULT_SLOT_LENGTH,
    ERROR_NAIVE_DATETIME,
    PlanInputError,
    PriceSlot,
    SlotSeconds,
    from_epoch,
    normalise_slots,
    require_aware,
    to_epoch,
)

__all__ = [
    "CLEANUP_DELAY",
    "COST_TIE_TOLERANCE",
    "DEFAULT_EFFICIENCY",
    "ERROR_INVALID_CAPACITY",
    "ERROR_INVALID_EFFICIENCY",
    "ERROR_INVALID_LEAD_TIME",
    "ERROR_INVALID_OFF_PEAK_WINDOW",
    "ERROR_INVALID_POWER",
    "ERROR_INVALID_SOC",
    "ERROR_INVALID_STORED_PLAN",
    "ERROR_NAIVE_DATETIME",
    "ERROR_NO_PRICES",
    "ERROR_READY_BY_NOT_AFTER_NOW",
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
    "charging_duration",
    "plan_charging",
    "required_grid_energy_kwh",
]

CLEANUP_DELAY: Final = timedelta(minutes=30)
"""How long after the planned end of charging the session is cleaned up."""

DEFAULT_EFFICIENCY: Final = 0.9
"""Default grid-to-battery efficiency."""

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
ERROR_READY_BY_NOT_AFTER_NOW: Final = "ready_by_not_after_now"
ERROR_INVALID_OFF_PEAK_WINDOW: Final = "invalid_off_peak_window"
ERROR_NO_PRICES: Final = "no_prices"
ERROR_INVALID_STORED_PLAN: Final = "invalid_stored_plan"

PERCENT: Final = 100.0
SECONDS_PER_MINUTE: Final = 60
SECONDS_PER_HOUR: Final = 3600
MINUTES_PER_HOUR: Final = 60

_ONE_DAY: Final = timedelta(days=1)

type _Span = tuple[int, int]
"""A half-open interval ``[start, end)`` in epoch seconds."""


# --------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------


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
    lead_time: timedelta = timedelta(minutes=DEFAULT_LEAD_TIME)
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
# Price table
# --------------------------------------------------------------------------


class _PriceTable:
    """Normalised price slots in epoch seconds, with a running price integral.

    ``cumulative[k]`` is the integral of the price over time (price x seconds)
    from the start of the first slot to the start of slot ``k``, so the cost
    of a fully priced block is two lookups, not a walk over its slots.
    """

    __slots__ = (
        "boundaries",
        "boundary_integrals",
        "cumulative",
        "ends",
        "prices",
        "smallest_slot",
        "spans",
        "starts",
        "whole_minutes",
    )

    def __init__(self, slots: Sequence[SlotSeconds]) -> None:
        """Index sorted, non-overlapping slots (see ``normalise_slots``)."""
        self.starts = [start for start, _, _ in slots]
        self.ends = [end for _, end, _ in slots]
        self.prices = [price for _, _, price in slots]
        self.cumulative = list(
            accumulate(
                (price * (end - start) for start, end, price in slots), initial=0.0
            )
        )
        # Every distinct slot start and end, ascending.
        self.boundaries = sorted({*self.starts, *self.ends})
        # The maximal intervals covered by contiguous slots.
        self.spans = _merge_adjacent(zip(self.starts, self.ends, strict=True))
        # The running integral at each boundary.
        self.boundary_integrals = self.integrals(self.boundaries)
        # Whether every boundary is on a whole minute (as with real tariffs).
        self.whole_minutes = all(
            moment % SECONDS_PER_MINUTE == 0 for moment in self.boundaries
        )
        # The shortest slot length in seconds (one hour if there is none).
        self.smallest_slot = min(
            (end - start for start, end, _ in slots),
            default=int(DEFAULT_SLOT_LENGTH.total_seconds()),
        )

    def integrals(self, moments: Iterable[int]) -> list[float]:
        """Return the price integral from the first slot up to each moment.

        Only valid for moments covered by a slot (or at a slot's end): the
        last slot starting at or before such a moment also contains it.
        """
        starts, prices, cumulative = self.starts, self.prices, self.cumulative
        values = []
        for moment in moments:
            index = bisect_right(starts, moment) - 1
            values.append(cumulative[index] + prices[index] * (moment - starts[index]))
        return values

    def block_areas(
        self, lowest: int, highest: int, duration: int
    ) -> tuple[list[int], list[float]]:
        """Return the block starts worth costing and their price integrals.

        The blocks last ``duration`` seconds, start on a whole minute in
        ``[lowest, highest]`` and must be fully priced.  A block's price
        integral is piecewise linear in its start, with breakpoints where the
        block starts or ends on a slot boundary, so the cheapest start (and
        the latest of several equal ones) is an edge of the range or a whole
        minute next to a breakpoint.  Only those are returned, each block's
        integral from two lookups of the running integral.
        """
        if not self.whole_minutes:
            starts = self._minutes_near_breakpoints(lowest, highest, duration)
            return starts, self._areas(starts, duration)
        # Every breakpoint is a whole minute: blocks that start on a boundary
        # and blocks that end on one, whose integral there is already known.
        starting = self._boundaries_between(lowest, highest)
        ending = self._boundaries_between(lowest + duration, highest + duration)
        begins = self.boundaries[starting]
        shifted = [end - duration for end in self.boundaries[ending]]
        starts = [lowest, highest, *begins, *shifted]
        areas = [
            *self._areas((lowest, highest), duration),
            *_differences(
                self.integrals(start + duration for start in begins),
                self.boundary_integrals[starting],
            ),
            *_differences(self.boundary_integrals[ending], self.integrals(shifted)),
        ]
        return starts, areas

    def _areas(self, starts: Sequence[int], duration: int) -> list[float]:
        """Return the price integral of each block (fully priced)."""
        return _differences(
            self.integrals(start + duration for start in starts),
            self.integrals(starts),
        )

    def _boundaries_between(self, first: int, last: int) -> slice:
        """Return the slice of ``boundaries`` inside ``[first, last]``."""
        return slice(
            bisect_left(self.boundaries, first), bisect_right(self.boundaries, last)
        )

    def _minutes_near_breakpoints(
        self, lowest: int, highest: int, duration: int
    ) -> list[int]:
        """Return the edges and the whole minutes next to each breakpoint.

        The general case of ``block_areas``, for boundaries off whole minutes:
        the minutes either side of each breakpoint in ``[lowest, highest]``,
        ascending.
        """
        breakpoints = [lowest, highest]
        for shift in (0, duration):
            near = self._boundaries_between(
                lowest + shift - SECONDS_PER_MINUTE,
                highest + shift + SECONDS_PER_MINUTE,
            )
            breakpoints += [moment - shift for moment in self.boundaries[near]]
        minutes = {_floor_minute(moment) for moment in breakpoints}
        minutes.update(_ceil_minute(moment) for moment in breakpoints)
        return sorted(minute for minute in minutes if lowest <= minute <= highest)

    def exact_cost(self, segments: Iterable[_Span], power_kw: float) -> float | None:
        """Return the cost of the segments, or None if any part has no price.

        Sums price times overlap slot by slot, so the result does not depend
        on the rounding of the running integral.
        """
        area = 0.0
        for start, end in segments:
            covered = 0
            index = max(bisect_right(self.starts, start) - 1, 0)
            while index < len(self.starts) and self.starts[index] < end:
                overlap = min(self.ends[index], end) - max(self.starts[index], start)
                if overlap > 0:
                    covered += overlap
                    area += self.prices[index] * overlap
                index += 1
            if covered < end - start:
                return None
        return area * power_kw / SECONDS_PER_HOUR

    def overlapping(self, start: int, end: int) -> range:
        """Return the indices of the slots that overlap ``[start, end)``."""
        return range(bisect_right(self.ends, start), bisect_left(self.starts, end))

    def missing_slots(self, start: int, end: int) -> int:
        """Count the slots missing between ``start`` and ``end``.

        Every gap (including time after the last known slot) counts as its
        length divided by the shortest slot length, rounded up.
        """
        missing = 0
        cursor = start
        for span_start, span_end in self.spans:
            if span_end <= cursor:
                continue
            if span_start >= end:
                break
            if span_start > cursor:
                missing += _ceil_div(span_start - cursor, self.smallest_slot)
            cursor = span_end
        if cursor < end:
            missing += _ceil_div(end - cursor, self.smallest_slot)
        return missing


class _RecentTables:
    """The price tables of the last few price series planned on.

    A session (and the benchmark) plans many times on one price series, and
    turning its slots into a table costs more than a plan.  A series is
    recognised by its slots: the same slot objects compare at C speed, equal
    ones field by field, so a changed or mutated list never gets a stale table.
    """

    def __init__(self, size: int) -> None:
        """Keep up to ``size`` tables."""
        self._entries: deque[tuple[tuple[PriceSlot, ...], _PriceTable]] = deque(
            maxlen=size
        )

    def get(self, prices: Sequence[PriceSlot]) -> _PriceTable:
        """Return the table of ``prices``, built unless a recent one matches."""
        series = tuple(prices)
        for known, table in tuple(self._entries):
            if known == series:
                return table
        table = _PriceTable(normalise_slots(series))
        self._entries.append((series, table))
        return table


_TABLES: Final = _RecentTables(size=4)


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------


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
        prices = _TABLES.get(request.prices)
    return _Context(
        request=request,
        now=to_epoch(request.now, round_up=True),
        ready_by=to_epoch(request.ready_by),
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
    usable = _intersect(prices.spans, _allowed_spans(context))
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

    Only the starts that can be cheapest are costed (see
    ``_PriceTable.block_areas``): O(n log n) for n slot boundaries.
    """
    duration = context.duration
    starts: list[int] = []
    areas: list[float] = []
    for first, last in usable:
        lowest = _ceil_minute(first)
        highest = _floor_minute(last - duration)
        if highest >= lowest:
            span_starts, span_areas = prices.block_areas(lowest, highest, duration)
            starts += span_starts
            areas += span_areas
    power_kw = context.request.power_kw
    costs = [area * power_kw / SECONDS_PER_HOUR for area in areas]
    best = _latest_cheapest(starts, costs)
    return None if best is None else (best, best + duration)


def _differences(later: Iterable[float], earlier: Iterable[float]) -> list[float]:
    """Return ``later - earlier`` element by element."""
    return list(map(sub, later, earlier, strict=True))


def _latest_cheapest(starts: Sequence[int], costs: Sequence[float]) -> int | None:
    """Return the latest start whose cost ties with the minimum."""
    if not costs:
        return None
    limit = min(costs) + COST_TIE_TOLERANCE
    return max(compress(starts, [cost <= limit for cost in costs]))


def _cheapest_minutes(
    prices: _PriceTable, usable: Sequence[_Span], duration: int
) -> list[_Span] | None:
    """Return the cheapest whole minutes (later ones on ties), merged.

    Returns None when the usable time is shorter than the duration.
    """
    pieces: list[tuple[float, int, int]] = []
    for first, last in usable:
        lowest, highest = _ceil_minute(first), _floor_minute(last)
        for index in prices.overlapping(lowest, highest):
            start = _ceil_minute(max(prices.starts[index], lowest))
            end = _floor_minute(min(prices.ends[index], highest))
            if end > start:
                pieces.append((prices.prices[index], start, end))
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
        occurrences.append((to_epoch(start), to_epoch(end)))
        day += _ONE_DAY
    return occurrences


def _last_occurrence(window: OffPeakWindow, context: _Context) -> _Span:
    """Return the window occurrence that contains or precedes ``ready_by``."""
    ready_day = context.request.ready_by.astimezone(window.tz).date()
    occurrences = _window_occurrences(window, ready_day - _ONE_DAY, ready_day)
    started = [span for span in occurrences if span[0] < context.ready_by]
    return started[-1]


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
        missing = context.prices.missing_slots(context.now, context.ready_by)
    return ChargingPlan(
        start=start,
        end=end,
        segments=tuple(
            (from_epoch(segment_start, tz), from_epoch(segment_end, tz))
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
    start = from_epoch(segments[0][0])
    end = from_epoch(segments[-1][1])
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
    require_aware(request.now)
    require_aware(request.ready_by)
    if _to_instant(request.ready_by) <= _to_instant(request.now):
        raise PlanInputError(ERROR_READY_BY_NOT_AFTER_NOW, "ready_by is not after now")
    if request.prices is not None and not request.prices and request.off_peak is None:
        raise PlanInputError(ERROR_NO_PRICES, "no prices and no off-peak window")


def _require_positive(value: float, key: str) -> None:
    """Raise PlanInputError(key) unless ``value`` is finite and positive."""
    if not (math.isfinite(value) and value > 0):
        raise PlanInputError(key, f"{value} is not a positive number")


def _to_instant(value: datetime) -> datetime:
    """Return ``value`` in UTC, so comparisons ignore wall-clock quirks."""
    return value.astimezone(UTC)


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
