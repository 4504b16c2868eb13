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
a running integral of the prices (``PriceTable``).  ``bench/reference_planner.py``
tries every start minute instead; tests and the benchmark compare the two.

The request and the plan (``PlanRequest``, ``ChargingPlan``, modes, reasons,
errors) are in ``charging_plan.py``; price slots, reading them from price
entities and ``PlanInputError`` in ``prices.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from itertools import compress
from typing import Final

from .charging_plan import (
    CLEANUP_DELAY,
    COST_TIE_TOLERANCE,
    MODE_DEADLINE,
    MODE_OFF_PEAK,
    MODE_PRICES,
    PERCENT,
    REASON_ALREADY_AT_TARGET,
    REASON_MISSING_PRICES,
    REASON_NOT_ENOUGH_TIME,
    REASON_WINDOW_TOO_SHORT,
    SECONDS_PER_HOUR,
    ChargingPlan,
    OffPeakWindow,
    PlanRequest,
    charging_duration,
    required_grid_energy_kwh,
    to_instant,
)
from .price_table import (
    PRICE_TABLES,
    PriceTable,
    Span,
    ceil_minute,
    floor_minute,
    merge_adjacent,
)
from .prices import (
    PlanInputError,
    PriceSlot,
    from_epoch,
    to_epoch,
)

__all__ = [
    "ChargingPlan",
    "OffPeakWindow",
    "PlanInputError",
    "PlanRequest",
    "PriceSlot",
    "plan_charging",
]


_ONE_DAY: Final = timedelta(days=1)


# --------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Schedule:
    """Charging intervals chosen by one of the modes (epoch seconds)."""

    segments: tuple[Span, ...]
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
    prices: PriceTable | None


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
        prices = PRICE_TABLES.get(request.prices)
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
    earliest = ceil_minute(now if window_start is None else max(now, window_start))
    latest_end = floor_minute(end_limit)
    if latest_end - duration >= earliest:
        return _Schedule(((latest_end - duration, latest_end),), mode, True, None)
    reason = REASON_NOT_ENOUGH_TIME
    if window_start is not None and latest_end - ceil_minute(window_start) < duration:
        reason = REASON_WINDOW_TOO_SHORT
    segments = ((earliest, latest_end),) if latest_end > earliest else ()
    return _Schedule(segments, mode, False, reason)


def _plan_with_prices(context: _Context, prices: PriceTable) -> _Schedule:
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
    context: _Context, prices: PriceTable, usable: Sequence[Span]
) -> Span | None:
    """Return the cheapest fully priced block, the latest one on ties.

    Only the starts that can be cheapest are costed (see
    ``PriceTable.block_areas``): O(n log n) for n slot boundaries.
    """
    duration = context.duration
    starts: list[int] = []
    areas: list[float] = []
    for first, last in usable:
        lowest = ceil_minute(first)
        highest = floor_minute(last - duration)
        if highest >= lowest:
            span_starts, span_areas = prices.block_areas(lowest, highest, duration)
            starts += span_starts
            areas += span_areas
    power_kw = context.request.power_kw
    costs = [area * power_kw / SECONDS_PER_HOUR for area in areas]
    best = _latest_cheapest(starts, costs)
    return None if best is None else (best, best + duration)


def _latest_cheapest(starts: Sequence[int], costs: Sequence[float]) -> int | None:
    """Return the latest start whose cost ties with the minimum."""
    if not costs:
        return None
    limit = min(costs) + COST_TIE_TOLERANCE
    return max(compress(starts, [cost <= limit for cost in costs]))


def _cheapest_minutes(
    prices: PriceTable, usable: Sequence[Span], duration: int
) -> list[Span] | None:
    """Return the cheapest whole minutes (later ones on ties), merged.

    Returns None when the usable time is shorter than the duration.
    """
    pieces: list[tuple[float, int, int]] = []
    for first, last in usable:
        lowest, highest = ceil_minute(first), floor_minute(last)
        for index in prices.overlapping(lowest, highest):
            start = ceil_minute(max(prices.starts[index], lowest))
            end = floor_minute(min(prices.ends[index], highest))
            if end > start:
                pieces.append((prices.prices[index], start, end))
    pieces.sort(key=lambda piece: (piece[0], -piece[1]))
    chosen: list[Span] = []
    remaining = duration
    for _, start, end in pieces:
        if remaining == 0:
            break
        taken = min(end - start, remaining)
        chosen.append((end - taken, end))
        remaining -= taken
    if remaining > 0:
        return None
    return merge_adjacent(chosen)


def _intersect(first: Iterable[Span], second: Sequence[Span]) -> list[Span]:
    """Return the non-empty pairwise intersections, sorted."""
    result: list[Span] = []
    for first_start, first_end in first:
        for second_start, second_end in second:
            start = max(first_start, second_start)
            end = min(first_end, second_end)
            if end > start:
                result.append((start, end))
    return sorted(result)


def _allowed_spans(context: _Context) -> list[Span]:
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
) -> list[Span]:
    """Return the window occurrences starting on ``first_day``..``last_day``."""
    occurrences: list[Span] = []
    day = first_day
    while day <= last_day:
        end_day = day if window.end > window.start else day + _ONE_DAY
        start = datetime.combine(day, window.start, tzinfo=window.tz)
        end = datetime.combine(end_day, window.end, tzinfo=window.tz)
        occurrences.append((to_epoch(start), to_epoch(end)))
        day += _ONE_DAY
    return occurrences


def _last_occurrence(window: OffPeakWindow, context: _Context) -> Span:
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


def _timeline(request: PlanRequest, segments: Sequence[Span]) -> _Timeline:
    """Return start, end, send_at and cleanup_at in the time zone of ``now``.

    The arithmetic is done in UTC, so lead time and cleanup delay are real
    durations even across a daylight-saving change.
    """
    if not segments:
        return None, None, None, None
    tz = request.now.tzinfo
    start = from_epoch(segments[0][0])
    end = from_epoch(segments[-1][1])
    send_at = max(to_instant(request.now), start - request.lead_time)
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
