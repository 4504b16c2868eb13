"""The aiohttp application: auth (/oauth2/v3), Fleet API (/api/1) and admin (/_sim)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import html
from http import HTTPStatus
import logging
import re
from typing import Any

from aiohttp import web

from . import api, endpoints
from .admin import SIM_KEY, add_admin_routes, read_json
from .billing import RequestRecord
from .config import REGIONS
from .regions import split_region
from .simulator import Simulator
from .tokens import AuthorizeError

_LOGGER = logging.getLogger(__package__)

ADMIN_PREFIX = "/_sim/"
VIN_PATTERN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
TOKEN_FAULT_ERRORS = {
    429: "rate_limited",
    500: "server_error",
    503: "temporarily_unavailable",
}
TOKEN_RETRY_AFTER_SECONDS = 60  # what a rate-limited token request is told to wait
NO_STORE = {"Cache-Control": "no-store"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class ServerState:
    """Per-server flags (set when the server shuts down)."""

    closing: bool = False


STATE_KEY = web.AppKey("server_state", ServerState)


def mask_path(path: str) -> str:
    """Hide VINs in a path before it is logged."""
    return VIN_PATTERN.sub("<vin>", path)


@web.middleware
async def _log_and_delay(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Update the world, add the latency fault, log method, masked path and status."""
    sim = request.app[SIM_KEY]
    sim.update()
    try:
        response = await handler(request)
    except web.HTTPException as err:
        _LOGGER.debug(
            "%s %s -> %s", request.method, mask_path(request.path), err.status
        )
        raise
    latency = sim.faults.latency
    if latency > 0 and not request.path.startswith(ADMIN_PREFIX):
        await asyncio.sleep(latency)
    _LOGGER.debug(
        "%s %s -> %s", request.method, mask_path(request.path), response.status
    )
    return response


# --- auth ---------------------------------------------------------------------


def _authorize_error_page(message: str) -> web.Response:
    text = (
        "<!DOCTYPE html><html><head><title>Tesla - Sign In</title></head>"
        f"<body><h1>Something went wrong</h1><p>{html.escape(message)}</p></body></html>"
    )
    return web.Response(status=400, text=text, content_type="text/html")


async def authorize(request: web.Request) -> web.StreamResponse:
    """GET /oauth2/v3/authorize: auto-approve and redirect with a code."""
    sim = request.app[SIM_KEY]
    path = split_region(request.path)[1]
    record = RequestRecord(sim.update(), request.method, path)
    sim.log_request(record)
    if (failure := sim.faults.take(request.path)) is not None:
        record.status = failure.status
        return web.json_response(
            failure.body or {"error": "injected"}, status=failure.status
        )
    try:
        location = sim.tokens.authorize(request.query, sim.authorize_account)
    except AuthorizeError as err:
        record.status, record.error = 400, str(err)
        return _authorize_error_page(str(err))
    record.status = 302
    return web.Response(status=302, headers={"Location": location})


