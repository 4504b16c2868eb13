"""The charging plan: what the planner is asked and what it answers.

``PlanRequest`` and ``OffPeakWindow`` are the planner's inputs, ``ChargingPlan``
its result (stored with a session, so it converts to and from a dict); the
mode, reason and error names and the energy arithmetic live here too. The
planning itself is in planner.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
import math
from typing import Any, Final

from .const import DEFAULT_LEAD_TIME
from .prices import PlanInputError, PriceSlot, require_aware

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
        validate_request(self)


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
    # Where the plan started from (set by plan_inputs.py, not the planner):
    soc_seen: float | None = None
    """The charge level the scout last saw."""
    soc_as_of: datetime | None = None
    """When the car reported ``soc_seen``."""
    soc_used: float | None = None
    """The level planned from: ``soc_seen`` less a margin when it is old."""

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly mapping (ISO 8601 times) of the plan."""
        return {
            "start": iso_or_none(self.start),
            "end": iso_or_none(self.end),
            "segments": [
                {"start": start.isoformat(), "end": end.isoformat()}
                for start, end in self.segments
            ],
            "duration_seconds": self.duration.total_seconds(),
            "energy_kwh": self.energy_kwh,
            "expected_cost": self.expected_cost,
            "expected_soc": self.expected_soc,
            "send_at": iso_or_none(self.send_at),
            "cleanup_at": iso_or_none(self.cleanup_at),
            "reachable": self.reachable,
            "reason": self.reason,
            "mode": self.mode,
            "missing_slots": self.missing_slots,
            "soc_seen": self.soc_seen,
            "soc_as_of": iso_or_none(self.soc_as_of),
            "soc_used": self.soc_used,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChargingPlan:
        """Rebuild a plan from ``as_dict`` output (e.g. after a restart)."""
        try:
            plan = cls(
                start=datetime_or_none(data["start"]),
                end=datetime_or_none(data["end"]),
                segments=tuple(
                    (
                        datetime.fromisoformat(segment["start"]),
                        datetime.fromisoformat(segment["end"]),
                    )
                    for segment in data["segments"]
                ),
                duration=timedelta(seconds=float(data["duration_seconds"])),
                energy_kwh=float(data["energy_kwh"]),
                expected_cost=float_or_none(data["expected_cost"]),
                expected_soc=float(data["expected_soc"]),
                send_at=datetime_or_none(data["send_at"]),
                cleanup_at=datetime_or_none(data["cleanup_at"]),
                reachable=bool(data["reachable"]),
                reason=str_or_none(data["reason"]),
                mode=str(data["mode"]),
                missing_slots=int(data["missing_slots"]),
                # Plans stored before these existed have none.
                soc_seen=float_or_none(data.get("soc_seen")),
                soc_as_of=datetime_or_none(data.get("soc_as_of")),
                soc_used=float_or_none(data.get("soc_used")),
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


def iso_or_none(value: datetime | None) -> str | None:
    """Return the ISO string of ``value``, or None."""
    return None if value is None else value.isoformat()


def datetime_or_none(value: Any) -> datetime | None:
    """Parse an ISO string, passing None through."""
    return None if value is None else datetime.fromisoformat(value)


def float_or_none(value: Any) -> float | None:
    """Convert to float, passing None through."""
    return None if value is None else float(value)


def str_or_none(value: Any) -> str | None:
    """Convert to str, passing None through."""
    return None if value is None else str(value)


def validate_request(request: PlanRequest) -> None:
    """Raise PlanInputError for the first invalid field of the request."""
    for soc in (request.current_soc, request.target_soc):
        if not 0 <= soc <= PERCENT:
            raise PlanInputError(ERROR_INVALID_SOC, f"SoC {soc} is outside 0..100")
    require_positive(request.capacity_kwh, ERROR_INVALID_CAPACITY)
    require_positive(request.power_kw, ERROR_INVALID_POWER)
    if not 0 < request.efficiency <= 1:
        raise PlanInputError(ERROR_INVALID_EFFICIENCY, "efficiency must be in (0, 1]")
    if request.lead_time < timedelta(0):
        raise PlanInputError(ERROR_INVALID_LEAD_TIME, "lead time is negative")
    require_aware(request.now)
    require_aware(request.ready_by)
    if to_instant(request.ready_by) <= to_instant(request.now):
        raise PlanInputError(ERROR_READY_BY_NOT_AFTER_NOW, "ready_by is not after now")
    if request.prices is not None and not request.prices and request.off_peak is None:
        raise PlanInputError(ERROR_NO_PRICES, "no prices and no off-peak window")


def require_positive(value: float, key: str) -> None:
    """Raise PlanInputError(key) unless ``value`` is finite and positive."""
    if not (math.isfinite(value) and value > 0):
        raise PlanInputError(key, f"{value} is not a positive number")


def to_instant(value: datetime) -> datetime:
    """Return ``value`` in UTC, so comparisons ignore wall-clock quirks."""
    return value.astimezone(UTC)
