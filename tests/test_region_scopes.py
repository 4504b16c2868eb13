"""Regions (421 → users/region), China's token URL and refused scopes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
import json
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
from yarl import URL

from custom_components.tesla_scout_worker import account_region, fleet_server
from custom_components.tesla_scout_worker.charge_control import SEND_ENDPOINTS
from custom_components.tesla_scout_worker.const import (
    CONF_FLEET_API_URL,
    CONF_REGION,
    CONF_SERVER_URL,
    CONF_TOKEN,
    DOMAIN,
    FLEET_API_SERVERS,
    TOKEN_URL,
    TOKEN_URL_CN,
)
from custom_components.tesla_scout_worker.errors import (
    FleetError,
    MissingScopesError,
    WrongRegionError,
)
from custom_components.tesla_scout_worker.oauth import (
    TeslaOAuth2Implementation,
    granted_scopes,
    token_region,
)
from custom_components.tesla_scout_worker.servers import (
    is_tesla_url,
    regional_server,
)
from homeassistant.components.application_credentials import ClientCredential
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from tesla_fleet_sim import AccountConfig, SimConfig, Simulator

from .common import billed, press_force_update, state
from .conftest import AUTH_DOMAIN, CLIENT_ID, CLIENT_SECRET
from .scout_common import CAR, VIN

EU = "https://fleet-api.prd.eu.vn.cloud.tesla.com"
LOCATION_ENTITIES = (
    f"device_tracker.{CAR}_location",
    f"binary_sensor.{CAR}_at_home",
    f"sensor.{CAR}_distance_from_home",
)
NO_LOCATION = SimConfig(accounts=[AccountConfig(refused_scopes=("vehicle_location",))])
MISSING_SCOPES_BODY = {
    "response": None,
    "error": "Unauthorized missing scopes",
    "error_description": "",
}


def jwt(**claims: Any) -> str:
    """Return an unsigned JWT carrying ``claims``."""
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return f"e30.{payload.decode()}.sig"


def seen(sim: Simulator) -> list[tuple[str, int, str | None]]:
    """Return the Fleet API requests: (last path segment, status, region called)."""
    return [(r.path.rsplit("/", 1)[-1], r.status, r.region) for r in sim.api_requests()]


def data_checks(sim: Simulator, since: int) -> list[int]:
    """Return the statuses of the vehicle_data requests after the first ``since``."""
    return [r[1] for r in seen(sim)[since:] if r[0] == "vehicle_data"]


def location_issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    """Return the entry's missing location scope issue."""
    return ir.async_get(hass).async_get_issue(
        DOMAIN, f"missing_scope_location_{entry.entry_id}"
    )


# --- regions ----------------------------------------------------------------


async def test_setup_follows_the_region_tesla_names(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    sim: Simulator,
    sim_url: str,
) -> None:
    """An eu account at the na base URL: one 421, users/region, then eu only."""
    hass.config_entries.async_update_entry(
        config_entry,
        data={**config_entry.data, CONF_SERVER_URL: f"{sim_url}/na", CONF_REGION: "na"},
    )
    entry = await setup_entry()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data[CONF_FLEET_API_URL] == f"{sim_url}/eu"
    assert entry.data[CONF_REGION] == "eu"
    assert entry.data[CONF_SERVER_URL] == f"{sim_url}/na"  # the user's choice stays
    assert entry.runtime_data.client.server == f"{sim_url}/eu"
    requests = seen(sim)
    assert requests[:3] == [
        ("vehicles", 421, "na"),
        ("region", 200, "na"),
        ("vehicles", 200, "eu"),
    ]
    assert [r for r in requests[3:] if r[2] != "eu" or r[1] != 200] == []
    assert [r[0] for r in requests].count("region") == 1

    # The next start goes to eu at once.
    before = len(requests)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert {(r[1], r[2]) for r in seen(sim)[before:]} == {(200, "eu")}


async def test_421_later_switches_the_client(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator, sim_url: str
) -> None:
    """A 421 during normal operation re-points requests and commands; no reload."""
    client = loaded_entry.runtime_data.client
    sim.faults.fail_next("/vehicle_data", 421, count=2)
    before = len(sim.api_requests())
    # Two checks at once: one asks users/region, the other just follows.
    results = await asyncio.gather(
        client.async_vehicle_data(VIN), client.async_vehicle_data(VIN)
    )
    assert all(result["charge_state"] for result in results)
    assert client.server == f"{sim_url}/eu"
    assert loaded_entry.data[CONF_FLEET_API_URL] == f"{sim_url}/eu"
    assert loaded_entry.state is ConfigEntryState.LOADED
    requests = [r[:2] for r in seen(sim)[before:]]
    assert requests.count(("vehicle_data", 421)) == 2
    assert requests.count(("region", 200)) == 1
    assert requests.count(("vehicle_data", 200)) == 2
    assert await client.async_command(VIN, "set_charge_limit", percent=70)
    assert sim.api_requests("command")[-1].path.startswith("/api/1/")
    assert seen(sim)[-1] == ("set_charge_limit", 200, "eu")
    assert billed(loaded_entry.runtime_data.usage.counts) == sim.ledger.counts


