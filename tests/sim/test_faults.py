"""Faults: failing or hanging token endpoint, injected errors, latency."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.exceptions import (
    DeviceUnexpectedResponse,
    InternalServerError,
    RateLimited,
    ServiceUnavailable,
)
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet

from tesla_fleet_sim import (
    DEFAULT_CLIENT_ID,
    Faults,
    RunningSimulator,
    SimClock,
    Simulator,
    running_simulator,
)


def refresh_form(token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": DEFAULT_CLIENT_ID,
    }


async def test_token_endpoint_status(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    tokens: dict[str, Any],
) -> None:
    sim.faults.token_endpoint_status = 503
    async with session.post(
        server.token_url, data=refresh_form(tokens["refresh_token"])
    ) as resp:
        assert resp.status == 503
        assert (await resp.json())["error"] == "temporarily_unavailable"
    sim.faults.token_endpoint_status = 500
    async with session.post(
        server.token_url, data=refresh_form(tokens["refresh_token"])
    ) as resp:
        assert (await resp.json())["error"] == "server_error"
    sim.faults.token_endpoint_status = 429
    async with session.post(
        server.token_url, data=refresh_form(tokens["refresh_token"])
    ) as resp:
        assert (await resp.json())["error"] == "rate_limited"
        assert resp.headers["Retry-After"] == "60"
    sim.faults.token_endpoint_status = None
    # The failed attempts did not consume the refresh token.
    async with session.post(
        server.token_url, data=refresh_form(tokens["refresh_token"])
    ) as resp:
        assert resp.status == 200
    assert [r.status for r in sim.token_requests()] == [503, 500, 429, 200]


async def test_token_endpoint_hang_hits_client_timeout(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    tokens: dict[str, Any],
) -> None:
    sim.faults.token_endpoint_hang = True
    with pytest.raises(asyncio.TimeoutError):
        async with session.post(
            server.token_url,
            data=refresh_form(tokens["refresh_token"]),
            timeout=aiohttp.ClientTimeout(total=0.2),
        ):
            pass
    record = sim.token_requests()[-1]
    assert (record.status, record.error) == (0, "hang")
    sim.faults.token_endpoint_hang = False
    async with session.post(
        server.token_url, data=refresh_form(tokens["refresh_token"])
    ) as resp:
        assert resp.status == 200


async def test_hang_released_when_cleared(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    tokens: dict[str, Any],
) -> None:
    sim.faults.token_endpoint_hang = True

    async def call() -> int:
        async with session.post(
            server.token_url, data=refresh_form(tokens["refresh_token"])
        ) as resp:
            return resp.status

    task = asyncio.create_task(call())
    await asyncio.sleep(0.1)
    assert not task.done()
    sim.faults.token_endpoint_hang = False
    assert await task == 200


async def test_hang_ends_when_server_stops(
    clock: SimClock,
    session: aiohttp.ClientSession,
    sim: Simulator,
    tokens: dict[str, Any],
) -> None:
    sim.faults.token_endpoint_hang = True
    async with running_simulator(sim) as server:

        async def call() -> int:
            async with session.post(
                server.token_url, data=refresh_form(tokens["refresh_token"])
            ) as resp:
                return resp.status

        task = asyncio.create_task(call())
        await asyncio.sleep(0.1)
    assert await task == 503


async def test_fail_next(car_api: VehicleFleet[TeslaFleetApi], sim: Simulator) -> None:
    sim.faults.fail_next("/vehicle_data", 500, count=2)
    for _ in range(2):
        with pytest.raises(InternalServerError):
            await car_api.vehicle_data()
    await car_api.vehicle_data()
    sim.faults.fail_next("vehicle_data", 429)
    with pytest.raises(RateLimited) as err:
        await car_api.vehicle_data()
    limited = err.value.data
    assert isinstance(limited, dict)
    assert limited["after"] == "60"
    sim.faults.fail_next("wake_up", 503, body={"error": "custom"})
    with pytest.raises(ServiceUnavailable) as err2:
        await car_api.wake_up()
    assert err2.value.data == {"error": "custom"}
    sim.faults.fail_next("vehicle_data", 418)
    with pytest.raises(Exception) as err3:  # noqa: PT011 - the library's generic error
        await car_api.vehicle_data()
    assert "418" in repr(err3.value) or getattr(err3.value, "status", None) == 418
    sim.faults.fail_next("vehicle_data", 540)
    with pytest.raises(DeviceUnexpectedResponse) as err4:
        await car_api.vehicle_data()
    unexpected = err4.value.data
    assert isinstance(unexpected, dict)
    assert unexpected["error"] == "error"
    assert [r.status for r in sim.api_requests()] == [500, 500, 200, 429, 503, 418, 540]
    assert sim.faults.injected == []


async def test_fail_next_on_auth_paths(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    tokens: dict[str, Any],
) -> None:
    sim.faults.fail_next("/oauth2/v3/token", 400, body={"error": "invalid_grant"})
    async with session.post(
        server.token_url, data=refresh_form(tokens["refresh_token"])
    ) as resp:
        assert (resp.status, await resp.json()) == (400, {"error": "invalid_grant"})
    sim.faults.fail_next("/authorize", 500)
    async with session.get(server.authorize_url, allow_redirects=False) as resp:
        assert resp.status == 500


async def test_latency(
    session: aiohttp.ClientSession, server: RunningSimulator, sim: Simulator
) -> None:
    sim.faults.latency = 0.2
    started = time.perf_counter()
    async with session.get(f"{server.url}/status") as resp:
        assert resp.status == 200
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    async with session.get(f"{server.url}/_sim/state") as resp:
        assert resp.status == 200
    assert time.perf_counter() - started < 0.2


def test_faults_object() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="count"):
        faults.fail_next("x", 500, count=0)
    faults.update(
        {
            "api_status": 502,
            "latency": 0.5,
            "token_endpoint_hang": True,
            "fail_next": {"path": "/x", "status": 500, "count": 2},
        }
    )
    assert faults.as_dict()["injected"] == [
        {"path_substring": "/x", "status": 500, "remaining": 2, "body": None}
    ]
    assert faults.take("/y") is None
    faults.update({"clear": True})
    assert faults.as_dict() == {
        "token_endpoint_status": None,
        "token_endpoint_hang": False,
        "api_status": None,
        "latency": 0.0,
        "injected": [],
    }


async def test_hang_waiters_without_a_server() -> None:
    faults = Faults()
    await faults.wait_while_hanging()  # no hang: returns at once

    faults.token_endpoint_hang = True
    cancelled = asyncio.create_task(faults.wait_while_hanging())
    released = asyncio.create_task(faults.wait_while_hanging())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert not released.done()
    faults.release_waiters()
    await released
    assert faults.token_endpoint_hang  # released, but the fault stays on
    faults.release_waiters()  # nothing left to wake
