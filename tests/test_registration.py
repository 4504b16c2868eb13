"""App registration: offered by the config flow on a 412, and by a repair later."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.tesla_scout_worker.const import (
    CONF_DOMAIN,
    CONF_FLEET_API_URL,
    CONF_REGION,
    DOMAIN,
)
from custom_components.tesla_scout_worker.registration import (
    AppCredentials,
    RegistrationError,
    async_account_region,
    async_register_app,
    normalize_domain,
)
from custom_components.tesla_scout_worker.usage import ApiCategory
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
from tesla_fleet_sim import ClientConfig, SimConfig, Simulator
from tesla_fleet_sim.partners import new_key_pair

from .common import (
    placeholders,
    sign_in_and_finish,
    through_triggers,
)

APP_DOMAIN = "my-tesla-app.example.com"


@pytest.fixture
def sim_config() -> SimConfig:
    """An app registered nowhere: every user request gets 412."""
    return SimConfig(clients=[ClientConfig(registered_regions=())])


def _host_key(sim: Simulator, domain: str = APP_DOMAIN) -> None:
    sim.partners.host_public_key(domain, new_key_pair()[1])


def _registrations(sim: Simulator) -> list[tuple[str, str]]:
    return [(r["region"], r["domain"]) for r in sim.partners.as_dict()]


async def _register(
    hass: HomeAssistant, flow: dict[str, Any], domain: str
) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_DOMAIN: domain}
    )
    await hass.async_block_till_done()
    return dict(result)


pytestmark = pytest.mark.usefixtures("current_request_with_host", "credentials")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("my-tesla-app.example.com", "my-tesla-app.example.com"),
        (" https://My-Tesla-App.example.com/ ", "my-tesla-app.example.com"),
        ("https://example.com/.well-known/x", "example.com"),
        ("example.com.", "example.com"),
        ("not a domain", None),
        ("localhost", None),
        ("https://", None),
        ("http://[::1", None),
        ("", None),
    ],
)
def test_normalize_domain(typed: str, expected: str | None) -> None:
    """A bare host name (or a URL of one) is accepted; anything else is not."""
    assert normalize_domain(typed) == expected


async def test_flow_registers_the_app(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim: Simulator,
    sim_url: str,
) -> None:
    """412 after sign-in: the flow asks for the domain and registers the app."""
    flow = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    assert flow["type"] is FlowResultType.FORM
    assert flow["step_id"] == "register"
    assert flow["description_placeholders"]["server"] == sim_url
    assert [(r.path, r.status) for r in sim.api_requests()] == [
        ("/api/1/users/region", 412)
    ]

    # Malformed: a form error, nothing asked of Tesla.
    result = await _register(hass, flow, "not a domain")
    assert result["errors"] == {CONF_DOMAIN: "invalid_domain"}
    assert sim.token_requests("client_credentials") == []

    # The domain does not serve the key yet: Tesla cannot download it.
    result = await _register(hass, flow, APP_DOMAIN)
    assert result["errors"] == {"base": "public_key_unreachable"}
    assert APP_DOMAIN in result["description_placeholders"]["detail"]
    assert _registrations(sim) == []

    _host_key(sim)
    result = await _register(hass, flow, f"https://{APP_DOMAIN}/")
    # Registered: the triggers are offered before the entry is created.
    result = await through_triggers(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.data[CONF_DOMAIN] == APP_DOMAIN
    assert entry.data[CONF_REGION] == "eu"
    assert entry.data[CONF_FLEET_API_URL] == f"{sim_url}/eu"
    assert _registrations(sim) == [("eu", APP_DOMAIN)]
    assert len(sim.token_requests("client_credentials")) == 2
    assert entry.state is ConfigEntryState.LOADED
    # Both users/region answers (412, then 200) are counted by the entry;
    # partner endpoints are not billed.
    data = [r.path for r in sim.api_requests("data") if "partner" not in r.path]
    assert data.count("/api/1/users/region") == 2
    assert entry.runtime_data.usage.counts[ApiCategory.DATA] == len(data)


async def test_flow_registration_refusals(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim: Simulator,
    sim_url: str,
) -> None:
    """Each refusal is a form error that says what to fix; nothing is stored."""
    flow = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)

    # A key on the wrong curve.
    wrong_curve = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )
    sim.partners.host_public_key(APP_DOMAIN, wrong_curve)
    result = await _register(hass, flow, APP_DOMAIN)
    assert result["errors"] == {"base": "public_key_invalid"}

    # Not one of the app's allowed origins.
    client = sim.config.clients[0]
    sim.config.clients[0] = replace(client, allowed_origins=("other.example.org",))
    _host_key(sim)
    result = await _register(hass, flow, APP_DOMAIN)
    assert result["errors"] == {"base": "domain_not_allowed"}

    # The client secret changed on developer.tesla.com: no partner token.
    sim.config.clients[0] = replace(client, client_secret="rotated")
    result = await _register(hass, flow, APP_DOMAIN)
    assert result["errors"] == {"base": "partner_token_refused"}

    assert _registrations(sim) == []
    assert hass.config_entries.async_entries(DOMAIN) == []

    # Fixed: the same flow finishes.
    sim.config.clients[0] = client
    result = await _register(hass, flow, APP_DOMAIN)
    result = await through_triggers(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_flow_registered_already(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim: Simulator,
    sim_url: str,
) -> None:
    """Registered in the account's region: no registration step at all."""
    _host_key(sim)
    sim.partners.register(
        sim.config.clients[0].client_id,
        "eu",
        APP_DOMAIN,
        sim.partners.hosted_keys[APP_DOMAIN],
        sim.update(),
    )
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    result = await through_triggers(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_DOMAIN not in result["result"].data
    assert sim.token_requests("client_credentials") == []


async def test_412_at_setup_raises_a_repair_that_registers(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """Unregistered later: setup stops (no retry loop) and the repair registers."""
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    issue_id = f"app_not_registered_{config_entry.entry_id}"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.severity is ir.IssueSeverity.ERROR
    assert [r.status for r in sim.api_requests()] == [412]

    assert await async_setup_component(hass, "repairs", {})
    flows = repairs_flow_manager(hass)
    assert flows is not None
    flow = await flows.async_init(DOMAIN, data={"issue_id": issue_id})
    assert flow["step_id"] == "init"
    assert placeholders(flow)["server"] == config_entry.data["server_url"]

    result = await flows.async_configure(flow["flow_id"], {CONF_DOMAIN: "x"})
    assert result["errors"] == {CONF_DOMAIN: "invalid_domain"}
    result = await flows.async_configure(flow["flow_id"], {CONF_DOMAIN: APP_DOMAIN})
    assert result["errors"] == {"base": "public_key_unreachable"}
    assert CONF_DOMAIN not in config_entry.data

    _host_key(sim)
    result = await flows.async_configure(flow["flow_id"], {CONF_DOMAIN: APP_DOMAIN})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert config_entry.data[CONF_DOMAIN] == APP_DOMAIN
    assert _registrations(sim) == [("eu", APP_DOMAIN)]
    state: ConfigEntryState = config_entry.state  # not the SETUP_ERROR narrowed above
    assert state is ConfigEntryState.LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_412_while_running_raises_the_repair(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """A registration that disappears later raises the same repair."""
    client_id = sim.config.clients[0].client_id
    _host_key(sim)
    sim.partners.register(
        client_id, "eu", APP_DOMAIN, sim.partners.hosted_keys[APP_DOMAIN], sim.update()
    )
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED

    sim.partners.unregister(client_id, "eu")
    vin = next(iter(config_entry.runtime_data.vehicles))
    with pytest.raises(Exception, match="not registered"):
        await config_entry.runtime_data.client.async_vehicle_state(vin)
    issue_id = f"app_not_registered_{config_entry.entry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None


async def test_repair_for_a_removed_entry(hass: HomeAssistant) -> None:
    """The repair of an entry that is gone aborts."""
    assert await async_setup_component(hass, DOMAIN, {})
    assert await async_setup_component(hass, "repairs", {})
    ir.async_create_issue(
        hass,
        DOMAIN,
        "app_not_registered_gone",
        is_fixable=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key="app_not_registered",
        translation_placeholders={"title": "x", "server": "y"},
        data={"entry_id": "gone"},
    )
    flows = repairs_flow_manager(hass)
    assert flows is not None
    result = await flows.async_init(
        DOMAIN, data={"issue_id": "app_not_registered_gone"}
    )
    assert result["type"] == "abort"
    assert result["reason"] == "entry_not_loaded"


# --- the registration requests on their own ----------------------------------


async def test_region_lookup_failures_are_left_to_setup(
    hass: HomeAssistant, sim: Simulator, sim_url: str
) -> None:
    """Only a 412 matters during the flow; other failures answer nothing."""
    session = async_get_clientsession(hass)
    token = sim.issue_tokens()["access_token"]
    sim.faults.fail_next("/users/region", 403, body={"error": "forbidden"})
    refused = await async_account_region(session, sim_url, token)
    assert refused.region == {}
    assert refused.billed  # a 403 is billed
    unreachable = await async_account_region(session, "http://127.0.0.1:9", token)
    assert unreachable.region == {}
    assert not unreachable.billed
    sim.faults.fail_next("/users/region", 503)
    outage = await async_account_region(session, sim_url, token)
    assert not outage.billed


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        ([("/oauth2/v3/token", 503, None)], "cannot_connect"),
        (
            [("/oauth2/v3/token", 401, {"error": "invalid_client"})],
            "partner_token_refused",
        ),
        (
            [("/oauth2/v3/token", 200, {"token_type": "Bearer"})],
            "partner_token_refused",
        ),
        ([("/partner_accounts", 502, None)], "cannot_connect"),
        (
            [("/partner_accounts", 400, {"error": "something else"})],
            "registration_failed",
        ),
    ],
)
async def test_registration_failures(
    hass: HomeAssistant,
    sim: Simulator,
    sim_url: str,
    faults: list[tuple[str, int, dict[str, Any] | None]],
    reason: str,
) -> None:
    """Each failure of the two requests becomes the form error that fits."""
    _host_key(sim)
    for path, status, body in faults:
        sim.faults.fail_next(path, status, body=body)
    client = sim.config.clients[0]
    credentials = AppCredentials(
        client.client_id, client.client_secret, f"{sim_url}/oauth2/v3/token"
    )
    with pytest.raises(RegistrationError) as caught:
        await async_register_app(
            async_get_clientsession(hass), credentials, sim_url, APP_DOMAIN
        )
    assert caught.value.reason == reason
    assert _registrations(sim) == []


@pytest.mark.parametrize("down", ["token", "api"])
async def test_registration_server_unreachable(
    hass: HomeAssistant, sim: Simulator, sim_url: str, down: str
) -> None:
    """Nothing listening: cannot_connect, before or after the partner token."""
    nowhere = "http://127.0.0.1:9"
    client = sim.config.clients[0]
    token_url = f"{nowhere if down == 'token' else sim_url}/oauth2/v3/token"
    credentials = AppCredentials(client.client_id, client.client_secret, token_url)
    with pytest.raises(RegistrationError) as caught:
        await async_register_app(
            async_get_clientsession(hass), credentials, nowhere, APP_DOMAIN
        )
    assert caught.value.reason == "cannot_connect"
    assert len(sim.token_requests("client_credentials")) == (down == "api")
