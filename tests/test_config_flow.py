"""Config flow: real OAuth sign-in against the simulator."""

from __future__ import annotations

from dataclasses import replace

import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.tesla_scout_worker.config_flow import valid_url
from custom_components.tesla_scout_worker.const import (
    AUTH_REGION_CHINA,
    AUTHORIZE_URL_CN,
    CONF_ARRIVAL_ENTITIES,
    CONF_AUTH_REGION,
    CONF_COMMANDS_CA_FILE,
    CONF_COMMANDS_URL,
    CONF_COMMANDS_VERIFY_SSL,
    CONF_IDLE_INTERVAL,
    CONF_OFF_PEAK_LIMIT,
    CONF_REGION,
    CONF_SERVER_URL,
    CONF_TOKEN,
    DOMAIN,
    TOKEN_URL_CN,
)
from custom_components.tesla_scout_worker.keys import async_get_signing_key
from custom_components.tesla_scout_worker.usage import ApiCategory
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from tesla_fleet_sim import (
    AccountConfig,
    ClientConfig,
    RunningSimulator,
    SimConfig,
    Simulator,
)
from tesla_fleet_sim.partners import new_key_pair

from .common import (
    form_schema,
    reauth,
    sign_in_and_continue,
    sign_in_and_finish,
    start_flow,
    through_triggers,
)
from .conftest import ACCOUNT, CLIENT_ID

pytestmark = pytest.mark.usefixtures("current_request_with_host", "credentials")


async def test_full_flow(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim: Simulator,
    sim_url: str,
) -> None:
    """Sign in, get an entry for the account with region and server."""
    result = await start_flow(hass, sim_url)
    authorize = URL(result["url"])
    assert str(authorize.with_query(None)) == f"{sim_url}/oauth2/v3/authorize"
    assert authorize.query["client_id"] == "sim-client-id"
    assert "vehicle_charging_cmds" in authorize.query["scope"].split()
    assert authorize.query["prompt"] == "login"
    assert authorize.query["require_requested_scopes"] == "true"

    result = await sign_in_and_continue(hass, hass_client_no_auth, result)
    # Nothing is set up until the triggers are answered.
    assert not hass.config_entries.async_entries(DOMAIN)
    result = await through_triggers(hass, result)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.unique_id == ACCOUNT
    assert entry.title == "driver@example.com"
    assert entry.data[CONF_REGION] == "eu"
    assert entry.data[CONF_SERVER_URL] == sim_url
    assert entry.data[CONF_TOKEN]["refresh_token"]
    assert entry.state is ConfigEntryState.LOADED
    # One code exchange, and setup listed the vehicles once.
    assert [r.grant_type for r in sim.token_requests()] == ["authorization_code"]
    assert len(sim.api_requests("state_check")) == 1
    # The flow's users/region is billed and counted by the entry, once.
    assert sim.api_requests("data")[0].path == "/api/1/users/region"
    usage = entry.runtime_data.usage
    assert usage.counts[ApiCategory.DATA] == len(sim.api_requests("data"))
    assert "flow_requests" not in entry.data


