"""Vehicle commands (POST /api/1/vehicles/{vin}/command/{name})."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .schedules import ALL_DAYS, MINUTES_PER_DAY, ChargeSchedule, parse_days_of_week
from .vehicle import OK, CommandResult, SimVehicle

CommandBody = Mapping[str, Any]
Handler = Callable[[SimVehicle, CommandBody], CommandResult]

STANDARD_CHARGE_LIMIT = 90
MAX_RANGE_CHARGE_LIMIT = 100
INVALID_PARAMETERS = "invalid parameters"
CHARGING_SCOPES = ("vehicle_charging_cmds", "vehicle_cmds")
COMMAND_SCOPES = ("vehicle_cmds",)


def _minutes(value: Any) -> int:
    minutes = int(value)
    if not 0 <= minutes < MINUTES_PER_DAY:
        raise ValueError("minutes after midnight out of range")
    return minutes


def _schedule_from(body: CommandBody) -> ChargeSchedule:
    start_enabled = bool(body.get("start_enabled", "start_time" in body))
    end_enabled = bool(body.get("end_enabled", "end_time" in body))
    if not (start_enabled or end_enabled):
        raise ValueError("a schedule needs a start or an end time")
    return ChargeSchedule(
        id=int(body.get("id") or 0),
        days_of_week=parse_days_of_week(body.get("days_of_week", ALL_DAYS)),
        enabled=bool(body.get("enabled", True)),
        start_enabled=start_enabled,
        start_time=_minutes(body.get("start_time", 0)),
        end_enabled=end_enabled,
        end_time=_minutes(body.get("end_time", 0)),
        one_time=bool(body.get("one_time", False)),
        latitude=float(body.get("lat", 0.0)),
        longitude=float(body.get("lon", 0.0)),
        name=str(body.get("name", "")),
    )


def _add_charge_schedule(car: SimVehicle, body: CommandBody) -> CommandResult:
    return car.add_charge_schedule(_schedule_from(body))


def _set_scheduled_charging(car: SimVehicle, body: CommandBody) -> CommandResult:
    enable = bool(body.get("enable", False))
    raw = body.get("time")
    if enable and raw is None:
        raise ValueError("time is required")
    return car.set_scheduled_charging(enable, None if raw is None else _minutes(raw))


def _set_scheduled_departure(car: SimVehicle, body: CommandBody) -> CommandResult:
    return car.set_scheduled_departure(dict(body))


def _no_op(car: SimVehicle, body: CommandBody) -> CommandResult:
    return OK


CHARGING_COMMANDS: dict[str, Handler] = {
    "set_charge_limit": lambda car, body: car.set_charge_limit(int(body["percent"])),
    "charge_start": lambda car, body: car.start_charging(),
    "charge_stop": lambda car, body: car.stop_charging(),
    "charge_max_range": lambda car, body: car.set_charge_limit(MAX_RANGE_CHARGE_LIMIT),
    "charge_standard": lambda car, body: car.set_charge_limit(STANDARD_CHARGE_LIMIT),
    "set_charging_amps": lambda car, body: car.set_charging_amps(
        int(body["charging_amps"])
    ),
    "add_charge_schedule": _add_charge_schedule,
    "remove_charge_schedule": lambda car, body: car.remove_charge_schedule(
        int(body["id"])
    ),
    "set_scheduled_charging": _set_scheduled_charging,
    "set_scheduled_departure": _set_scheduled_departure,
    "charge_port_door_open": _no_op,
    "charge_port_door_close": _no_op,
}

OTHER_COMMANDS: dict[str, Handler] = {
    "door_lock": lambda car, body: car.set_locked(True),
    "door_unlock": lambda car, body: car.set_locked(False),
    "set_sentry_mode": lambda car, body: car.set_sentry_mode(
        bool(body.get("on", False))
    ),
    "flash_lights": _no_op,
    "honk_horn": _no_op,
    "auto_conditioning_start": _no_op,
    "auto_conditioning_stop": _no_op,
}


def is_known(name: str) -> bool:
    """Whether the simulator implements command ``name``."""
    return name in CHARGING_COMMANDS or name in OTHER_COMMANDS


def scopes_for(name: str) -> tuple[str, ...]:
    """Scopes of which the token needs at least one to send ``name``."""
    return CHARGING_SCOPES if name in CHARGING_COMMANDS else COMMAND_SCOPES


def run_command(car: SimVehicle, name: str, body: CommandBody) -> CommandResult:
    """Execute a known command; bad parameters give result false."""
    handler = CHARGING_COMMANDS.get(name) or OTHER_COMMANDS[name]
    try:
        return handler(car, body)
    except KeyError, TypeError, ValueError:
        return False, INVALID_PARAMETERS
