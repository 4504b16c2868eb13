"""Fleet API endpoints: what each route answers once the pipeline let it through."""

from __future__ import annotations

import base64
import binascii

from . import commands, payloads, vcp, vcp_actions
from .api import (
    MISSING_SCOPES_ERROR,
    OFFLINE_ERROR,
    ApiCall,
    ApiResponse,
    Route,
    error,
    ok,
)
from .billing import COMMAND, DATA, STATE_CHECK, WAKE
from .partners import RegistrationError
from .regions import regional_url
from .vehicle import SimVehicle

DATA_SCOPES = ("vehicle_device_data",)
WAKE_SCOPES = ("vehicle_device_data", "vehicle_cmds", "vehicle_charging_cmds")
LOCATION_SCOPE = "vehicle_location"
VCP_REQUIRED_ERROR = (
    "Tesla Vehicle Command Protocol required, please refer to the documentation"
    " here: https://developer.tesla.com/docs/fleet-api#2023-10-09-rest-api-vehicle"
    "-commands-endpoint-deprecation-warning"
)
HARDLOCKED_REASON = "unsigned_cmds_hardlocked"
SIGNED_UNSUPPORTED_ERROR = "vehicle does not support the Vehicle Command Protocol"
KEY_NOT_PAIRED_FAULT = "ERROR_KEY_NOT_PAIRED"  # the car's answer to an unknown key
SIGNED_COMMAND_SCOPES = ("vehicle_cmds", "vehicle_charging_cmds")
BAD_ROUTABLE_MESSAGE_ERROR = "routable_message must be a base64 RoutableMessage"


def _summaries(call: ApiCall) -> list[dict[str, object]]:
    cars = call.sim.account_vehicles(call.account.sub)
    return [payloads.summary(car.snapshot()) for car in cars]


def _list_vehicles(call: ApiCall) -> ApiResponse:
    items = _summaries(call)
    pagination = {
        "previous": None,
        "next": None,
        "current": 1,
        "per_page": max(len(items), 1),
        "count": len(items),
        "pages": 1,
    }
    return ok({"response": items, "pagination": pagination, "count": len(items)})


def _get_vehicle(call: ApiCall) -> ApiResponse:
    return ok({"response": payloads.summary(call.car.snapshot())})


def _vehicle_data(call: ApiCall) -> ApiResponse:
    sections, wants_location = payloads.parse_endpoints(call.query.get("endpoints"))
    if not call.allows(DATA_SCOPES) or (
        wants_location and LOCATION_SCOPE not in call.scopes
    ):
        return error(403, MISSING_SCOPES_ERROR)
    car = call.car
    keeps_awake = call.sim.config.data_keeps_awake
    if not (car.note_activity() if keeps_awake else car.state == "online"):
        return error(408, OFFLINE_ERROR)
    body = payloads.vehicle_data(
        car.snapshot(), sections, wants_location, call.account.user_id
    )
    return ok({"response": body})


def _wake_up(call: ApiCall) -> ApiResponse:
    if not call.allows(WAKE_SCOPES):
        return error(403, MISSING_SCOPES_ERROR)
    call.car.request_wake()
    return ok({"response": payloads.summary(call.car.snapshot())})


def _command(call: ApiCall) -> ApiResponse:
    name = call.command or ""
    if not commands.is_known(name):
        return error(400, "invalid_command", f"Unknown command {name}")
    if not call.allows(commands.scopes_for(name)):
        return error(403, MISSING_SCOPES_ERROR)
    car = call.car
    signing = car.config.command_signing
    if call.signed and signing == "off":
        return error(422, SIGNED_UNSUPPORTED_ERROR)
    unsigned_refused = not call.signed and signing == "required"
    if unsigned_refused and car.config.unsigned_rejection == "forbidden":
        return error(403, VCP_REQUIRED_ERROR)
    try:
        commands.check_params(name, call.body)
    except commands.ParamError as err:
        return ApiResponse(400, err.body())
    if not car.note_activity():
        return error(408, OFFLINE_ERROR)
    if unsigned_refused:
        return ok({"response": {"result": False, "reason": HARDLOCKED_REASON}})
    if call.signed and not _app_key_paired(call, car):
        response = ok({"response": {"result": False, "reason": KEY_NOT_PAIRED_FAULT}})
        response.fault = KEY_NOT_PAIRED_FAULT
        return response
    result, reason = commands.run_command(car, name, call.body)
    return ok({"response": {"result": result, "reason": reason}})


def _app_key(call: ApiCall) -> bytes | None:
    """Return the public key the calling app registered in its user's region."""
    return call.sim.partners.app_key(call.token.client_id, call.account.region)


def _app_key_paired(call: ApiCall, car: SimVehicle) -> bool:
    """Whether the calling app's key is on the car's keychain."""
    return car.keychain.holds_app_key(_app_key(call))


