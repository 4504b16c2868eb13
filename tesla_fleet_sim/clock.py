"""Simulated time sources: manual, following another clock, or real (accelerated)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import time

from .errors import SimulationError


class ClockKind(StrEnum):
    """How a clock produces its time."""

    MANUAL = "manual"
    FOLLOW = "follow"
    REAL = "real"


def ensure_utc(moment: datetime) -> datetime:
    """Return ``moment`` in UTC; naive datetimes are rejected."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the simulator needs timezone-aware datetimes")
    return moment.astimezone(UTC)


class SimClock:
    """The simulator's notion of "now".

    Build one with :meth:`manual`, :meth:`follow` or :meth:`real`.
    """

    def __init__(
        self, kind: ClockKind, source: Callable[[], datetime] | None = None
    ) -> None:
        """Wrap a time source; prefer the class-method constructors."""
        self.kind = kind
        self._source = source
        self._manual_now: datetime | None = None

    @classmethod
    def manual(cls, start: datetime) -> SimClock:
        """Return a clock that moves only when told to (advance/set)."""
        clock = cls(ClockKind.MANUAL)
        clock._manual_now = ensure_utc(start)
        return clock

    @classmethod
    def follow(cls, source: Callable[[], datetime]) -> SimClock:
        """Return a clock that reads another clock, e.g. Home Assistant's utcnow."""
        return cls(ClockKind.FOLLOW, lambda: ensure_utc(source()))

    @classmethod
    def real(cls, speed: float = 1.0, start: datetime | None = None) -> SimClock:
        """Return the wall clock, optionally running ``speed`` times faster from ``start``."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        origin = ensure_utc(start) if start is not None else datetime.now(UTC)
        base = time.monotonic()

        def _now() -> datetime:
            return origin + timedelta(seconds=(time.monotonic() - base) * speed)

        return cls(ClockKind.REAL, _now)

    @property
    def is_manual(self) -> bool:
        """Whether advance() and set() may be used."""
        return self.kind is ClockKind.MANUAL

    def now(self) -> datetime:
        """Return the current simulated time (aware, UTC)."""
        if self._source is None:
            return self._require_manual()
        return self._source()

    def advance(self, delta: timedelta) -> datetime:
        """Move a manual clock forward by ``delta`` and return the new time."""
        if delta < timedelta(0):
            raise ValueError("a clock cannot go backwards")
        return self.set(self._require_manual() + delta)

    def set(self, moment: datetime) -> datetime:
        """Jump a manual clock to ``moment`` (not earlier than now)."""
        current = self._require_manual()
        moment = ensure_utc(moment)
        if moment < current:
            raise ValueError("a clock cannot go backwards")
        self._manual_now = moment
        return moment

    def _require_manual(self) -> datetime:
        if self._manual_now is None:
            raise SimulationError(f"a {self.kind} clock cannot be moved by hand")
        return self._manual_now

    def as_dict(self) -> dict[str, str]:
        """Describe the clock for the admin endpoint."""
        return {"kind": str(self.kind), "now": self.now().isoformat()}
