"""Admin endpoints under /_sim and server-level behaviour."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
import logging
from typing import Any

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet

from tesla_fleet_sim import (
    DEFAULT_VIN,
    RunningSimulator,
    SimClock,
    Simulator,
    SimVehicle,
    running_simulator,
)
from tesla_fleet_sim.server import mask_path

from .conftest import START


async def post(
    session: aiohttp.ClientSession, url: str, body: Any = None
) -> tuple[int, Any]:
    async with session.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def test_state(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    car_api: VehicleFleet[TeslaFleetApi],
) -> None:
    await car_api.vehicle()
    await car_api.vehicle_data()
    async with session.get(f"{server.url}/_sim/state") as resp:
        state = await resp.json()
    assert state["now"] == START.isoformat()
    assert state["clock"] == {"kind": "manual", "now": START.isoformat()}
    assert state["server_region"] == "eu"
    assert state["clients"] == [
        {"client_id": "sim-client-id", "client_secret": "sim-client-secret"}
    ]
    assert state["accounts"][0]["vehicles"] == [DEFAULT_VIN]
    assert state["vehicles"][DEFAULT_VIN]["state"] == "online"
    assert state["ledger"]["counts"]["data"] == 1
    assert state["request_count"] == 2
    assert [r["path"] for r in state["requests"]] == [
        f"/api/1/vehicles/{DEFAULT_VIN}",
        f"/api/1/vehicles/{DEFAULT_VIN}/vehicle_data",
    ]
    assert state["auth"]["chains"][0]["rotations"] == 0
    assert state["faults"]["api_status"] is None
    async with session.get(f"{server.url}/_sim/state?requests=1") as resp:
        assert len((await resp.json())["requests"]) == 1
    async with session.get(f"{server.url}/_sim/state?requests=0") as resp:
        assert (await resp.json())["requests"] == []
    # Admin calls are neither billed nor logged.
    assert len(sim.requests) == 2


async def test_clock(
    session: aiohttp.ClientSession, server: RunningSimulator, sim: Simulator
) -> None:
    status, body = await post(
        session, f"{server.url}/_sim/clock", {"advance_seconds": 60}
    )
    assert (status, body["now"]) == (200, (START + timedelta(minutes=1)).isoformat())
    target = START + timedelta(hours=1)
    status, body = await post(
        session, f"{server.url}/_sim/clock", {"set": target.isoformat()}
    )
    assert body["now"] == target.isoformat()
    assert sim.vehicle().state == "asleep"
    status, _ = await post(
        session, f"{server.url}/_sim/clock", {"set": START.isoformat()}
    )
    assert status == 400
    status, _ = await post(session, f"{server.url}/_sim/clock", {})
    assert status == 400
    status, _ = await post(session, f"{server.url}/_sim/clock", {"set": "not a date"})
    assert status == 400


async def test_clock_is_manual_only(session: aiohttp.ClientSession) -> None:
    sim = Simulator(clock=SimClock.real())
    async with running_simulator(sim) as server:
        status, body = await post(
            session, f"{server.url}/_sim/clock", {"advance_seconds": 1}
        )
    assert status == 409
    assert "cannot be moved" in body["error"]


@pytest.mark.parametrize(
    ("body", "check"),
    [
        ({"action": "drive_home", "minutes": 5}, lambda car: car.is_driving),
        (
            {"action": "drive_to_work", "duration_seconds": 60},
            lambda car: car.is_driving,
        ),
        ({"action": "drive_to", "lat": 52.3, "lon": 21.1}, lambda car: car.is_driving),
        ({"action": "plug_in"}, lambda car: car.plugged_in),
        ({"action": "unplug"}, lambda car: not car.plugged_in),
        ({"action": "sleep"}, lambda car: car.state == "asleep"),
        ({"action": "offline"}, lambda car: car.state == "offline"),
        ({"action": "online"}, lambda car: car.state == "online"),
        ({"action": "set_battery", "level": 12}, lambda car: car.battery_level == 12),
        ({"action": "grid_power", "available": False}, lambda car: True),
    ],
)
async def test_vehicle_actions(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    body: dict[str, Any],
    check: Callable[[SimVehicle], bool],
) -> None:
    status, result = await post(
        session, f"{server.url}/_sim/vehicles/{DEFAULT_VIN}", body
    )
    assert status == 200, result
    assert result["vehicle"]["vin"] == DEFAULT_VIN
    assert check(sim.vehicle())


async def test_vehicle_action_errors(
    session: aiohttp.ClientSession, server: RunningSimulator
) -> None:
    url = f"{server.url}/_sim/vehicles/{DEFAULT_VIN}"
    status, _ = await post(
        session, f"{server.url}/_sim/vehicles/NOPE", {"action": "sleep"}
    )
    assert status == 404
    status, body = await post(session, url, {"action": "explode"})
    assert status == 400
    assert "drive_home" in body["error"]
    status, _ = await post(session, url, {"action": "set_battery"})
    assert status == 400
    await post(session, url, {"action": "drive_home"})
    status, _ = await post(session, url, {"action": "sleep"})
    assert status == 409
    async with session.post(url, data=b"[1, 2]") as resp:
        assert resp.status == 400


async def test_accounts(
    session: aiohttp.ClientSession, server: RunningSimulator, sim: Simulator
) -> None:
    base = f"{server.url}/_sim/accounts"
    status, tokens = await post(session, f"{base}/sim-account-1/tokens")
    assert status == 200
    assert tokens["token_type"] == "Bearer"
    status, _ = await post(
        session, f"{base}/sim-account-1/tokens", {"client_id": "sim-client-id"}
    )
    assert status == 200
    status, _ = await post(session, f"{base}/sim-account-1/tokens", {"client_id": "x"})
    assert status == 404
    status, body = await post(session, f"{base}/sim-account-1/authorize")
    assert body == {"authorize_account": "sim-account-1"}
    assert sim.authorize_account == "sim-account-1"
    status, body = await post(session, f"{base}/sim-account-1/revoke")
    assert body == {"revoked": "sim-account-1"}
    assert all(chain.revoked for chain in sim.tokens.chains("sim-account-1"))
    for action in ("revoke", "tokens", "authorize"):
        status, _ = await post(session, f"{base}/nobody/{action}")
        assert status == 404


async def test_faults_and_reset(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    car_api: VehicleFleet[TeslaFleetApi],
) -> None:
    await car_api.vehicle()
    status, body = await post(
        session,
        f"{server.url}/_sim/faults",
        {"api_status": 503, "fail_next": {"path": "/x", "status": 500}},
    )
    assert status == 200
    assert body["api_status"] == 503
    assert sim.faults.api_status == 503
    status, _ = await post(
        session, f"{server.url}/_sim/faults", {"fail_next": {"path": "/x"}}
    )
    assert status == 400
    status, body = await post(session, f"{server.url}/_sim/faults", {"clear": True})
    assert body["api_status"] is None
    status, _ = await post(session, f"{server.url}/_sim/reset_accounting")
    assert status == 200
    assert sim.ledger.counts["state_check"] == 0
    assert sim.requests == []


async def test_logs_mask_vins(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    car_api: VehicleFleet[TeslaFleetApi],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tesla_fleet_sim")
    await car_api.vehicle_data()
    async with session.get(f"{server.url}/nowhere") as resp:
        assert resp.status == 404
    messages = [r.getMessage() for r in caplog.records if r.name == "tesla_fleet_sim"]
    assert any("/api/1/vehicles/<vin>/vehicle_data -> 200" in m for m in messages)
    assert any("/nowhere -> 404" in m for m in messages)
    assert not any(DEFAULT_VIN in m for m in messages)


def test_mask_path() -> None:
    assert (
        mask_path(f"/api/1/vehicles/{DEFAULT_VIN}/wake_up")
        == "/api/1/vehicles/<vin>/wake_up"
    )
    assert mask_path("/api/1/vehicles") == "/api/1/vehicles"
