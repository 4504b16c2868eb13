"""Declarative day plans ("07:30 drive to work, 17:00 drive home") repeated over days."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .geo import Location

DRIVE_ACTIONS = frozenset({"drive_to", "drive_home", "drive_to_work"})
SIMPLE_ACTIONS = frozenset(
    {"plug_in", "unplug", "fall_asleep", "go_offline", "come_online"}
)
SCRIPTABLE_ACTIONS = DRIVE_ACTIONS | SIMPLE_ACTIONS | {"set_battery", "set_grid_power"}


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One thing the driver does at a car-local time of day."""

    at: str  # "HH:MM", car-local
    action: str  # drive_home, drive_to_work, drive_to, plug_in, unplug, ...
    minutes: float | None = None  # drive duration
    destination: Location | None = None  # for drive_to
    plug_in: bool | None = None  # None: plug in on arrival home on plug_in_days

    def __post_init__(self) -> None:
        """Validate the step early."""
        self.clock_time()
        if self.action not in DRIVE_ACTIONS | SIMPLE_ACTIONS:
            raise ValueError(f"unknown plan action {self.action!r}")
        if self.action in DRIVE_ACTIONS and not self.minutes:
            raise ValueError(f"{self.action} needs minutes")
        if self.action == "drive_to" and self.destination is None:
            raise ValueError("drive_to needs a destination")

    def clock_time(self) -> time:
        """Return the time of day of the step."""
        return time.fromisoformat(self.at)

    def kwargs_for(self, day: date, plug_in_days: Container[int]) -> dict[str, Any]:
        """Keyword arguments for the vehicle method on ``day``."""
        if self.action not in DRIVE_ACTIONS:
            return {}
        plug = self.plug_in
        if plug is None:
            plug = self.action == "drive_home" and day.weekday() in plug_in_days
        kwargs: dict[str, Any] = {
            "duration": timedelta(minutes=self.minutes or 0),
            "plug_in_on_arrival": plug,
        }
        if self.action == "drive_to":
            kwargs["location"] = self.destination
        return kwargs


@dataclass(frozen=True, slots=True)
class DayPlan:
    """The steps of one day, repeated by ``Simulator.add_daily_plan``."""

    steps: tuple[PlanStep, ...]

    @classmethod
    def of(cls, *entries: PlanStep | tuple[Any, ...]) -> DayPlan:
        """Build a plan from steps or tuples like ("07:30", "drive_to_work", 25)."""
        steps = tuple(e if isinstance(e, PlanStep) else PlanStep(*e) for e in entries)
        return cls(steps)

    @classmethod
    def commuter(
        cls,
        leave_home: str = "07:30",
        to_work_minutes: float = 25,
        leave_work: str = "17:00",
        to_home_minutes: float = 30,
    ) -> DayPlan:
        """Drive to work in the morning and home in the evening."""
        return cls.of(
            (leave_home, "drive_to_work", to_work_minutes),
            (leave_work, "drive_home", to_home_minutes),
        )

    def occurrences(
        self,
        tz: ZoneInfo,
        start: date,
        days: int,
        plug_in_days: Container[int] = (),
        weekdays: Container[int] | None = None,
    ) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Expand the plan to (moment, action, kwargs) for ``days`` days.

        ``plug_in_days`` and ``weekdays`` hold weekday numbers (Monday = 0).
        """
        found = []
        for offset in range(days):
            day = start + timedelta(days=offset)
            if weekdays is not None and day.weekday() not in weekdays:
                continue
            for step in self.steps:
                moment = datetime.combine(day, step.clock_time(), tzinfo=tz)
                found.append((moment, step.action, step.kwargs_for(day, plug_in_days)))
        return found
