"""The Fleet API request pipeline, independent of the HTTP server.

Every call: faults, bearer token, region, vehicle lookup, rate limit, then the
endpoint. The response is billed (status < 500) and logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from . import commands, payloads
from .billing import COMMAND, DATA, STATE_CHECK, WAKE, RequestRecord
from .config import TESLA_FLEET_URLS, AccountConfig
from .faults import InjectedFailure
from .tokens import ERROR_EXPIRED

if TYPE_CHECKING:
    from .simulator import Simulator
    from .vehicle import SimVehicle

OFFLINE_ERROR = "vehicle unavailable: vehicle is offline or asleep"
OUT_OF_REGION_ERROR = "user out of region"
MISSING_SCOPES_ERROR = "Unauthorized missing scopes"
RATE_LIMITED_ERROR = "Too many requests"
DATA_SCOPES = ("vehicle_device_data",)
WAKE_SCOPES = ("vehicle_device_data", "vehicle_cmds", "vehicle_charging_cmds")
LOCATION_SCOPE = "vehicle_location"
DEFAULT_ERRORS = {
    400: "invalid_request",
    401: ERROR_EXPIRED,
    403: MISSING_SCOPES_ERROR,
    404: "not_found",
    408: OFFLINE_ERROR,
    421: OUT_OF_REGION_ERROR,
    429: RATE_LIMITED_ERROR,
}


@dataclass(slots=True)
class ApiResponse:
    """Status, JSON body and extra headers of an answer."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ApiCall:
    """What an endpoint handler gets once the pipeline let the request through."""

    sim: Simulator
    account: AccountConfig
    scopes: tuple[str, ...]
    vehicle: SimVehicle | None
    query: Mapping[str, str]
    body: Mapping[str, Any]
    base_url: str
    command: str | None

    @property
    def car(self) -> SimVehicle:
        """The vehicle of a per-vehicle route."""
        assert self.vehicle is not None  # noqa: S101 - routes declare needs_vehicle
        return self.vehicle

    def allows(self, needed: tuple[str, ...]) -> bool:
        """Whether the token has at least one of ``needed``."""
        return any(scope in self.scopes for scope in needed)


Handler = Callable[[ApiCall], ApiResponse]


@dataclass(frozen=True, slots=True)
class Route:
    """A Fleet API endpoint: billing category and handler."""

    name: str
    category: str
    handler: Handler
    needs_vehicle: bool = False
    region_exempt: bool = False


@dataclass(slots=True)
class ApiRequest:
    """An incoming Fleet API request, already parsed by the server."""

    method: str
    path: str
    route: Route
    authorization: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    base_url: str = ""
    vin: str | None = None
    command: str | None = None


# --- responses ------------------------------------------------------------------


def ok(body: dict[str, Any]) -> ApiResponse:
    """Return a 200 answer."""
    return ApiResponse(200, body)


