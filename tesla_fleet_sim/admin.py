"""Admin endpoints under /_sim (no auth, never billed): inspect and steer the world."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from .errors import SimulationError
from .geo import Location
from .simulator import Simulator
from .vehicle import SimVehicle

SIM_KEY = web.AppKey("simulator", Simulator)
DEFAULT_DRIVE_MINUTES = 20.0
SECONDS_PER_MINUTE = 60.0

VehicleAction = Callable[[SimVehicle, Mapping[str, Any]], object]


async def read_json(request: web.Request) -> dict[str, Any]:
    """Return the JSON object body ({} when absent or not an object)."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _duration(data: Mapping[str, Any]) -> timedelta:
    if "duration_seconds" in data:
        return timedelta(seconds=float(data["duration_seconds"]))
    return timedelta(minutes=float(data.get("minutes", DEFAULT_DRIVE_MINUTES)))


def _plug(data: Mapping[str, Any]) -> bool:
    return bool(data.get("plug_in_on_arrival", False))


VEHICLE_ACTIONS: dict[str, VehicleAction] = {
    "drive_home": lambda car, d: car.drive_home(_duration(d), _plug(d)),
    "drive_to_work": lambda car, d: car.drive_to_work(_duration(d), _plug(d)),
    "drive_to": lambda car, d: car.drive_to(
        Location(float(d["lat"]), float(d["lon"])), _duration(d), _plug(d)
    ),
    "plug_in": lambda car, d: car.plug_in(),
    "unplug": lambda car, d: car.unplug(),
    "sleep": lambda car, d: car.fall_asleep(),
    "offline": lambda car, d: car.go_offline(),
    "online": lambda car, d: car.come_online(),
    "set_battery": lambda car, d: car.set_battery(float(d["level"])),
    "grid_power": lambda car, d: car.set_grid_power(bool(d.get("available", True))),
    "pair_key": lambda car, d: car.pair_key(str(d["public_key"])),
    "unpair_key": lambda car, d: car.unpair_key(str(d["public_key"])),
    "pair_app_key": lambda car, d: car.set_app_key_paired(bool(d.get("paired", True))),
    "reboot": lambda car, d: car.reboot(),
}


def _fail(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def state(request: web.Request) -> web.Response:
    """GET /_sim/state[?requests=N]: the whole world."""
    raw = request.query.get("requests")
    limit = int(raw) if raw is not None and raw.isdigit() else None
    return web.json_response(request.app[SIM_KEY].to_dict(max_requests=limit))


async def clock(request: web.Request) -> web.Response:
    """POST /_sim/clock {"advance_seconds": N} or {"set": iso}: move a manual clock."""
    sim = request.app[SIM_KEY]
    data = await read_json(request)
    try:
        if "advance_seconds" in data:
            sim.clock.advance(timedelta(seconds=float(data["advance_seconds"])))
        elif "set" in data:
            sim.clock.set(datetime.fromisoformat(str(data["set"])))
        else:
            return _fail(400, "give advance_seconds or set")
    except SimulationError as err:
        return _fail(409, str(err))
    except ValueError as err:
        return _fail(400, str(err))
    return web.json_response({"now": sim.update().isoformat()})


async def vehicle_action(request: web.Request) -> web.Response:
    """POST /_sim/vehicles/{vin} {"action": ...}: make the car do something."""
    sim = request.app[SIM_KEY]
    vin = request.match_info["vin"]
    if not sim.has_vehicle(vin):
        return _fail(404, "unknown vehicle")
    data = await read_json(request)
    action = VEHICLE_ACTIONS.get(str(data.get("action")))
    if action is None:
        return _fail(400, f"action must be one of {sorted(VEHICLE_ACTIONS)}")
    car = sim.vehicle(vin)
    try:
        action(car, data)
    except SimulationError as err:
        return _fail(409, str(err))
    except (KeyError, TypeError, ValueError) as err:
        return _fail(400, f"bad parameters: {err}")
    return web.json_response({"vehicle": car.to_dict()})


def _account_or_404(request: web.Request) -> str | None:
    sub = request.match_info["sub"]
    return sub if request.app[SIM_KEY].config.account(sub) is not None else None


async def revoke(request: web.Request) -> web.Response:
    """POST /_sim/accounts/{sub}/revoke: every token of the account stops working."""
    sub = _account_or_404(request)
    if sub is None:
        return _fail(404, "unknown account")
    request.app[SIM_KEY].revoke_account(sub)
    return web.json_response({"revoked": sub})


async def issue_tokens(request: web.Request) -> web.Response:
    """POST /_sim/accounts/{sub}/tokens: log in without a browser."""
    sub = _account_or_404(request)
    if sub is None:
        return _fail(404, "unknown account")
    data = await read_json(request)
    client_id = data.get("client_id")
    sim = request.app[SIM_KEY]
    if client_id is not None and sim.config.client(str(client_id)) is None:
        return _fail(404, "unknown client")
    return web.json_response(sim.issue_tokens(sub, client_id))


async def authorize_as(request: web.Request) -> web.Response:
    """POST /_sim/accounts/{sub}/authorize: the account the authorize page logs in."""
    sub = _account_or_404(request)
    if sub is None:
        return _fail(404, "unknown account")
    request.app[SIM_KEY].authorize_account = sub
    return web.json_response({"authorize_account": sub})


async def faults(request: web.Request) -> web.Response:
    """POST /_sim/faults {fields..., "fail_next": {...}, "clear": true}."""
    sim = request.app[SIM_KEY]
    data = await read_json(request)
    try:
        sim.faults.update(data)
    except (KeyError, TypeError, ValueError) as err:
        return _fail(400, f"bad faults: {err}")
    return web.json_response(sim.faults.as_dict())


async def reset_accounting(request: web.Request) -> web.Response:
    """POST /_sim/reset_accounting: clear the ledger, request log and rate limits."""
    request.app[SIM_KEY].reset_accounting()
    return web.json_response({"reset": True})


def add_admin_routes(router: web.UrlDispatcher) -> None:
    """Register the /_sim endpoints."""
    router.add_get("/_sim/state", state)
    router.add_post("/_sim/clock", clock)
    router.add_post("/_sim/vehicles/{vin}", vehicle_action)
    router.add_post("/_sim/accounts/{sub}/revoke", revoke)
    router.add_post("/_sim/accounts/{sub}/tokens", issue_tokens)
    router.add_post("/_sim/accounts/{sub}/authorize", authorize_as)
    router.add_post("/_sim/faults", faults)
    router.add_post("/_sim/reset_accounting", reset_accounting)
