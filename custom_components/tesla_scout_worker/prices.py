"""Price slots, and reading them from a price entity's attributes.

The charging planner (``planner.py``) works on ``PriceSlot`` values.  This
module defines them, turns the attribute formats of common price integrations
into them (``parse_price_series``) and puts a series in order for the planner
(``normalise_slots``).  Like the planner it is pure: no Home Assistant imports,
no clock reads, no I/O.

Times are compared as whole seconds since the Unix epoch (UTC), so
daylight-saving changes never distort durations; ``to_epoch`` and
``from_epoch`` convert, and the planner uses them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import pairwise
import math
from operator import attrgetter
from typing import Any, Final, TypeGuard

__all__ = [
    "DEFAULT_SLOT_LENGTH",
    "ERROR_INVALID_PRICE_SLOT",
    "ERROR_NAIVE_DATETIME",
    "ERROR_UNRECOGNISED_PRICES",
    "PlanInputError",
    "PriceSlot",
    "SlotSeconds",
    "from_epoch",
    "normalise_slots",
    "parse_price_series",
    "require_aware",
    "to_epoch",
]

DEFAULT_SLOT_LENGTH: Final = timedelta(minutes=60)
"""Slot length used when it cannot be inferred from the price series."""

ERROR_NAIVE_DATETIME: Final = "naive_datetime"
ERROR_INVALID_PRICE_SLOT: Final = "invalid_price_slot"
ERROR_UNRECOGNISED_PRICES: Final = "unrecognised_prices"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND: Final = timedelta(seconds=1)

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


class PlanInputError(ValueError):
    """Invalid planner input: a request, price data or a stored plan.

    ``key`` is a stable key for translations.
    """

    def __init__(self, key: str, message: str | None = None) -> None:
        """Store the translation key next to a human-readable message."""
        super().__init__(message or key)
        self.key = key


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """A price interval ``[start, end)`` with a price in currency per kWh.

    ``start_epoch`` and ``end_epoch`` are the times in whole seconds since the
    epoch (rounded down), worked out once when the slot is validated so that
    planning does no datetime arithmetic per slot.
    """

    start: datetime
    end: datetime
    price: float
    start_epoch: int = field(init=False, repr=False, compare=False)
    end_epoch: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Reject naive times, empty intervals and non-finite prices."""
        require_aware(self.start)
        require_aware(self.end)
        start_epoch, end_epoch = to_epoch(self.start), to_epoch(self.end)
        if end_epoch <= start_epoch:
            raise PlanInputError(
                ERROR_INVALID_PRICE_SLOT, "slot does not end after it starts"
            )
        if not math.isfinite(self.price):
            raise PlanInputError(ERROR_INVALID_PRICE_SLOT, "slot price is not finite")
        object.__setattr__(self, "start_epoch", start_epoch)
        object.__setattr__(self, "end_epoch", end_epoch)


type SlotSeconds = tuple[int, int, float]
"""A price slot as ``(start, end, price)``, the times in epoch seconds."""


def normalise_slots(slots: Iterable[PriceSlot]) -> list[SlotSeconds]:
    """Sort slots by start and drop overlaps deterministically.

    On equal starts the slot given first wins; a slot overlapping the one
    before it is cut to start where that one ends (and dropped if empty).
    """
    normalised: list[SlotSeconds] = []
    free_from = None
    for slot in sorted(slots, key=attrgetter("start_epoch")):
        start = (
            slot.start_epoch if free_from is None else max(slot.start_epoch, free_from)
        )
        if slot.end_epoch > start:
            normalised.append((start, slot.end_epoch, slot.price))
            free_from = slot.end_epoch
    return normalised


# --------------------------------------------------------------------------
# Parsing a price entity's attributes
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
        PriceSlot(from_epoch(start, tz), from_epoch(end, tz), price)
        for start, end, price in normalise_slots(slots)
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
        slots.append(PriceSlot(from_epoch(entry.start), from_epoch(end), entry.price))
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
    return to_epoch(value)


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
# Time helpers (shared with the planner)
# --------------------------------------------------------------------------


def require_aware(value: datetime) -> None:
    """Raise PlanInputError unless ``value`` carries a time zone."""
    if value.utcoffset() is None:
        raise PlanInputError(ERROR_NAIVE_DATETIME, f"{value} has no time zone")


def to_epoch(value: datetime, *, round_up: bool = False) -> int:
    """Return whole seconds since the epoch (rounded down unless asked)."""
    elapsed = value - _EPOCH
    if round_up:
        return -(-elapsed // _ONE_SECOND)
    return elapsed // _ONE_SECOND


def from_epoch(seconds: int, tz: tzinfo | None = UTC) -> datetime:
    """Return the aware datetime for epoch seconds, in ``tz``."""
    return (_EPOCH + timedelta(seconds=seconds)).astimezone(tz)
