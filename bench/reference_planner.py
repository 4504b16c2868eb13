"""A slow reference for the planner's continuous price mode: try every minute.

``plan_charging`` costs only the starts next to a slot boundary;
``brute_force_best_start`` costs every whole-minute start and keeps the
cheapest.  The planner benchmark (``bench_planner.py``) and the planner tests
check the planner against it.  It shares the inputs with the planner (the
request, the slot normalisation of ``prices.py`` and the energy and duration
formulas), not the search.  It is not part of the integration.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta

from custom_components.tesla_scout_worker.charging_plan import (
    COST_TIE_TOLERANCE,
    PlanRequest,
    charging_duration,
    required_grid_energy_kwh,
)
from custom_components.tesla_scout_worker.prices import (
    SlotSeconds,
    from_epoch,
    normalise_slots,
    to_epoch,
)

MINUTE = 60
HOUR = 3600
ONE_DAY = timedelta(days=1)


def brute_force_best_start(request: PlanRequest) -> tuple[datetime, float] | None:
    """Return the cheapest continuous start by trying every whole minute.

    Every minute-aligned block inside ``[now, ready_by]`` (and inside one
    off-peak window occurrence, if a window is given) that is fully priced is
    costed; ties (costs within ``COST_TIE_TOLERANCE`` of the cheapest) go to
    the latest start.  Returns ``(start, cost)`` with the start in the time
    zone of ``now``, or None when no fully priced block fits or the request
    has no prices.
    """
    if request.prices is None:
        return None
    slots = normalise_slots(request.prices)
    starts = [start for start, _, _ in slots]
    energy = required_grid_energy_kwh(
        request.current_soc,
        request.target_soc,
        request.capacity_kwh,
        request.efficiency,
    )
    duration = int(charging_duration(energy, request.power_kw).total_seconds())
    costs: dict[int, float] = {}
    for first, last in allowed_spans(request):
        first_minute = -(-first // MINUTE) * MINUTE
        for start in range(first_minute, last - duration + 1, MINUTE):
            first_slot = max(bisect_right(starts, start) - 1, 0)
            area = block_area(slots[first_slot:], start, start + duration)
            if area is not None:
                costs[start] = area * request.power_kw / HOUR
    if not costs:
        return None
    limit = min(costs.values()) + COST_TIE_TOLERANCE
    best = max(start for start, cost in costs.items() if cost <= limit)
    return from_epoch(best, request.now.tzinfo), costs[best]


def allowed_spans(request: PlanRequest) -> list[tuple[int, int]]:
    """Return ``[now, ready_by]`` (epoch seconds), cut to each window occurrence."""
    now = to_epoch(request.now, round_up=True)
    ready_by = to_epoch(request.ready_by)
    window = request.off_peak
    if window is None:
        return [(now, ready_by)]
    spans = []
    day = request.now.astimezone(window.tz).date() - ONE_DAY
    while day <= request.ready_by.astimezone(window.tz).date():
        end_day = day if window.end > window.start else day + ONE_DAY
        start = datetime.combine(day, window.start, tzinfo=window.tz)
        end = datetime.combine(end_day, window.end, tzinfo=window.tz)
        first, last = max(now, to_epoch(start)), min(ready_by, to_epoch(end))
        if last > first:
            spans.append((first, last))
        day += ONE_DAY
    return spans


def block_area(slots: Iterable[SlotSeconds], start: int, end: int) -> float | None:
    """Return price x seconds over ``[start, end)``, None if not all of it is priced.

    Adds price times overlap slot by slot, in time order; ``slots`` may begin
    with the slot that contains ``start``.
    """
    area = 0.0
    covered = 0
    for slot_start, slot_end, price in slots:
        if slot_start >= end:
            break
        overlap = min(slot_end, end) - max(slot_start, start)
        if overlap > 0:
            covered += overlap
            area += price * overlap
    if covered < end - start:
        return None
    return area
