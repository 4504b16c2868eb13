"""The simulator following Home Assistant's (frozen) clock."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.exceptions import OAuthExpired, VehicleOffline

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import DEFAULT_VIN, SimClock, Simulator, running_simulator


async def test_follows_frozen_time(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    from homeassistant.helpers.aiohttp_client import async_get_clientsession

    freezer.move_to("2025-03-03 12:00:00+00:00")
    sim = Simulator(clock=SimClock.follow(dt_util.utcnow))
    tokens = sim.issue_tokens()
    async with running_simulator(sim) as server:
        session = async_get_clientsession(hass)
        api = TeslaFleetApi(
            session, access_token=tokens["access_token"], server=server.url
        )
        car = api.vehicles.createFleet(DEFAULT_VIN)
        await car.vehicle_data()
        freezer.tick(timedelta(minutes=16))
        with pytest.raises(VehicleOffline):
            await car.vehicle_data()
        assert sim.vehicle().asleep_since == dt_util.utcnow() - timedelta(minutes=1)
        freezer.tick(timedelta(hours=8))
        with pytest.raises(OAuthExpired):
            await car.vehicle()
    assert sim.api_requests()[-1].expired