def error(
    status: int, message: str | None = None, description: str = ""
) -> ApiResponse:
    """Return an error answer with the Fleet API's usual body."""
    if message is None:
        message = DEFAULT_ERRORS.get(status) or _phrase(status)
    return ApiResponse(
        status, {"response": None, "error": message, "error_description": description}
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def rate_limited(wait: int, limit: int | None = None) -> ApiResponse:
    """Return a 429 answer with Retry-After / RateLimit-* headers."""
    response = error(429, RATE_LIMITED_ERROR, f"Retry in {wait} seconds")
    response.headers = {"Retry-After": str(wait), "RateLimit-Reset": str(wait)}
    if limit is not None:
        response.headers |= {"RateLimit-Limit": str(limit), "RateLimit-Remaining": "0"}
    return response


def _injected(failure: InjectedFailure, retry_after: int) -> ApiResponse:
    if failure.status == 429:
        response = rate_limited(retry_after)
    else:
        response = error(failure.status)
    if failure.body is not None:
        response.body = dict(failure.body)
    return response


# --- pipeline -------------------------------------------------------------------


def handle(sim: Simulator, request: ApiRequest) -> ApiResponse:
    """Answer a Fleet API request, then bill and log it."""
    now = sim.update()
    record = RequestRecord(
        now, request.method, request.path, category=request.route.category
    )
    if request.vin is not None and sim.has_vehicle(request.vin):
        record.vin = request.vin
    response = _answer(sim, request, record, now)
    record.status = response.status
    if record.error is None and response.status >= 400:
        record.error = str(response.body.get("error"))
    if response.status != 401 or sim.config.bill_unauthorized:
        record.billed = sim.ledger.record(
            request.route.category, record.vin, response.status
        )
    sim.log_request(record)
    return response


def _answer(
    sim: Simulator, request: ApiRequest, record: RequestRecord, now: datetime
) -> ApiResponse:
    window = int(sim.config.rate_limits.window.total_seconds())
    if (failure := sim.faults.take(request.path)) is not None:
        return _injected(failure, window)
    if sim.faults.api_status is not None:
        return error(sim.faults.api_status)
    check = sim.tokens.check_access(request.authorization)
    record.expired = check.expired
    record.sub = check.sub
    if not check.ok or check.sub is None:
        return ApiResponse(401, {"error": check.error})
    account = sim.config.account(check.sub)
    assert account is not None  # noqa: S101 - tokens are issued to known accounts
    route = request.route
    if account.region != sim.config.server_region and not route.region_exempt:
        return error(
            421, OUT_OF_REGION_ERROR, "The user's data lives in another region"
        )
    vehicle = None
    if route.needs_vehicle:
        vehicle = sim.vehicle_of(account.sub, request.vin or "")
        if vehicle is None:
            return error(404, "not_found", "Vehicle not found for this account")
        wait = sim.rate_limiter.check(vehicle.vin, route.category, now)
        if wait is not None:
            return rate_limited(wait, sim.config.rate_limits.limit_for(route.category))
    call = ApiCall(
        sim,
        account,
        check.scopes,
        vehicle,
        request.query,
        request.body,
        request.base_url,
        request.command,
    )
    return route.handler(call)


# --- endpoints ------------------------------------------------------------------


def _list_vehicles(call: ApiCall) -> ApiResponse:
    cars = call.sim.account_vehicles(call.account.sub)
    items = [payloads.summary(car.snapshot()) for car in cars]
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
    if not call.allows(DATA_SCOPES):
        return error(403, MISSING_SCOPES_ERROR, "vehicle_device_data is required")
    car = call.car
    if not car.note_activity():
        return error(408, OFFLINE_ERROR)
    sections, wants_location = payloads.parse_endpoints(call.query.get("endpoints"))
    with_location = wants_location and LOCATION_SCOPE in call.scopes
    body = payloads.vehicle_data(
        car.snapshot(), sections, with_location, call.account.user_id
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
    if not car.note_activity():
        return error(408, OFFLINE_ERROR)
    result, reason = commands.run_command(car, name, call.body)
    return ok({"response": {"result": result, "reason": reason}})


def _user_region(call: ApiCall) -> ApiResponse:
    region = call.account.region
    same = region == call.sim.config.server_region
    base = call.base_url if same else TESLA_FLEET_URLS.get(region, call.base_url)
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
    cars = call.sim.account_vehicles(call.account.sub)
    items = [payloads.summary(car.snapshot()) for car in cars]
    return ok({"response": items, "count": len(items)})


def _not_found(call: ApiCall) -> ApiResponse:
    return error(404, "not_found", "Unknown endpoint")


LIST_VEHICLES = Route("list_vehicles", STATE_CHECK, _list_vehicles)
GET_VEHICLE = Route("get_vehicle", STATE_CHECK, _get_vehicle, needs_vehicle=True)
VEHICLE_DATA = Route("vehicle_data", DATA, _vehicle_data, needs_vehicle=True)
WAKE_UP = Route("wake_up", WAKE, _wake_up, needs_vehicle=True)
COMMAND_ROUTE = Route("command", COMMAND, _command, needs_vehicle=True)
USER_REGION = Route("user_region", DATA, _user_region, region_exempt=True)
USER_ME = Route("user_me", DATA, _user_me)
PRODUCTS = Route("products", DATA, _products)
NOT_FOUND = Route("not_found", DATA, _not_found)