def _signed_command(call: ApiCall) -> ApiResponse:
    """POST /api/1/vehicles/{vin}/signed_command {"routable_message": <base64>}."""
    if not call.allows(SIGNED_COMMAND_SCOPES):
        return error(403, MISSING_SCOPES_ERROR)
    car = call.car
    if car.config.command_signing == "off":
        # Tesla's vehicle-command treats 422 as "use the REST commands".
        return error(422, SIGNED_UNSUPPORTED_ERROR)
    raw = call.body.get("routable_message")
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
    except binascii.Error:
        data = b""
    message = vcp.decode_message(data) if data else None
    if message is None:
        return error(400, "invalid_request", BAD_ROUTABLE_MESSAGE_ERROR)
    if not car.note_activity():
        return error(408, OFFLINE_ERROR)
    app_keys = call.sim.partners.public_keys()

    def on_keychain(key: bytes) -> bool:
        return car.keychain.holds(key, app_keys)

    def allows(name: str) -> bool:
        return call.allows(commands.scopes_for(name))

    reply = car.verifier.answer(
        message,
        call.sim.update(),
        on_keychain,
        vcp_actions.execute(car, allows),
    )
    fault = reply.signedMessageStatus.signed_message_fault
    response = ok({"response": base64.b64encode(vcp.encode(reply)).decode()})
    if fault:
        response.fault = vcp.fault_name(fault)
    return response


def _fleet_status(call: ApiCall) -> ApiResponse:
    vins = call.body.get("vins")
    if not isinstance(vins, list) or not all(isinstance(v, str) for v in vins):
        return error(400, "invalid_request", "vins must be a list of VINs")
    cars = {car.vin: car for car in call.sim.account_vehicles(call.account.sub)}
    known = [cars[vin] for vin in dict.fromkeys(vins) if vin in cars]
    app_key = _app_key(call)
    paired = {car.vin: car.keychain.holds_app_key(app_key) for car in known}
    info = {
        car.vin: payloads.fleet_status_info(car.config, car.keychain.count(app_key))
        for car in known
    }
    body = {
        "key_paired_vins": [car.vin for car in known if paired[car.vin]],
        "unpaired_vins": [car.vin for car in known if not paired[car.vin]],
        "vehicle_info": info,
    }
    return ok({"response": body})


def _user_region(call: ApiCall) -> ApiResponse:
    region = call.account.region
    base = regional_url(call.origin, region)
    return ok({"response": {"region": region, "fleet_api_base_url": base}})


def _user_me(call: ApiCall) -> ApiResponse:
    account = call.account
    return ok(
        {
            "response": {
                "email": account.email,
                "full_name": account.full_name,
                "profile_image_url": None,
                "vault_uuid": account.sub,
            }
        }
    )


def _products(call: ApiCall) -> ApiResponse:
    items = _summaries(call)
    return ok({"response": items, "count": len(items)})


def _register_partner(call: ApiCall) -> ApiResponse:
    """POST /api/1/partner_accounts {"domain"}: register the app in this region."""
    partners = call.sim.partners
    client_id = call.token.client_id or ""
    try:
        domain = partners.check_domain(client_id, call.body.get("domain"))
        registration = partners.register(
            client_id, call.region, domain, call.public_key_pem, call.sim.update()
        )
    except RegistrationError as err:
        return error(err.status, err.message)
    client = call.sim.config.client(client_id)
    stamp = registration.created_at.isoformat()
    body = {
        "client_id": client_id,
        "domain": registration.domain,
        "name": client.name if client is not None else client_id,
        "description": "",
        "created_at": stamp,
        "updated_at": stamp,
        "enterprise_tier": "free",
        "public_key": registration.public_key,
    }
    return ok({"response": body})


def _partner_public_key(call: ApiCall) -> ApiResponse:
    """GET /api/1/partner_accounts/public_key?domain=: the registered key."""
    key = call.sim.partners.public_key(call.query.get("domain", ""))
    if key is None:
        return error(404, "not_found", "No public key registered for this domain")
    return ok({"response": {"public_key": key}})


def _not_found(call: ApiCall) -> ApiResponse:
    return error(404, "not_found", "Unknown endpoint")


LIST_VEHICLES = Route("list_vehicles", STATE_CHECK, _list_vehicles)
GET_VEHICLE = Route("get_vehicle", STATE_CHECK, _get_vehicle, needs_vehicle=True)
VEHICLE_DATA = Route("vehicle_data", DATA, _vehicle_data, needs_vehicle=True)
WAKE_UP = Route("wake_up", WAKE, _wake_up, needs_vehicle=True)
COMMAND_ROUTE = Route("command", COMMAND, _command, needs_vehicle=True)
SIGNED_COMMAND = Route("signed_command", COMMAND, _signed_command, needs_vehicle=True)
FLEET_STATUS = Route("fleet_status", DATA, _fleet_status)
USER_REGION = Route("user_region", DATA, _user_region, region_exempt=True)
USER_ME = Route("user_me", DATA, _user_me)
PRODUCTS = Route("products", DATA, _products)
PARTNER_REGISTER = Route(
    "partner_register", DATA, _register_partner, partner=True, billed=False
)
PARTNER_PUBLIC_KEY = Route(
    "partner_public_key", DATA, _partner_public_key, partner=True, billed=False
)
NOT_FOUND = Route("not_found", DATA, _not_found)
