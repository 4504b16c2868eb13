"""Fixtures for the simulator's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
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
    running_simulator,
)

# A Monday, 13:00 in Warsaw.
START = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _allow_loopback(socket_enabled: None) -> None:
    """The simulator is a real server on 127.0.0.1 (HA's plugin blocks sockets)."""


@pytest.fixture
def clock() -> SimClock:
    return SimClock.manual(START)


@pytest.fixture
def sim(clock: SimClock) -> Simulator:
    return Simulator(clock=clock)


@pytest.fixture
async def server(sim: Simulator) -> AsyncIterator[RunningSimulator]:
    async with running_simulator(sim) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def tokens(sim: Simulator) -> dict[str, Any]:
    return sim.issue_tokens()


@pytest.fixture
def fleet(
    session: aiohttp.ClientSession, server: RunningSimulator, tokens: dict[str, Any]
) -> TeslaFleetApi:
    return TeslaFleetApi(
        session, access_token=tokens["access_token"], server=server.url
    )


@pytest.fixture
def car_api(fleet: TeslaFleetApi) -> VehicleFleet[TeslaFleetApi]:
    return fleet.vehicles.createFleet(DEFAULT_VIN)
