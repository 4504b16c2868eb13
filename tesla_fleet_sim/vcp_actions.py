"""What a verified Vehicle Command Protocol payload does to the simulated car.

:mod:`.vcp` checks who sent a message; this module decodes what it asks for
and runs it through the same handlers as the REST commands
(:func:`.commands.run_command`), so a signed ``set_charge_limit`` or
``add_charge_schedule`` changes the car exactly as its REST twin does.

* Infotainment payloads are ``CarServer.Action`` messages; the answer is a
  ``CarServer.Response`` with ``actionStatus {result, result_reason}`` (what
  tesla-fleet-api turns into ``{"response": {"result", "reason"}}``), or
  ``ping`` for a ping.
* VCSEC payloads are ``VCSEC.UnsignedMessage``; the answer is a
  ``FromVCSECMessage`` with ``commandStatus`` (OK) or ``nominalError``.

Actions the simulator does not model are answered with
``actionStatus ERROR`` / ``GENERICERROR_NOT_SUPPORTED`` rather than
pretending success.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tesla_protocol.command.car_server_pb2 import (
    Action,
    ActionStatus,
    OperationStatus_E as ActionResult,
    Response,
    ResultReason,
    VehicleAction,
)
from tesla_protocol.command.errors_pb2 import GenericError_E, NominalError
from tesla_protocol.command.universal_message_pb2 import Domain
from tesla_protocol.command.vcsec_pb2 import (
    ClosureMoveType_E,
    CommandStatus,
    FromVCSECMessage,
    OperationStatus_E as VcsecStatus,
    RKEAction_E,
    UnsignedMessage,
)

from . import commands
from .vcp import DecodeError, encode
from .vehicle import SimVehicle

NOT_SUPPORTED_REASON = "action not supported by the simulator"
DECODING_REASON = "could not decode the action"
MISSING_SCOPES_REASON = "unauthorized missing scopes"
DAY_NAMES = (
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
)

RestCommand = tuple[str, dict[str, Any]]
Allows = Callable[[str], bool]  # whether the token may send a REST command


def day_names(mask: int) -> str:
    """Turn the protocol's day bitmask (SUN=1 ... SAT=64) into REST day names."""
    return ",".join(name for bit, name in enumerate(DAY_NAMES) if mask & (1 << bit))


def _charging_start_stop(action: Any) -> RestCommand | None:
    names = {
        "start": "charge_start",
        "stop": "charge_stop",
        "start_standard": "charge_standard",
        "start_max_range": "charge_max_range",
    }
    name = names.get(action.WhichOneof("charging_action") or "")
    return (name, {}) if name is not None else None


def _schedule(action: Any) -> RestCommand:
    return (
        "add_charge_schedule",
        {
            "id": action.id,
            "name": action.name,
            "days_of_week": day_names(action.days_of_week),
            "enabled": action.enabled,
            "start_enabled": action.start_enabled,
            "start_time": action.start_time,
            "end_enabled": action.end_enabled,
            "end_time": action.end_time,
            "one_time": action.one_time,
            "lat": action.latitude,
            "lon": action.longitude,
        },
    )


def _departure(action: Any) -> RestCommand:
    return (
        "set_scheduled_departure",
        {
            "enable": action.enabled,
            "departure_time": action.departure_time,
            "end_off_peak_time": action.off_peak_hours_end_time,
        },
    )


INFOTAINMENT_ACTIONS: dict[str, Callable[[Any], RestCommand | None]] = {
    "chargingSetLimitAction": lambda a: ("set_charge_limit", {"percent": a.percent}),
    "chargingStartStopAction": _charging_start_stop,
    "setChargingAmpsAction": lambda a: (
        "set_charging_amps",
        {"charging_amps": a.charging_amps},
    ),
    "addChargeScheduleAction": _schedule,
    "removeChargeScheduleAction": lambda a: ("remove_charge_schedule", {"id": a.id}),
    "scheduledChargingAction": lambda a: (
        "set_scheduled_charging",
        {"enable": a.enabled, "time": a.charging_time},
    ),
    "scheduledDepartureAction": _departure,
    "vehicleControlSetSentryModeAction": lambda a: ("set_sentry_mode", {"on": a.on}),
    "hvacAutoAction": lambda a: (
        "auto_conditioning_start" if a.power_on else "auto_conditioning_stop",
        {},
    ),
    "vehicleControlFlashLightsAction": lambda a: ("flash_lights", {}),
    "vehicleControlHonkHornAction": lambda a: ("honk_horn", {}),
}


