"""Setup, unload and removal of a config entry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker import fleet_server
from custom_components.tesla_scout_worker.const import (
    CONF_REGION,
    CONF_SERVER_URL,
    DOMAIN,
)
from homeassistant.components.application_credentials import (
    DOMAIN as APP_CREDS_DOMAIN,
)
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ImplementationUnavailableError
from homeassistant.helpers import config_entry_oauth2_flow
from tesla_fleet_sim import Simulator


async def test_setup_and_unload(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """Setup lists the vehicles once, unload saves the usage counters."""
    assert loaded_entry.state is ConfigEntryState.LOADED
    data = loaded_entry.runtime_data
    assert list(data.vehicles) == [sim.vehicle().vin]
    assert data.usage.counts["state_check"] == 1
    assert hass.services.has_service(DOMAIN, "refresh_token")

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    usage = hass_storage[f"{DOMAIN}.usage.{loaded_entry.entry_id}"]["data"]
    assert usage["counts"]["state_check"] == 1


async def test_remove_entry_deletes_stores(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    loaded_entry: MockConfigEntry,
) -> None:
    """Removing the entry removes the token and usage stores."""
    await loaded_entry.runtime_data.tokens.async_refresh(emergency=True)
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert f"{DOMAIN}.tokens.{loaded_entry.entry_id}" in hass_storage
    await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert f"{DOMAIN}.tokens.{loaded_entry.entry_id}" not in hass_storage
    assert f"{DOMAIN}.usage.{loaded_entry.entry_id}" not in hass_storage


async def test_api_unavailable_retries_setup(
    hass: HomeAssistant,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    sim: Simulator,
) -> None:
    """A 5xx from the Fleet API during setup: try again later."""
    sim.faults.api_status = 503
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_wrong_region_is_an_error(
    hass: HomeAssistant,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    sim: Simulator,
) -> None:
    """A 421 from the Fleet API is a configuration error, not a retry."""
    sim.faults.fail_next("/api/1/vehicles", 421)
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.SETUP_ERROR


async def test_missing_credentials(
    hass: HomeAssistant,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    config_entry: MockConfigEntry,
) -> None:
    """Without its application credentials the account must be linked again."""
    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, "auth_implementation": "gone"}
    )
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert APP_CREDS_DOMAIN in hass.config.components
    flows = hass.config_entries.flow.async_progress()
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]


async def test_credentials_provider_unavailable(
    hass: HomeAssistant,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    config_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """An unavailable credentials provider is retried later, without a request."""

    async def unavailable(
        hass: HomeAssistant, domain: str
    ) -> list[config_entry_oauth2_flow.AbstractOAuth2Implementation]:
        raise ImplementationUnavailableError("provider down")

    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, "auth_implementation": "cloud"}
    )
    config_entry_oauth2_flow.async_add_implementation_provider(
        hass, "cloud", unavailable
    )
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason == (
        "The application credentials cannot be loaded right now;"
        " Home Assistant tries again shortly"
    )
    assert not sim.requests


def test_fleet_server() -> None:
    """The region picks Tesla's server; a server override wins."""
    entry = MockConfigEntry(domain=DOMAIN, data={CONF_REGION: "eu"})
    assert fleet_server(entry) == "https://fleet-api.prd.eu.vn.cloud.tesla.com"
    entry = MockConfigEntry(domain=DOMAIN, data={CONF_REGION: "xx"})
    assert fleet_server(entry) == "https://fleet-api.prd.na.vn.cloud.tesla.com"
    entry = MockConfigEntry(
        domain=DOMAIN, data={CONF_REGION: "eu", CONF_SERVER_URL: "http://sim:1/"}
    )
    assert fleet_server(entry) == "http://sim:1"