async def test_region_lookup_fails(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """users/region failing, or naming the server in use: still wrong region."""
    client = loaded_entry.runtime_data.client
    sim.faults.fail_next("/vehicle_data", 421)
    sim.faults.fail_next("/users/region", 503)
    with pytest.raises(WrongRegionError):
        await client.async_vehicle_data(VIN)
    sim.faults.fail_next("/vehicle_data", 421)
    sim.faults.fail_next("/users/region", 421)
    with pytest.raises(WrongRegionError):
        await client.async_vehicle_data(VIN)
    # Follow once to eu; a 421 there naming eu again is not followed in a loop.
    sim.faults.fail_next("/vehicle_data", 421)
    await client.async_vehicle_data(VIN)
    sim.faults.fail_next("/vehicle_data", 421)
    with pytest.raises(WrongRegionError):
        await client.async_vehicle_data(VIN)


def test_regional_server() -> None:
    """Tesla's hosts only without an override; with one, its origin stays."""
    assert regional_server(EU + "/", None) == EU
    assert (
        regional_server("https://fleet-api.prd.cn.vn.cloud.tesla.cn", None)
        == (FLEET_API_SERVERS["cn"])
    )
    assert regional_server("http://fleet-api.prd.eu.vn.cloud.tesla.com", None) is None
    assert regional_server("https://tesla.com.example.org", None) is None
    assert regional_server("http://[::1", None) is None
    assert regional_server("http://127.0.0.1:9/eu", "http://sim:5/na") == (
        "http://sim:5/eu"
    )
    assert regional_server(EU, "http://sim:5/na") == "http://sim:5"
    assert regional_server("/eu", "http://sim:5") is None
    assert not is_tesla_url("http://[::1")


def test_fleet_server_prefers_the_named_url() -> None:
    """The stored users/region answer wins over the region and the override."""
    entry = MockConfigEntry(
        domain=DOMAIN, data={CONF_REGION: "na", CONF_FLEET_API_URL: EU}
    )
    assert fleet_server(entry) == EU
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={
            CONF_REGION: "eu",
            CONF_SERVER_URL: "http://sim:1/na/",
            CONF_FLEET_API_URL: "http://127.0.0.1:2/eu",
        },
    )
    assert fleet_server(entry) == "http://sim:1/eu"
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_REGION: "eu", CONF_FLEET_API_URL: "https://evil.example/eu"},
    )
    assert fleet_server(entry) == EU


# --- China ------------------------------------------------------------------


def test_account_region_from_the_token() -> None:
    """ou_code CN: the China servers; no claim: the entry's region."""
    cn = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_REGION: "na", CONF_TOKEN: {"access_token": jwt(ou_code="CN")}},
    )
    assert account_region(cn) == "cn"
    assert token_region(jwt(ou_code="CN")) == "cn"
    assert token_region(jwt()) is None
    unknown = MockConfigEntry(
        domain=DOMAIN,
        data={CONF_REGION: "eu", CONF_TOKEN: {"access_token": jwt(ou_code="XX")}},
    )
    assert account_region(unknown) == "eu"
    cn_entry = MockConfigEntry(domain=DOMAIN, data={CONF_REGION: "cn"})
    assert fleet_server(cn_entry) == "https://fleet-api.prd.cn.vn.cloud.tesla.cn"