async def test_region_lookup_in_an_outage_is_not_counted(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim: Simulator,
    sim_url: str,
) -> None:
    """A users/region that got no answer (HTTP 503) costs nothing: not counted."""
    sim.faults.fail_next("/users/region", 503)  # asked once signed in
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    result = await through_triggers(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    usage = entry.runtime_data.usage
    assert [r.status for r in sim.api_requests() if r.path.endswith("/region")] == [503]
    billed_data = [r for r in sim.api_requests("data") if r.billed]
    assert usage.counts[ApiCategory.DATA] == len(billed_data)
    assert sim.ledger.counts["data"] == len(billed_data)


async def test_duplicate_account(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    config_entry: MockConfigEntry,
    sim_url: str,
) -> None:
    """The same Tesla account cannot be added twice."""
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_invalid_server_url(hass: HomeAssistant) -> None:
    """A malformed server URL is refused on the form and nothing starts."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"advanced": {CONF_SERVER_URL: "ftp://nowhere"}}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": "invalid_url"}
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_tesla_server_by_default(hass: HomeAssistant) -> None:
    """With the advanced section left empty the sign-in goes to Tesla itself."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"advanced": {}}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    assert result["url"].startswith("https://auth.tesla.com/oauth2/v3/authorize?")


@pytest.mark.parametrize(
    ("sim_config", "missing"),
    [
        (
            SimConfig(
                clients=[
                    ClientConfig(
                        scopes=("openid", "offline_access", "vehicle_device_data")
                    )
                ]
            ),
            "vehicle_charging_cmds",
        ),
        (
            SimConfig(
                clients=[
                    ClientConfig(scopes=("openid", "offline_access", "vehicle_cmds"))
                ]
            ),
            "vehicle_device_data",
        ),
    ],
)
async def test_required_scope_missing(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim: Simulator,
    sim_url: str,
    missing: str,
) -> None:
    """A token without data or charging scopes: abort naming them; no entry."""
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "scope_refused"
    assert result["description_placeholders"] == {"scopes": missing}
    assert not hass.config_entries.async_entries(DOMAIN)
    assert sim.api_requests() == []


async def test_china_signs_in_at_tesla_cn(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    aioclient_mock: AiohttpClientMocker,
) -> None:
    """Mainland China chosen: sign-in page and code exchange at auth.tesla.cn."""
    assert await async_setup_component(hass, DOMAIN, {})
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"advanced": {CONF_AUTH_REGION: AUTH_REGION_CHINA}}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    authorize = URL(result["url"])
    assert str(authorize.with_query(None)) == AUTHORIZE_URL_CN

    aioclient_mock.post(
        TOKEN_URL_CN,
        json={"access_token": "not-a-jwt", "refresh_token": "r", "expires_in": 60},
    )
    client = await hass_client_no_auth()
    callback = await client.get(
        f"/auth/external/callback?code=abc&state={authorize.query['state']}"
    )
    assert callback.status == 200
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_token"
    assert [call[1] for call in aioclient_mock.mock_calls] == [URL(TOKEN_URL_CN)]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        pytest.param(503, "oauth_failed", id="token_endpoint_503-oauth_failed"),
        # Wrong client credentials at the token endpoint.
        pytest.param(401, "oauth_unauthorized", id="token_endpoint_401-unauthorized"),
    ],
)
async def test_token_exchange_error(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim: Simulator,
    sim_url: str,
    status: int,
    reason: str,
) -> None:
    """A failing code exchange aborts with the matching reason, creates nothing."""
    sim.faults.token_endpoint_status = status
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason
    assert [(r.grant_type, r.status) for r in sim.token_requests()] == [
        ("authorization_code", status)
    ]
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_cancelled_sign_in(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, sim_url: str
) -> None:
    """The user cancels at Tesla: the flow aborts with the error."""
    result = await start_flow(hass, sim_url)
    state = URL(result["url"]).query["state"]
    client = await hass_client_no_auth()
    resp = await client.get(
        f"/auth/external/callback?error=access_denied&state={state}"
    )
    assert resp.status == 200
    aborted = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert aborted["type"] is FlowResultType.ABORT
    assert aborted["reason"] == "user_rejected_authorize"
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_token_without_account(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A token that names no account is refused."""
    monkeypatch.setattr(
        "custom_components.tesla_scout_worker.config_flow.decode_jwt_claims",
        lambda _token: {},
    )
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_token"


async def test_reauth(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """Reauth with the same account stores the new token and reloads."""
    old_refresh = loaded_entry.data[CONF_TOKEN]["refresh_token"]
    result = await reauth(hass, hass_client_no_auth, loaded_entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert loaded_entry.data[CONF_TOKEN]["refresh_token"] != old_refresh
    assert loaded_entry.state is ConfigEntryState.LOADED


async def test_reauth_wrong_account(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """Signing in with another account during reauth is refused."""
    sim.config.accounts.append(
        AccountConfig(sub="someone-else", email="other@example.com", vehicles=[])
    )
    sim.authorize_account = "someone-else"
    old = dict(loaded_entry.data[CONF_TOKEN])
    result = await reauth(hass, hass_client_no_auth, loaded_entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert loaded_entry.data[CONF_TOKEN] == old


async def test_reconfigure(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim_proxy: RunningSimulator
) -> None:
    """The commands URL can be set, is validated, and can be cleared."""
    result = await loaded_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    # The installation's public key is shown, never the private one.
    shown = result["description_placeholders"]["public_key"]
    assert shown == (await async_get_signing_key(hass)).public_pem.strip()
    assert "PRIVATE" not in shown
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_COMMANDS_URL: "not a url"}
    )
    assert result["errors"] == {CONF_COMMANDS_URL: "invalid_url"}
    assert CONF_COMMANDS_URL not in loaded_entry.data

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_COMMANDS_URL: sim_proxy.proxy_url + "/",
            CONF_COMMANDS_CA_FILE: str(sim_proxy.proxy_ca_path),
        },
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert loaded_entry.data[CONF_COMMANDS_URL] == sim_proxy.proxy_url

    result = await loaded_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_COMMANDS_URL: ""}
    )
    await hass.async_block_till_done()
    assert CONF_COMMANDS_URL not in loaded_entry.data
    assert CONF_COMMANDS_CA_FILE not in loaded_entry.data
    assert CONF_COMMANDS_VERIFY_SSL not in loaded_entry.data


@pytest.mark.parametrize(
    "sim_config",
    [SimConfig(accounts=[AccountConfig(refused_scopes=("vehicle_location",))])],
)
async def test_reconfigure_sign_in_again(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    sim_proxy: RunningSimulator,
) -> None:
    """Signing in again from reconfigure gets every scope and clears the repair."""
    issue_id = f"missing_scope_location_{loaded_entry.entry_id}"
    issues = ir.async_get(hass)
    assert issues.async_get_issue(DOMAIN, issue_id) is not None
    old = loaded_entry.data[CONF_TOKEN]["refresh_token"]
    result = await loaded_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_COMMANDS_URL: sim_proxy.proxy_url,
            CONF_COMMANDS_VERIFY_SSL: False,
            "sign_in_again": True,
        },
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    assert result["url"].startswith(loaded_entry.data[CONF_SERVER_URL])
    # require_requested_scopes: the simulator's user cannot untick any scope.
    result = await sign_in_and_continue(hass, hass_client_no_auth, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert loaded_entry.data[CONF_TOKEN]["refresh_token"] != old
    assert loaded_entry.data[CONF_COMMANDS_URL] == sim_proxy.proxy_url
    assert loaded_entry.data[CONF_COMMANDS_VERIFY_SSL] is False
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.runtime_data.client.location_granted
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert not [i for i in issues.issues if "conflict" in i[1]]


async def test_options(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """Options are stored flat and reload the entry."""
    before = loaded_entry.runtime_data
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "scout": {
                "home_zone": "zone.home",
                CONF_ARRIVAL_ENTITIES: ["person.driver"],
                CONF_IDLE_INTERVAL: 45,
                "asleep_interval": 60,
                "habit_interval": 0,
                "bill_state_checks": True,
            },
            "charging": {
                "off_peak_action": True,
                "off_peak_start": "23:00:00",
                "off_peak_end": "06:00:00",
                CONF_OFF_PEAK_LIMIT: 70,
                "battery_capacity": 75,
                "charging_power": 11,
                "lead_time": 120,
                "daily_check_time": "23:00:00",
            },
        },
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options[CONF_IDLE_INTERVAL] == 45
    assert loaded_entry.options["habit_interval"] == 0  # habits off: fixed checks
    assert loaded_entry.options[CONF_OFF_PEAK_LIMIT] == 70
    assert loaded_entry.options[CONF_ARRIVAL_ENTITIES] == ["person.driver"]
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert loaded_entry.runtime_data is not before  # reloaded
    assert not loaded_entry.update_listeners


async def test_options_arrival_triggers_optional(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Arrival triggers may be left empty; clearing them removes them."""
    hass.config_entries.async_update_entry(
        loaded_entry, options={CONF_ARRIVAL_ENTITIES: ["person.driver"]}
    )
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    scout_schema = form_schema(result).schema["scout"].schema.schema
    marker = next(key for key in scout_schema if key == CONF_ARRIVAL_ENTITIES)
    assert isinstance(marker, probatio.Optional)
    assert marker.description == {"suggested_value": ["person.driver"]}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"scout": {}, "charging": {}}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_ARRIVAL_ENTITIES not in loaded_entry.options


