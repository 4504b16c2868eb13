"""Serve the simulator with the demo profile: ``python -m demo.simulator``.

The profile (``demo/sim_profile.json``) holds the simulator's ``SimConfig`` under
``config`` and the car's compressed day under ``day``. The simulator runs on the
real clock (speed 1) because Home Assistant does: tokens, charge schedules and
special charging sessions then mean the same minute on both sides. The car's
day is compressed instead: ``steps`` happen at minute offsets of a cycle of
``cycle_minutes``, repeated ``cycles`` times from the next whole minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import json
import logging
from pathlib import Path
import sys
from typing import Any

from tesla_fleet_sim.__main__ import banner
from tesla_fleet_sim.clock import SimClock
from tesla_fleet_sim.config import SimConfig
from tesla_fleet_sim.geo import Location
from tesla_fleet_sim.plans import PlanStep
from tesla_fleet_sim.simulator import Simulator
from tesla_fleet_sim.testing import running_simulator

DEFAULT_PROFILE = Path(__file__).with_name("sim_profile.json")


@dataclass(frozen=True, slots=True)
class DayStep:
    """One thing the driver does, ``after`` minutes into every cycle."""

    after: float
    action: str
    minutes: float | None = None
    destination: Location | None = None
    plug_in: bool | None = None


@dataclass(frozen=True, slots=True)
class CompressedDay:
    """The car's day squeezed into ``cycle_minutes`` and repeated ``cycles`` times."""

    cycle_minutes: float
    cycles: int
    steps: tuple[DayStep, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompressedDay:
        """Build from the profile's ``day`` object."""
        steps = []
        for raw in data["steps"]:
            fields = dict(raw)
            if (dest := fields.get("destination")) is not None:
                fields["destination"] = Location(float(dest["lat"]), float(dest["lon"]))
            steps.append(DayStep(**fields))
        day = cls(float(data["cycle_minutes"]), int(data["cycles"]), tuple(steps))
        for step in day.steps:
            if not 0 <= step.after < day.cycle_minutes:
                raise ValueError(f"step {step} lies outside the cycle")
        return day

    def schedule(self, sim: Simulator, start: datetime, vin: str | None = None) -> int:
        """Schedule every step of every cycle on the car; returns the event count."""
        car = sim.vehicle(vin)
        tz = car.schedules.tz
        count = 0
        for cycle in range(self.cycles):
            cycle_start = start + timedelta(minutes=cycle * self.cycle_minutes)
            for step in self.steps:
                at = cycle_start + timedelta(minutes=step.after)
                local = at.astimezone(tz)
                # PlanStep validates the step and builds the car method's arguments.
                plan_step = PlanStep(
                    at=f"{local:%H:%M}",
                    action=step.action,
                    minutes=step.minutes,
                    destination=step.destination,
                    plug_in=step.plug_in,
                )
                kwargs = plan_step.kwargs_for(local.date(), ())
                sim.schedule_event(at, step.action, car.vin, **kwargs)
                count += 1
        return count


@dataclass(frozen=True, slots=True)
class Profile:
    """What the demo simulator serves."""

    config: SimConfig
    day: CompressedDay | None

    @classmethod
    def load(cls, path: Path) -> Profile:
        """Read a profile file."""
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(data) - {"description", "config", "day"}
        if unknown:
            raise ValueError(f"unknown profile fields: {sorted(unknown)}")
        day = data.get("day")
        return cls(
            SimConfig.from_dict(data.get("config", {})),
            CompressedDay.from_dict(day) if day else None,
        )


def build_simulator(
    profile: Profile, with_day: bool = True, now: datetime | None = None
) -> Simulator:
    """Return a simulator on the real clock, its car's day scheduled."""
    sim = Simulator(profile.config, SimClock.real())
    if with_day and profile.day is not None:
        start = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
        profile.day.schedule(sim, start + timedelta(minutes=1))
    return sim


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m demo.simulator",
        description="Serve the Fleet API simulator with the demo profile.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    parser.add_argument(
        "--no-day", action="store_true", help="keep the car parked (for the tests)"
    )
    return parser.parse_args(argv)


async def serve(sim: Simulator, host: str, port: int, day: str) -> None:
    """Serve until cancelled."""
    async with running_simulator(sim, host=host, port=port) as server:
        lines = banner(server, 1.0).splitlines()
        lines.insert(-1, f"  the car's day: {day}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    profile = Profile.load(args.profile)
    sim = build_simulator(profile, with_day=not args.no_day)
    if args.no_day or profile.day is None:
        day = "none, the car stays where it is"
    else:
        day = (
            f"{len(profile.day.steps)} steps every {profile.day.cycle_minutes:g}"
            f" minutes, {profile.day.cycles} times ({sim.pending_events} events)"
        )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sim, args.host, args.port, day))
    return 0


if __name__ == "__main__":
    sys.exit(main())