async def test_china_refreshes_at_auth_tesla_cn(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    """The token URL follows the region; a server override wins over both."""
    credential = ClientCredential(CLIENT_ID, CLIENT_SECRET)
    china = TeslaOAuth2Implementation(hass, AUTH_DOMAIN, credential, None, "cn")
    assert china.token_url == TOKEN_URL_CN
    assert china.for_server(None, "eu").token_url == TOKEN_URL
    assert china.for_server(None).token_url == TOKEN_URL
    assert china.for_server("http://sim:1", "cn").token_url == (
        "http://sim:1/oauth2/v3/token"
    )
    aioclient_mock.post(
        TOKEN_URL_CN,
        json={"access_token": "a", "refresh_token": "r2", "expires_in": 3600},
    )
    token = await china.async_refresh_token(
        {"access_token": "old", "refresh_token": "r1", "expires_in": 0}
    )
    assert token["refresh_token"] == "r2"
    assert [call[1] for call in aioclient_mock.mock_calls] == [URL(TOKEN_URL_CN)]


# --- scopes -----------------------------------------------------------------


def test_granted_scopes() -> None:
    """scp as a list or a string; none when the claim is missing."""
    assert granted_scopes(jwt(scp=["openid", "vehicle_location"])) == frozenset(
        {"openid", "vehicle_location"}
    )
    assert granted_scopes(jwt(scp="openid vehicle_cmds")) == frozenset(
        {"openid", "vehicle_cmds"}
    )
    assert granted_scopes(jwt()) is None
    assert granted_scopes("not a jwt") is None


def test_authorize_asks_for_every_scope(hass: HomeAssistant) -> None:
    """The sign-in asks Tesla to require all requested scopes."""
    credential = ClientCredential(CLIENT_ID, CLIENT_SECRET)
    impl = TeslaOAuth2Implementation(hass, AUTH_DOMAIN, credential)
    data = impl.extra_authorize_data
    assert data["require_requested_scopes"] == "true"
    assert "vehicle_location" in data["scope"].split()


@pytest.mark.usefixtures("scout")
@pytest.mark.parametrize("sim_config", [NO_LOCATION])
async def test_location_scope_refused(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """Without vehicle_location: no location_data asked, entities and a repair."""
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert not loaded_entry.runtime_data.client.location_granted
    await press_force_update(hass, CAR)
    data_requests = sim.api_requests("data")
    assert data_requests
    assert all(r.status == 200 for r in data_requests)  # never a 403
    for entity_id in LOCATION_ENTITIES:
        assert state(hass, entity_id) == "unavailable", entity_id
    assert state(hass, f"sensor.{CAR}_battery") == str(
        round(sim.vehicle().battery_level)
    )
    assert state(hass, f"binary_sensor.{CAR}_plugged_in") in ("on", "off")
    assert state(hass, f"binary_sensor.{CAR}_charging") in ("on", "off")
    # Sessions name location_data too: it is left out, not refused.
    data = await loaded_entry.runtime_data.client.async_vehicle_data(
        VIN, SEND_ENDPOINTS
    )
    assert data["charge_state"]
    assert "latitude" not in data["drive_state"]
    assert sim.api_requests("data")[-1].status == 200
    issue = location_issue(hass, loaded_entry)
    assert issue is not None
    assert issue.translation_key == "missing_scope_location"
    assert not issue.is_fixable
    assert issue.translation_placeholders == {
        "title": loaded_entry.title,
        "scope": "vehicle_location",
    }

    # Removing the entry removes its issue.
    await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert location_issue(hass, loaded_entry) is None


@pytest.mark.usefixtures("scout")
async def test_403_missing_scopes_drops_location(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """Token claims out of date: the 403 drops location_data and raises the repair."""
    for entity_id in LOCATION_ENTITIES:
        assert state(hass, entity_id) != "unavailable", entity_id
    assert location_issue(hass, loaded_entry) is None
    sim.faults.fail_next("/vehicle_data", 403, body=MISSING_SCOPES_BODY)
    before = len(sim.api_requests())
    await press_force_update(hass, CAR)
    assert data_checks(sim, before) == [403, 200]
    for entity_id in LOCATION_ENTITIES:
        assert state(hass, entity_id) == "unavailable", entity_id
    assert state(hass, f"sensor.{CAR}_battery") != "unavailable"
    assert location_issue(hass, loaded_entry) is not None
    # Later checks do not ask for location again.
    before = len(sim.api_requests())
    await loaded_entry.runtime_data.vehicles[VIN].coordinator.async_refresh()
    assert data_checks(sim, before) == [200]


async def test_granted_scope_clears_an_old_issue(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> None:
    """Signed in again with vehicle_location: the repair goes away at setup."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"missing_scope_location_{config_entry.entry_id}",
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="missing_scope_location",
    )
    await setup_entry()
    assert location_issue(hass, config_entry) is None


async def test_forbidden_errors(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """Missing scopes without location asked is raised; other 403s stay errors."""
    client = loaded_entry.runtime_data.client
    sim.faults.fail_next("/vehicle_data", 403, body=MISSING_SCOPES_BODY)
    with pytest.raises(MissingScopesError):
        await client.async_vehicle_data(VIN, ("charge_state",))
    sim.faults.fail_next(
        "/vehicle_data",
        403,
        body={"response": None, "error": "Tesla Vehicle Command Protocol required"},
    )
    with pytest.raises(FleetError) as err:
        await client.async_vehicle_data(VIN)
    assert not isinstance(err.value, MissingScopesError)
    assert client.location_granted
    sim.faults.fail_next("/vehicle_data", 403, body={"error": "invalid_scope"})
    with pytest.raises(MissingScopesError):
        await client.async_vehicle_data(VIN, ("charge_state",))
