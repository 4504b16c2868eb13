"""Setup, unload and removal of a config entry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
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

from .common import reauth_flows
from .conftest import ACCOUNT

LIFETIME = timedelta(hours=8)  # the simulator's access tokens


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
    state: ConfigEntryState = loaded_entry.state  # not the LOADED narrowed above
    assert state is ConfigEntryState.NOT_LOADED
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


def fleet_api_down(sim: Simulator, freezer: FrozenDateTimeFactory) -> None:
    """Every Fleet API request answers 503."""
    sim.faults.api_status = 503


def wrong_region(sim: Simulator, freezer: FrozenDateTimeFactory) -> None:
    """The vehicle listing answers 421 also in the region Tesla names."""
    sim.faults.fail_next("/api/1/vehicles", 421, count=2)


def first_check_fails(sim: Simulator, freezer: FrozenDateTimeFactory) -> None:
    """The first vehicle check (vehicle_data) answers 503."""
    sim.faults.fail_next("/vehicle_data", 503)


def expired_token_and_outage(sim: Simulator, freezer: FrozenDateTimeFactory) -> None:
    """The stored token expired an hour ago and the token endpoint answers 500."""
    freezer.tick(LIFETIME + timedelta(hours=1))
    sim.faults.token_endpoint_status = 500


def revoked_token(sim: Simulator, freezer: FrozenDateTimeFactory) -> None:
    """The refresh chain was revoked; ten minutes of the token are left."""
    sim.revoke_account(ACCOUNT)
    freezer.tick(LIFETIME - timedelta(minutes=10))


@pytest.mark.parametrize(
    ("fault", "expected", "seen", "reauth"),
    [
        # A 5xx from the Fleet API during setup: try again later.
        pytest.param(
            fleet_api_down,
            ConfigEntryState.SETUP_RETRY,
            [("vehicles", 503)],
            0,
            id="fleet_api_503-retry",
        ),
        # A 421 after following users/region is a configuration error.
        pytest.param(
            wrong_region,
            ConfigEntryState.SETUP_ERROR,
            [("vehicles", 421), ("region", 200), ("vehicles", 421)],
            0,
            id="wrong_region_421-error",
        ),
        # Tesla's server failing the first vehicle check: try again later.
        pytest.param(
            first_check_fails,
            ConfigEntryState.SETUP_RETRY,
            [("vehicles", 200), ("vehicle_data", 503)],
            0,
            id="first_check_503-retry",
        ),
        # An expired token that cannot be refreshed now: retry, no reauth.
        pytest.param(
            expired_token_and_outage,
            ConfigEntryState.SETUP_RETRY,
            [("token", 500)],
            0,
            id="expired_token_endpoint_500-retry",
        ),
        # A dead chain at startup: setup error and a reauth flow.
        pytest.param(
            revoked_token,
            ConfigEntryState.SETUP_ERROR,
            [("token", 401)],
            1,
            id="revoked_token-error_and_reauth",
        ),
    ],
)
async def test_setup_fault(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    sim: Simulator,
    fault: Callable[[Simulator, FrozenDateTimeFactory], None],
    expected: ConfigEntryState,
    seen: list[tuple[str, int]],
    reauth: int,
) -> None:
    """A fault while setting up: the entry's state, the request, reauth or not."""
    fault(sim, freezer)
    entry = await setup_entry()
    assert entry.state is expected
    # Every request the simulator answered: (last path segment, status).
    assert [(r.path.rsplit("/", 1)[-1], r.status) for r in sim.requests] == seen
    assert len(reauth_flows(hass)) == reauth


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
    assert len(reauth_flows(hass)) == 1
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