def rest_command(action: VehicleAction) -> RestCommand | None:
    """Return the REST command (name, body) an infotainment action stands for."""
    which = action.WhichOneof("vehicle_action_msg")
    translate = INFOTAINMENT_ACTIONS.get(which or "")
    if translate is None:
        return None
    return translate(getattr(action, str(which)))


def _status(ok: bool, reason: str) -> bytes:
    status = (
        ActionResult.OPERATIONSTATUS_OK if ok else ActionResult.OPERATIONSTATUS_ERROR
    )
    return encode(
        Response(
            actionStatus=ActionStatus(
                result=status, result_reason=ResultReason(plain_text=reason)
            )
        )
    )


def _decode[T](kind: Callable[[bytes], T], payload: bytes) -> T | None:
    try:
        return kind(payload)
    except DecodeError:
        return None


def infotainment(car: SimVehicle, payload: bytes, allows: Allows) -> bytes:
    """Run an infotainment ``Action``; return the encoded ``Response``."""
    action = _decode(Action.FromString, payload)
    if action is None:
        return _status(False, DECODING_REASON)
    vehicle_action = action.vehicleAction
    if vehicle_action.HasField("ping"):
        response = Response()
        response.ping.ping_id = vehicle_action.ping.ping_id
        response.ping.local_timestamp.FromDatetime(car.snapshot().time)
        return encode(response)
    command = rest_command(vehicle_action)
    if command is None:
        return _status(False, NOT_SUPPORTED_REASON)
    name, body = command
    if not allows(name):
        return _status(False, MISSING_SCOPES_REASON)
    try:
        commands.check_params(name, body)
    except commands.ParamError as err:
        return _status(False, err.message)
    result, reason = commands.run_command(car, name, body)
    return _status(result, reason)


def _vcsec_command(message: UnsignedMessage) -> str | None:
    which = message.WhichOneof("sub_message")
    if which == "RKEAction":
        return {
            RKEAction_E.RKE_ACTION_LOCK: "door_lock",
            RKEAction_E.RKE_ACTION_UNLOCK: "door_unlock",
        }.get(message.RKEAction)
    if which == "closureMoveRequest":
        port = message.closureMoveRequest.chargePort
        return {
            ClosureMoveType_E.CLOSURE_MOVE_TYPE_OPEN: "charge_port_door_open",
            ClosureMoveType_E.CLOSURE_MOVE_TYPE_CLOSE: "charge_port_door_close",
        }.get(port)
    return None


def vehicle_security(car: SimVehicle, payload: bytes, allows: Allows) -> bytes:
    """Run a VCSEC ``UnsignedMessage``; return the encoded ``FromVCSECMessage``."""
    message = _decode(UnsignedMessage.FromString, payload)
    name = _vcsec_command(message) if message is not None else None
    if name is None:
        error = GenericError_E.GENERICERROR_NOT_SUPPORTED
    elif not allows(name):
        error = GenericError_E.GENERICERROR_UNAUTHORIZED
    else:
        commands.run_command(car, name, {})
        status = CommandStatus(operationStatus=VcsecStatus.OPERATIONSTATUS_OK)
        return encode(FromVCSECMessage(commandStatus=status))
    return encode(FromVCSECMessage(nominalError=NominalError(genericError=error)))


def execute(car: SimVehicle, allows: Allows) -> Callable[[int, bytes], bytes]:
    """Return the executor :meth:`.vcp.VehicleVerifier.answer` calls for ``car``."""

    def run(domain: int, payload: bytes) -> bytes:
        if domain == Domain.DOMAIN_VEHICLE_SECURITY:
            return vehicle_security(car, payload, allows)
        return infotainment(car, payload, allows)

    return run
