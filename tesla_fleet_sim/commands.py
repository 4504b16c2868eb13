"""Vehicle commands (POST /api/1/vehicles/{vin}/command/{name}).

Parameters are checked like tesla-http-proxy checks them before anything
reaches the car: required keys, JSON types (numbers are numbers, flags are
booleans) and ``days_of_week`` as day names. A failed check is a
:class:`ParamError` (HTTP 400); values the car itself refuses give
``result: false``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .schedules import MINUTES_PER_DAY, ChargeSchedule, parse_days_of_week
from .vehicle import OK, CommandResult, SimVehicle

CommandBody = Mapping[str, Any]
Handler = Callable[[SimVehicle, CommandBody], CommandResult]
Check = Callable[[CommandBody], None]

STANDARD_CHARGE_LIMIT = 90
MAX_RANGE_CHARGE_LIMIT = 100
INVALID_PARAMETERS = "invalid parameters"
CHARGING_SCOPES = ("vehicle_charging_cmds", "vehicle_cmds")
COMMAND_SCOPES = ("vehicle_cmds",)


class ParamError(Exception):
    """A command parameter is missing or malformed (answered with HTTP 400).

    ``nominal`` errors name a parameter and come back as a command result
    (``{"response": {"result": false, "reason": ...}}``); others, such as an
    unknown day name, as an error (``{"response": null, "error": ...}``).
    """

    def __init__(self, message: str, nominal: bool = True) -> None:
        """Describe the problem."""
        super().__init__(message)
        self.message = message
        self.nominal = nominal

    def body(self) -> dict[str, Any]:
        """Return the JSON body of the 400 answer."""
        if self.nominal:
            return {"response": {"result": False, "reason": self.message}}
        return {"response": None, "error": self.message, "error_description": ""}


def _value(body: CommandBody, key: str, required: bool, kinds: tuple[type, ...]) -> Any:
    if key not in body:
        if required:
            raise ParamError(f"missing {key} param")
        return None
    value = body[key]
    # JSON booleans are not numbers (Python's bool is an int).
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        raise ParamError(f"invalid {key} param")
    return value


def number(body: CommandBody, key: str, required: bool = True) -> float | None:
    """Check a numeric parameter."""
    value = _value(body, key, required, (int, float))
    return None if value is None else float(value)


def flag(body: CommandBody, key: str, required: bool = True) -> bool | None:
    """Check a boolean parameter."""
    value = _value(body, key, required, (bool,))
    return None if value is None else bool(value)


def days(body: CommandBody, key: str = "days_of_week") -> int:
    """Check a required days-of-week parameter: a string of day names."""
    text = _value(body, key, True, (str,))
    try:
        return parse_days_of_week(str(text))
    except ValueError as err:
        raise ParamError(str(err), nominal=False) from err


def _check_schedule(body: CommandBody) -> None:
    number(body, "lat")
    number(body, "lon")
    number(body, "start_time", required=False)
    flag(body, "start_enabled")
    number(body, "end_time", required=False)
    flag(body, "end_enabled")
    days(body)
    number(body, "id", required=False)
    flag(body, "enabled")
    flag(body, "one_time", required=False)


def _check_scheduled_charging(body: CommandBody) -> None:
    flag(body, "enable")
    number(body, "time", required=False)


def _one(check: Callable[[CommandBody, str], object], key: str) -> Check:
    def run(body: CommandBody) -> None:
        check(body, key)

    return run


CHECKS: dict[str, Check] = {
    "set_charge_limit": _one(number, "percent"),
    "set_charging_amps": _one(number, "charging_amps"),
    "add_charge_schedule": _check_schedule,
    "remove_charge_schedule": _one(number, "id"),
    "set_scheduled_charging": _check_scheduled_charging,
    "set_scheduled_departure": _one(flag, "enable"),
    "set_sentry_mode": _one(flag, "on"),
}


def check_params(name: str, body: CommandBody) -> None:
    """Raise :class:`ParamError` when ``body`` does not suit command ``name``."""
    check = CHECKS.get(name)
    if check is not None:
        check(body)


def _minutes(value: Any) -> int:
    minutes = int(value)
    if not 0 <= minutes < MINUTES_PER_DAY:
        raise ValueError("minutes after midnight out of range")
    return minutes


def _schedule_from(body: CommandBody) -> ChargeSchedule:
    start_enabled = bool(body["start_enabled"])
    end_enabled = bool(body["end_enabled"])
    if not (start_enabled or end_enabled):
        raise ValueError("a schedule needs a start or an end time")
    return ChargeSchedule(
        id=int(body.get("id") or 0),
        days_of_week=days(body),
        enabled=bool(body["enabled"]),
        start_enabled=start_enabled,
        start_time=_minutes(body.get("start_time", 0)),
        end_enabled=end_enabled,
        end_time=_minutes(body.get("end_time", 0)),
        one_time=bool(body.get("one_time", False)),
        latitude=float(body["lat"]),
        longitude=float(body["lon"]),
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
    """Execute a known command whose parameters passed :func:`check_params`.

    Values the car refuses (out of range, inconsistent) give result false.
    """
    handler = CHARGING_COMMANDS.get(name) or OTHER_COMMANDS[name]
    try:
        return handler(car, body)
    except KeyError, TypeError, ValueError:
        return False, INVALID_PARAMETERS
