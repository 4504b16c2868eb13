"""The Fleet API request pipeline, independent of the HTTP server.

Every call: faults, bearer token, partner or user token, region (421), partner
registration (412), vehicle lookup, rate limit, then the endpoint (scopes,
command signing, the car). The response is billed (status < 500) and logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from .billing import RequestRecord
from .config import AccountConfig
from .faults import InjectedFailure
from .regions import regional_url
from .tokens import ERROR_EXPIRED, AccessCheck

if TYPE_CHECKING:
    from .simulator import Simulator
    from .vehicle import SimVehicle

OFFLINE_ERROR = "vehicle unavailable: vehicle is offline or asleep"
OUT_OF_REGION_ERROR = "user out of region, use base URL: {url}"
NOT_REGISTERED_ERROR = "Account must be registered in the current region {url}"
MISSING_SCOPES_ERROR = "Unauthorized missing scopes"
UNAUTHORIZED_ERROR = "Unauthorized"
RATE_LIMITED_ERROR = "Too many requests"
DEFAULT_ERRORS = {
    400: "invalid_request",
    401: ERROR_EXPIRED,
    403: MISSING_SCOPES_ERROR,
    404: "not_found",
    408: OFFLINE_ERROR,
    421: "user out of region",
    429: RATE_LIMITED_ERROR,
}


@dataclass(slots=True)
class ApiResponse:
    """Status, JSON body and extra headers of an answer.

    ``fault`` carries what a car said to a signed command it could not take
    (read by the proxy, logged as the request's ``error``; never sent over
    HTTP as such).
    """

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None


@dataclass(slots=True)
class ApiCall:
    """What an endpoint handler gets once the pipeline let the request through."""

    sim: Simulator
    user: AccountConfig | None  # None for partner tokens
    token: AccessCheck
    vehicle: SimVehicle | None
    query: Mapping[str, str]
    body: Mapping[str, Any]
    origin: str  # scheme://host:port of the simulator
    region: str  # the region whose base URL was called
    command: str | None
    signed: bool = False
    public_key_pem: str | None = None  # what the registered domain serves

    @property
    def account(self) -> AccountConfig:
        """The user of a user-token route."""
        assert self.user is not None  # noqa: S101 - partner routes never ask
        return self.user

    @property
    def scopes(self) -> tuple[str, ...]:
        """Scopes of the bearer token."""
        return self.token.scopes

    @property
    def car(self) -> SimVehicle:
        """The vehicle of a per-vehicle route."""
        assert self.vehicle is not None  # noqa: S101 - routes declare needs_vehicle
        return self.vehicle

    @property
    def base_url(self) -> str:
        """The simulator's base URL of the region called."""
        return regional_url(self.origin, self.region)

    def allows(self, needed: tuple[str, ...]) -> bool:
        """Whether the token has at least one of ``needed``."""
        return any(scope in self.scopes for scope in needed)


Handler = Callable[[ApiCall], "ApiResponse"]


@dataclass(frozen=True, slots=True)
class Route:
    """A Fleet API endpoint: billing category and handler.

    ``region_exempt``: answered in any region (users/region). ``partner``:
    takes a partner token instead of a user token. ``billed``: counted by
    the ledger (partner endpoints are not).
    """

    name: str
    category: str
    handler: Handler
    needs_vehicle: bool = False
    region_exempt: bool = False
    partner: bool = False
    billed: bool = True


@dataclass(slots=True)
class ApiRequest:
    """An incoming Fleet API request, already parsed by the server.

    ``path`` has no region prefix; ``region`` is the prefix's region (None:
    the root URL, i.e. ``SimConfig.server_region``). ``signed``: a command
    that arrives signed (from the proxy).
    """

    method: str
    path: str
    route: Route
    authorization: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, Any] = field(default_factory=dict)
    base_url: str = ""  # the origin, scheme://host:port
    vin: str | None = None
    command: str | None = None
    region: str | None = None
    signed: bool = False
    public_key_pem: str | None = None  # fetched by the server for partner_accounts


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
    route = request.route
    record = RequestRecord(now, request.method, request.path, category=route.category)
    record.region = request.region or sim.config.server_region
    if request.vin is not None and sim.has_vehicle(request.vin):
        record.vin = request.vin
    response = _answer(sim, request, record, now)
    record.status = response.status
    if record.error is None and response.status >= 400:
        record.error = str(response.body.get("error"))
    if record.error is None and response.fault is not None:
        record.error = response.fault  # what the car said to a signed command
    if route.billed and (response.status != 401 or sim.config.bill_unauthorized):
        record.billed = sim.ledger.record(route.category, record.vin, response.status)
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
    record.sub = check.sub or None
    if not check.ok:
        return ApiResponse(401, {"error": check.error})
    route = request.route
    region = request.region or sim.config.server_region
    call = ApiCall(
        sim,
        None,
        check,
        None,
        request.query,
        request.body,
        request.base_url,
        region,
        request.command,
        request.signed,
        request.public_key_pem,
    )
    if check.partner_region is not None or route.partner:
        return _partner_call(call, route)
    account = sim.config.account(check.sub or "")
    assert account is not None  # noqa: S101 - tokens are issued to known accounts
    call.user = account
    refusal = _region_refusal(sim, call, route, check)
    if refusal is not None:
        return refusal
    if route.needs_vehicle:
        call.vehicle = sim.vehicle_of(account.sub, request.vin or "")
        if call.vehicle is None:
            return error(404, "not_found", "Vehicle not found for this account")
        wait = sim.rate_limiter.check(call.vehicle.vin, route.category, now)
        if wait is not None:
            return rate_limited(wait, sim.config.rate_limits.limit_for(route.category))
    return route.handler(call)


def _partner_call(call: ApiCall, route: Route) -> ApiResponse:
    """Partner tokens only reach partner routes, in their audience's region."""
    if not route.partner or call.token.partner_region is None:
        return error(403, UNAUTHORIZED_ERROR)
    if call.token.partner_region != call.region:
        return error(
            421,
            OUT_OF_REGION_ERROR.format(
                url=regional_url(call.origin, call.token.partner_region)
            ),
        )
    return route.handler(call)


def _region_refusal(
    sim: Simulator, call: ApiCall, route: Route, check: AccessCheck
) -> ApiResponse | None:
    """421 for another region's user, 412 until the app is registered there."""
    home = call.account.region
    if home != call.region and not route.region_exempt:
        return error(
            421, OUT_OF_REGION_ERROR.format(url=regional_url(call.origin, home))
        )
    if not sim.partners.is_registered(check.client_id, home):
        return error(412, NOT_REGISTERED_ERROR.format(url=call.base_url))
    return None