async def test_options_propose_the_driver(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Never chosen: the person named like the Tesla account is proposed."""
    hass.states.async_set("person.sim", "home", {"friendly_name": "Sim Driver"})
    hass.states.async_set("person.mail", "home", {"friendly_name": "Driver"})
    hass.states.async_set("person.guest", "away", {"friendly_name": "Guest"})
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    scout_schema = form_schema(result).schema["scout"].schema.schema
    marker = next(key for key in scout_schema if key == CONF_ARRIVAL_ENTITIES)
    assert marker.description == {"suggested_value": ["person.sim", "person.mail"]}
    # A proposal only: nothing is stored until the user saves.
    assert CONF_ARRIVAL_ENTITIES not in loaded_entry.options


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8080", True),
        ("https://proxy.local", True),
        ("ftp://x", False),
        ("nohost", False),
        ("http://[::1", False),
    ],
)
def test_valid_url(value: str, expected: bool) -> None:
    """URL validation accepts only absolute http(s) URLs."""
    assert valid_url(value) is expected


async def test_unknown_region_uses_north_america(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim: Simulator,
    sim_url: str,
) -> None:
    """An ou_code without a known Fleet API server falls back to "na"."""
    account = sim.config.accounts[0]
    sim.config.accounts[0] = replace(account, region="xx")
    domain, pem = "app.example.com", new_key_pair()[1]
    sim.partners.register(CLIENT_ID, "xx", domain, pem, sim.update())
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    result = await through_triggers(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].data[CONF_REGION] == "na"
