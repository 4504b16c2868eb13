"""Account sensors: token health and API spend."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from pytest_homeassistant_custom_component.common import MockConfigEntry

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from tesla_fleet_sim import Simulator


def state(hass: HomeAssistant, entity_id: str) -> str:
    """Return an entity's state."""
    current = hass.states.get(entity_id)
    assert current is not None, entity_id
    return current.state


async def test_token_sensors(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Status, expiry and counters follow the token manager."""
    prefix = "sensor.driver_example_com"
    assert state(hass, f"{prefix}_token_status") == "valid"
    assert state(hass, f"{prefix}_token_refreshes") == "0"
    assert state(hass, f"{prefix}_last_token_refresh") == "unknown"
    tokens = loaded_entry.runtime_data.tokens
    assert state(hass, f"{prefix}_access_token_expires") == tokens.expires_at.isoformat(
        timespec="seconds"
    )

    await tokens.async_refresh(emergency=True)
    await hass.async_block_till_done()
    assert state(hass, f"{prefix}_token_refreshes") == "1"
    assert state(hass, f"{prefix}_access_token_expires") == tokens.expires_at.isoformat(
        timespec="seconds"
    )
    assert state(hass, f"{prefix}_last_token_refresh") != "unknown"

    entry = entity_registry.async_get(f"{prefix}_token_status")
    assert entry is not None
    assert entry.unique_id == f"{loaded_entry.unique_id}_token_status"
    assert entry.entity_category == "diagnostic"


async def test_usage_sensors_match_ledger(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """Calls by category and cost equal the simulator's billing ledger."""
    client = loaded_entry.runtime_data.client
    vin = sim.vehicle().vin
    await client.async_vehicle_data(vin)
    await client.async_wake_up(vin)
    await client.async_command(vin, "set_charge_limit", percent=75)
    await hass.async_block_till_done()
    prefix = "sensor.driver_example_com"
    ledger = sim.ledger.counts
    assert state(hass, f"{prefix}_data_requests_this_month") == str(ledger["data"])
    assert state(hass, f"{prefix}_commands_this_month") == str(ledger["command"])
    assert state(hass, f"{prefix}_wake_ups_this_month") == str(ledger["wake"])
    assert state(hass, f"{prefix}_state_checks_this_month") == str(
        ledger["state_check"]
    )
    cost = float(state(hass, f"{prefix}_fleet_api_cost_this_month"))
    assert abs(cost - sim.ledger.cost_usd(bill_state_checks=True)) < 1e-9


async def test_expiring_status(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, loaded_entry: MockConfigEntry
) -> None:
    """The status reads expiring inside the proactive window."""
    tokens = loaded_entry.runtime_data.tokens
    freezer.tick(timedelta(hours=7, minutes=40))
    assert str(tokens.status) == "expiring"
    freezer.tick(timedelta(hours=1))
    assert str(tokens.status) == "expired"