async def _read_form(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        data = await read_json(request)
    else:
        data = dict(await request.post())
    return {str(k): str(v) for k, v in data.items()}


def _token_fault(status: int, body: dict[str, str] | None = None) -> web.Response:
    error = TOKEN_FAULT_ERRORS.get(
        status, "server_error" if status >= 500 else "invalid_request"
    )
    payload = body or {"error": error, "error_description": "Simulated fault"}
    headers = dict(NO_STORE)
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        headers["Retry-After"] = str(TOKEN_RETRY_AFTER_SECONDS)
    return web.json_response(payload, status=status, headers=headers)


async def token(request: web.Request) -> web.Response:
    """POST /oauth2/v3/token: authorization_code and refresh_token grants."""
    sim = request.app[SIM_KEY]
    form = await _read_form(request)
    path = split_region(request.path)[1]
    record = RequestRecord(
        sim.update(), request.method, path, grant_type=form.get("grant_type")
    )
    sim.log_request(record)
    if (failure := sim.faults.take(request.path)) is not None:
        record.status, record.error = failure.status, "injected"
        return _token_fault(failure.status, failure.body)
    if sim.faults.token_endpoint_status is not None:
        record.status, record.error = sim.faults.token_endpoint_status, "fault"
        return _token_fault(sim.faults.token_endpoint_status)
    if sim.faults.token_endpoint_hang:
        record.error = "hang"
        state = request.app[STATE_KEY]
        await sim.faults.wait_while_hanging()
        if state.closing:
            record.status = 503
            return _token_fault(503)
    outcome = sim.tokens.token(form)
    record.status, record.sub = outcome.status, outcome.sub
    record.error, record.replay = outcome.error, outcome.replay
    return web.json_response(outcome.body, status=outcome.status, headers=NO_STORE)


# --- Fleet API ------------------------------------------------------------------


async def _public_key_for(sim: Simulator, body: dict[str, Any]) -> str | None:
    """Ask the registry what a partner_accounts domain serves (None: nothing)."""
    domain = body.get("domain")
    if not isinstance(domain, str) or not domain.strip():
        return None
    return await sim.partners.fetch_public_key(domain.strip().lower())


def _api_handler(route: api.Route) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        sim = request.app[SIM_KEY]
        region, path = split_region(request.path)
        body = await read_json(request)
        api_request = api.ApiRequest(
            method=request.method,
            path=path,
            route=route,
            authorization=request.headers.get("Authorization"),
            query=dict(request.query),
            body=body,
            base_url=str(request.url.origin()),
            vin=request.match_info.get("vin"),
            command=request.match_info.get("command"),
            region=region,
        )
        if route is endpoints.PARTNER_REGISTER:
            api_request.public_key_pem = await _public_key_for(sim, body)
        response = api.handle(sim, api_request)
        return web.json_response(
            response.body, status=response.status, headers=response.headers
        )

    return handle


async def status(request: web.Request) -> web.Response:
    """GET /status: "ok" when the API is up."""
    return web.Response(text="ok")


API_ROUTES: tuple[tuple[str, str, api.Route], ...] = (
    ("GET", "/api/1/vehicles", endpoints.LIST_VEHICLES),
    ("POST", "/api/1/vehicles/fleet_status", endpoints.FLEET_STATUS),
    ("GET", "/api/1/vehicles/{vin}", endpoints.GET_VEHICLE),
    ("GET", "/api/1/vehicles/{vin}/vehicle_data", endpoints.VEHICLE_DATA),
    ("POST", "/api/1/vehicles/{vin}/wake_up", endpoints.WAKE_UP),
    ("POST", "/api/1/vehicles/{vin}/command/{command}", endpoints.COMMAND_ROUTE),
    ("POST", "/api/1/vehicles/{vin}/signed_command", endpoints.SIGNED_COMMAND),
    ("GET", "/api/1/users/region", endpoints.USER_REGION),
    ("GET", "/api/1/users/me", endpoints.USER_ME),
    ("GET", "/api/1/products", endpoints.PRODUCTS),
    ("POST", "/api/1/partner_accounts", endpoints.PARTNER_REGISTER),
    ("GET", "/api/1/partner_accounts/public_key", endpoints.PARTNER_PUBLIC_KEY),
    ("*", "/api/1/{tail:.*}", endpoints.NOT_FOUND),
)


def build_app(sim: Simulator) -> web.Application:
    """Create the aiohttp application serving ``sim``.

    Everything but the admin endpoints is served at the root (the region of
    ``server_region``) and under each region's prefix (``/na``, ``/eu``, ...).
    """
    app = web.Application(middlewares=[_log_and_delay])
    app[SIM_KEY] = sim
    app[STATE_KEY] = ServerState()
    router = app.router
    for prefix in ("", *(f"/{region}" for region in REGIONS)):
        router.add_get(f"{prefix}/status", status)
        router.add_get(f"{prefix}/oauth2/v3/authorize", authorize)
        router.add_post(f"{prefix}/oauth2/v3/token", token)
        for method, path, route in API_ROUTES:
            router.add_route(method, prefix + path, _api_handler(route))
    add_admin_routes(router)
    return app
