"""The price table: price slots as a running integral over epoch seconds.

The planner costs a block of charging time with two lookups into the running
integral instead of a walk over its slots. A session (and the benchmark)
plans many times on one price series, so the tables of the last few series
are kept.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from itertools import accumulate
from operator import sub
from typing import Final

from .charging_plan import SECONDS_PER_HOUR, SECONDS_PER_MINUTE
from .prices import DEFAULT_SLOT_LENGTH, PriceSlot, SlotSeconds, normalise_slots

type Span = tuple[int, int]
"""A half-open interval ``[start, end)`` in epoch seconds."""


# --------------------------------------------------------------------------
# Price table
# --------------------------------------------------------------------------


class PriceTable:
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
        "step",
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
        self.spans = merge_adjacent(zip(self.starts, self.ends, strict=True))
        # The running integral at each boundary.
        self.boundary_integrals = self.integrals(self.boundaries)
        # Whether every boundary is on a whole minute (as with real tariffs).
        self.whole_minutes = all(
            moment % SECONDS_PER_MINUTE == 0 for moment in self.boundaries
        )
        # The common length of contiguous slots of equal length (as day-ahead
        # tariffs have), 0 otherwise: integrals then need no search.
        lengths = {end - start for start, end, _ in slots}
        self.step = (
            lengths.pop()
            if len(lengths) == 1 and len(self.spans) == 1 and self.whole_minutes
            else 0
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
        return [
            cumulative[index] + prices[index] * (moment - starts[index])
            for moment in moments
            for index in (bisect_right(starts, moment) - 1,)
        ]

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
        if self.step:
            after = self._uniform_after(starting, duration)
            before = self._uniform_before(ending, duration)
        else:
            after = self.integrals(start + duration for start in begins)
            before = self.integrals(shifted)
        areas = [
            *self._areas((lowest, highest), duration),
            *differences(after, self.boundary_integrals[starting]),
            *differences(self.boundary_integrals[ending], before),
        ]
        return starts, areas

    def _uniform_after(self, boundaries: slice, duration: int) -> list[float]:
        """Integrals ``duration`` after each boundary (equal, contiguous slots).

        Boundary ``j`` is the start of slot ``j``, so the moment lies in slot
        ``j + q`` at ``r`` seconds, with ``q, r = divmod(duration, step)``.
        """
        q, r = divmod(duration, self.step)
        first, last = boundaries.start + q, boundaries.stop + q
        if not r:
            return self.cumulative[first:last]
        cumulative, prices = self.cumulative, self.prices
        return [cumulative[i] + prices[i] * r for i in range(first, last)]

    def _uniform_before(self, boundaries: slice, duration: int) -> list[float]:
        """Integrals ``duration`` before each boundary (equal, contiguous slots)."""
        q, r = divmod(duration, self.step)
        if not r:
            return self.cumulative[boundaries.start - q : boundaries.stop - q]
        cumulative, prices, inside = self.cumulative, self.prices, self.step - r
        return [
            cumulative[i] + prices[i] * inside
            for i in range(boundaries.start - q - 1, boundaries.stop - q - 1)
        ]

    def _areas(self, starts: Sequence[int], duration: int) -> list[float]:
        """Return the price integral of each block (fully priced)."""
        return differences(
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
        minutes = {floor_minute(moment) for moment in breakpoints}
        minutes.update(ceil_minute(moment) for moment in breakpoints)
        return sorted(minute for minute in minutes if lowest <= minute <= highest)

    def exact_cost(self, segments: Iterable[Span], power_kw: float) -> float | None:
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
                missing += ceil_div(span_start - cursor, self.smallest_slot)
            cursor = span_end
        if cursor < end:
            missing += ceil_div(end - cursor, self.smallest_slot)
        return missing


class RecentTables:
    """The price tables of the last few price series planned on.

    A session (and the benchmark) plans many times on one price series, and
    turning its slots into a table costs more than a plan.  A series is
    recognised by its slots: the same slot objects compare at C speed, equal
    ones field by field, so a changed or mutated list never gets a stale table.
    """

    def __init__(self, size: int) -> None:
        """Keep up to ``size`` tables."""
        self._entries: deque[tuple[tuple[PriceSlot, ...], PriceTable]] = deque(
            maxlen=size
        )

    def get(self, prices: Sequence[PriceSlot]) -> PriceTable:
        """Return the table of ``prices``, built unless a recent one matches."""
        series = tuple(prices)
        for known, table in tuple(self._entries):
            if known == series:
                return table
        table = PriceTable(normalise_slots(series))
        self._entries.append((series, table))
        return table


PRICE_TABLES: Final = RecentTables(size=4)


def merge_adjacent(spans: Iterable[Span]) -> list[Span]:
    """Sort spans and merge those that touch."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def floor_minute(seconds: int) -> int:
    """Round epoch seconds down to a whole minute."""
    return seconds // SECONDS_PER_MINUTE * SECONDS_PER_MINUTE


def ceil_minute(seconds: int) -> int:
    """Round epoch seconds up to a whole minute."""
    return -(-seconds // SECONDS_PER_MINUTE) * SECONDS_PER_MINUTE


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding up."""
    return -(-numerator // denominator)


def differences(later: Iterable[float], earlier: Iterable[float]) -> list[float]:
    """Return ``later - earlier`` element by element."""
    return list(map(sub, later, earlier, strict=True))
