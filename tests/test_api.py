"""Fleet API client: error mapping, billing counts and retry."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker import api, errors
from custom_components.tesla_scout_worker.errors import (
    CommandFailedError,
    FleetError,
    FleetUnavailableError,
    RateLimitedError,
    SigningRequiredError,
    TokenNotReadyError,
    UnauthorizedError,
    VehicleAsleepError,
    WrongRegionError,
)
from custom_components.tesla_scout_worker.token_manager import TokenUnavailableError
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from tesla_fleet_sim import Simulator

from .common import billed


@pytest.fixture
def vin(sim: Simulator) -> str:
    """Return the simulated car's VIN."""
    return sim.vehicle().vin


def counts(entry: MockConfigEntry) -> dict[str, int]:
    """Return the entry's usage counters."""
    return billed(entry.runtime_data.usage.counts)


async def test_vehicle_data_and_billing(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator, vin: str
) -> None:
    """Live data is fetched and every billed call is counted like the ledger."""
    client = loaded_entry.runtime_data.client
    state = await client.async_vehicle_state(vin)
    assert state["state"] == "online"
    data = await client.async_vehicle_data(vin)
    assert data["charge_state"]["battery_level"] == round(sim.vehicle().battery_level)
    assert "latitude" in data["drive_state"]
    assert await client.async_command(vin, "set_charge_limit", percent=70)
    assert sim.vehicle().charge_limit_soc == 70
    assert counts(loaded_entry) == sim.ledger.counts


async def test_asleep_vehicle(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator, vin: str
) -> None:
    """408 becomes VehicleAsleepError and is billed; wake_up is a wake."""
    client = loaded_entry.runtime_data.client
    sim.vehicle().fall_asleep()
    with pytest.raises(VehicleAsleepError):
        await client.async_vehicle_data(vin)
    with pytest.raises(VehicleAsleepError):
        await client.async_command(vin, "charge_start")
    assert await client.async_wake_up(vin) in ("asleep", "online")
    assert counts(loaded_entry) == sim.ledger.counts
    assert counts(loaded_entry)["wake"] == 1


async def test_command_refused(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, vin: str
) -> None:
    """result false becomes CommandFailedError with the car's reason."""
    client = loaded_entry.runtime_data.client
    with pytest.raises(CommandFailedError) as err:
        await client.async_command(vin, "remove_charge_schedule", id=999)
    assert err.value.command == "remove_charge_schedule"
    assert err.value.reason


async def test_only_charging_commands(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator, vin: str
) -> None:
    """Anything but the charging commands is refused before a request is made."""
    client = loaded_entry.runtime_data.client
    before = len(sim.api_requests())
    for command in ("door_unlock", "remote_start_drive", "_vehicle", "vin"):
        with pytest.raises(ValueError, match="Not a command"):
            await client.async_command(vin, command)
    assert len(sim.api_requests()) == before


async def test_rate_limited(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator, vin: str
) -> None:
    """429 carries Retry-After and is billed."""
    client = loaded_entry.runtime_data.client
    sim.faults.fail_next("/vehicle_data", 429)
    with pytest.raises(RateLimitedError) as err:
        await client.async_vehicle_data(vin)
    assert err.value.retry_after >= 1
    assert counts(loaded_entry) == sim.ledger.counts


async def test_server_errors_not_billed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator, vin: str
) -> None:
    """5xx is unavailable and not counted."""
    client = loaded_entry.runtime_data.client
    before = counts(loaded_entry)
    sim.faults.api_status = 503
    with pytest.raises(FleetUnavailableError):
        await client.async_vehicle_data(vin)
    assert counts(loaded_entry) == before


async def test_other_errors(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator, vin: str
) -> None:
    """421 in the region Tesla names too and other 4xx are mapped to our errors."""
    client = loaded_entry.runtime_data.client
    sim.faults.fail_next("/vehicle_data", 421, count=2)
    with pytest.raises(WrongRegionError):
        await client.async_vehicle_data(vin)
    sim.faults.fail_next("/vehicle_data", 404)
    with pytest.raises(FleetError):
        await client.async_vehicle_data(vin)


async def test_second_401_gives_up(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """A fresh token refused again is not retried in a loop."""
    client = loaded_entry.runtime_data.client
    sim.faults.fail_next("/api/1/vehicles", 401, count=2)
    with pytest.raises(UnauthorizedError):
        await client.async_list_vehicles()
    assert len(sim.token_requests("refresh_token")) == 1


async def test_timeout(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
    vin: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request that takes too long is unavailable, not a crash."""
    monkeypatch.setattr(api, "REQUEST_TIMEOUT", 0.05)
    sim.faults.latency = 0.3
    with pytest.raises(FleetUnavailableError):
        await loaded_entry.runtime_data.client.async_vehicle_state(vin)
    sim.faults.latency = 0.0


def test_retry_after_parsing() -> None:
    """Retry-After falls back to the reset header, then to a minute."""
    from tesla_fleet_api.exceptions import RateLimited

    assert errors._retry_after(RateLimited({"after": "12", "reset": None})) == 12
    assert errors._retry_after(RateLimited({"after": None, "reset": "30"})) == 30
    assert errors._retry_after(RateLimited({"after": "x", "reset": None})) == 60
    assert errors._retry_after(RateLimited(None)) == 60


async def test_token_not_ready_and_no_signing_key(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator, vin: str
) -> None:
    """No token right now is transient; a signed command needs a key."""
    client = loaded_entry.runtime_data.client
    before = len(sim.api_requests())
    with (
        patch.object(
            client.tokens,
            "async_get_access_token",
            side_effect=TokenUnavailableError("refresh failing"),
        ),
        pytest.raises(TokenNotReadyError) as err,
    ):
        await client.async_vehicle_state(vin)
    assert (err.value.translation_placeholders or {})["reason"] == "refresh failing"
    unsigned = api.FleetClient(
        async_get_clientsession(hass), client.tokens, client.usage, client.server
    )
    assert not unsigned.can_sign
    with pytest.raises(SigningRequiredError):
        await unsigned.async_command(vin, "charge_start", signed=True)
    assert len(sim.api_requests()) == before
