"""A simulated tesla-http-proxy: HTTPS only, signs REST commands for the car.

It takes the same REST JSON commands as the Fleet API
(``POST /api/1/vehicles/{vin}/command/{name}``), checks their parameters like
the real proxy, and hands them to the simulator as *signed* commands (in
process, standing in for the Vehicle Command Protocol exchange; billed as a
command like the real ``signed_command`` request). Every other ``/api/1``
request is forwarded over HTTP to the simulator's base URL of the account's
region (the token's ``ou_code``), as the real proxy forwards to Tesla.

Answers follow the real proxy's shapes: ``{"response", "error",
"error_description"}``; an asleep car or an unpaired key is HTTP 500, a car
that does not speak the protocol (``command_signing: off``) gets the plain
REST command, forwarded errors keep their status with the status text as
error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
import json
from typing import Any

import aiohttp
from aiohttp import web

from . import api, commands, endpoints, jwt
from .admin import SIM_KEY
from .config import REGIONS
from .regions import regional_url
from .simulator import Simulator

VIN_LENGTH = 17
NO_TOKEN_ERROR = "client did not provide an OAuth token"
BAD_TOKEN_ERROR = "invalid OAuth token"
BAD_VIN_ERROR = "expected 17-character VIN in path (do not user Fleet API ID)"
PARSE_ERROR = "error occurred while parsing request parameters"
NOT_AWAKE_ERROR = "vehicle unavailable: vehicle is offline or asleep"
NOT_PAIRED_ERROR = (
    "vehicle rejected request: your public key has not been paired with the vehicle"
)
NOT_AWAKE_STATUSES = (HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.SERVICE_UNAVAILABLE)
HOP_HEADERS = ("Host", "Content-Length", "Transfer-Encoding", "Connection")


@dataclass(slots=True)
class ProxyState:
    """The simulator behind the proxy and what the proxy learnt."""

    sim: Simulator
    upstream: str  # the simulator's origin, http://host:port
    unsupported: set[str] = field(default_factory=set)  # VINs without the protocol
    session: aiohttp.ClientSession | None = None


PROXY_KEY = web.AppKey("proxy_state", ProxyState)


def proxy_error(status: int, message: str) -> web.Response:
    """Return an error in the proxy's shape."""
    body = {"response": None, "error": message, "error_description": ""}
    return web.json_response(body, status=status)


def _result(status: int, result: bool, reason: str) -> web.Response:
    body: dict[str, Any] = {"response": {"result": result, "reason": reason}}
    if not result:
        body |= {"error": "", "error_description": ""}
    return web.json_response(body, status=status)


def _token_region(authorization: str) -> str | None:
    """Return the region a user token names (its ``ou_code``), or None."""
    try:
        claims = jwt.decode_unverified(authorization.removeprefix("Bearer ").strip())
    except jwt.InvalidJWTError:
        return None
    region = str(claims.get("ou_code", "")).lower()
    return region if region in REGIONS else None


async def handle(request: web.Request) -> web.StreamResponse:
    """Every ``/api/1`` request reaching the proxy."""
    state = request.app[PROXY_KEY]
    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("Bearer "):
        return proxy_error(403, NO_TOKEN_ERROR)
    region = _token_region(authorization)
    if region is None:
        return proxy_error(403, BAD_TOKEN_ERROR)
    parts = request.path.split("/")
    if len(parts) == 7 and parts[3] == "vehicles" and parts[5] == "command":
        vin, name = parts[4], parts[6]
        if len(vin) != VIN_LENGTH:
            return proxy_error(404, BAD_VIN_ERROR)
        if vin not in state.unsupported:
            return await _signed_command(request, state, region, vin, name)
    return await _forward(request, state, region)


async def _signed_command(
    request: web.Request, state: ProxyState, region: str, vin: str, name: str
) -> web.StreamResponse:
    if request.method != "POST":
        return proxy_error(405, HTTPStatus.METHOD_NOT_ALLOWED.phrase)
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return web.Response(status=400, text=PARSE_ERROR)
    if not isinstance(body, dict):
        return web.Response(status=400, text=PARSE_ERROR)
    if not commands.is_known(name):
        return proxy_error(400, "invalid_command")
    try:
        commands.check_params(name, body)
    except commands.ParamError as err:
        if err.nominal:
            return _result(400, False, err.message)
        return proxy_error(400, err.message)
    answer = api.handle(
        state.sim,
        api.ApiRequest(
            method="POST",
            path=f"/api/1/vehicles/{vin}/signed_command",
            route=endpoints.COMMAND_ROUTE,
            authorization=request.headers["Authorization"],
            body=body,
            base_url=state.upstream,
            vin=vin,
            command=name,
            region=region,
            signed=True,
        ),
    )
    if answer.status == HTTPStatus.UNPROCESSABLE_ENTITY:
        state.unsupported.add(vin)  # the car knows only REST commands
        return await _forward(request, state, region, raw)
    if answer.fault == endpoints.KEY_NOT_PAIRED_FAULT:
        return proxy_error(500, NOT_PAIRED_ERROR)
    if answer.status in NOT_AWAKE_STATUSES:
        return proxy_error(500, NOT_AWAKE_ERROR)
    if answer.status != HTTPStatus.OK:
        return web.json_response(answer.body, status=answer.status)
    result = answer.body["response"]
    return _result(200, bool(result["result"]), str(result["reason"]))


async def _forward(
    request: web.Request, state: ProxyState, region: str, raw: bytes | None = None
) -> web.StreamResponse:
    """Send the request on to the simulator, as the proxy does to Tesla."""
    assert state.session is not None  # noqa: S101 - set while the app runs
    if raw is None:
        raw = await request.read()
    headers = {k: v for k, v in request.headers.items() if k not in HOP_HEADERS}
    if request.remote:
        headers["X-Forwarded-For"] = request.remote
    url = regional_url(state.upstream, region) + request.path_qs
    async with state.session.request(
        request.method, url, data=raw or None, headers=headers
    ) as upstream:
        payload = await upstream.read()
        if upstream.status != HTTPStatus.OK:
            return proxy_error(upstream.status, HTTPStatus(upstream.status).phrase)
        return web.Response(
            status=200, body=payload, content_type=upstream.content_type
        )


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    state = app[PROXY_KEY]
    async with aiohttp.ClientSession() as session:
        state.session = session
        yield
    state.session = None


def build_proxy_app(sim: Simulator, upstream: str) -> web.Application:
    """Create the proxy's aiohttp application in front of ``upstream``."""
    app = web.Application()
    app[SIM_KEY] = sim
    app[PROXY_KEY] = ProxyState(sim, upstream.rstrip("/"))
    app.cleanup_ctx.append(_client_session)
    app.router.add_route("*", "/api/1/{tail:.*}", handle)
    return app
