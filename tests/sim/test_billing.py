"""Billing: categories, prices, what is billed and what is not."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.exceptions import RateLimited, ServiceUnavailable, VehicleOffline
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet

from tesla_fleet_sim import (
    DEFAULT_VIN,
    Ledger,
    RunningSimulator,
    SimClock,
    SimConfig,
    Simulator,
    running_simulator,
)
from tesla_fleet_sim.billing import is_billable


async def test_counts_and_prices(
    car_api: VehicleFleet[TeslaFleetApi],
    sim: Simulator,
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    tokens: dict[str, Any],
) -> None:
    for _ in range(3):
        await car_api.vehicle_data(["charge_state"])
    await car_api.set_charge_limit(70)
    await car_api.honk_horn()
    await car_api.wake_up()
    await car_api.vehicle()
    await car_api.list()
    async with session.post(
        server.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "sim-client-id",
        },
    ) as resp:
        assert resp.status == 200
    async with session.get(f"{server.url}/_sim/state") as resp:
        assert resp.status == 200
    assert sim.ledger.counts == {"data": 3, "command": 2, "wake": 1, "state_check": 2}
    assert sim.ledger.cost_usd() == pytest.approx(0.006 + 0.002 + 0.02 + 0.004)
    assert sim.ledger.cost_usd(bill_state_checks=False) == pytest.approx(0.028)
    # GET /vehicles names no vehicle, so one state check is not per vehicle.
    per_vehicle = {"data": 3, "command": 2, "wake": 1, "state_check": 1}
    assert sim.ledger.vehicle_counts(DEFAULT_VIN) == per_vehicle
    assert sim.ledger.vehicle_counts("nope") == {
        "data": 0,
        "command": 0,
        "wake": 0,
        "state_check": 0,
    }
    assert sim.ledger.by_vehicle == {DEFAULT_VIN: per_vehicle}
    summary = sim.ledger.as_dict()
    assert summary["cost_usd_state_checks_free"] == pytest.approx(0.028)
    assert summary["cost_by_category"]["wake"] == 0.02
    # Auth and admin calls are not billed; only API calls are logged as billed.
    assert [r.billed for r in sim.token_requests()] == [False]
    assert len(sim.api_requests()) == 8
    assert all(r.billed for r in sim.api_requests())


async def test_408_and_429_billed_5xx_not(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator
) -> None:
    sim.vehicle().fall_asleep()
    with pytest.raises(VehicleOffline):
        await car_api.vehicle_data()
    sim.config.rate_limits.wake = 0
    with pytest.raises(RateLimited):
        await car_api.wake_up()
    sim.faults.api_status = 503
    with pytest.raises(ServiceUnavailable):
        await car_api.vehicle_data()
    assert sim.ledger.counts == {"data": 1, "command": 0, "wake": 1, "state_check": 0}
    assert sim.ledger.unbilled == 1
    assert [r.billed for r in sim.api_requests()] == [True, True, False]
    assert sim.api_requests("wake")[0].status == 429


async def test_state_checks_free_but_counted(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    sim = Simulator(SimConfig(bill_state_checks=False), clock)
    tokens = sim.issue_tokens()
    async with running_simulator(sim) as server:
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        for path in ("/api/1/vehicles", f"/api/1/vehicles/{DEFAULT_VIN}"):
            async with session.get(server.url + path, headers=headers) as resp:
                assert resp.status == 200
    assert sim.ledger.counts["state_check"] == 2
    assert sim.ledger.cost_usd() == 0
    assert sim.ledger.cost_usd(bill_state_checks=True) == pytest.approx(0.004)


def test_ledger_reset_and_unknown_status() -> None:
    config = SimConfig()
    ledger = Ledger(config)
    assert ledger.record("data", None, 200)
    assert not ledger.record("data", None, 502)
    assert ledger.counts["data"] == 1
    assert ledger.by_vehicle == {}
    ledger.reset()
    assert ledger.counts["data"] == 0
    assert ledger.unbilled == 0
    assert is_billable(499)
    assert not is_billable(500)


def test_reset_accounting(sim: Simulator) -> None:
    sim.ledger.record("wake", DEFAULT_VIN, 200)
    sim.reset_accounting()
    assert sim.ledger.cost_usd() == 0
    assert sim.requests == []


async def test_unauthorized_billing_switch(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator, clock: SimClock
) -> None:
    from tesla_fleet_api.exceptions import OAuthExpired

    clock.advance(timedelta(hours=9))
    with pytest.raises(OAuthExpired):
        await car_api.vehicle_data()
    assert sim.ledger.counts["data"] == 1
    sim.config.bill_unauthorized = False
    with pytest.raises(OAuthExpired):
        await car_api.vehicle_data()
    assert sim.ledger.counts["data"] == 1
    assert sim.ledger.unbilled == 0
    assert [r.billed for r in sim.api_requests()] == [True, False]
