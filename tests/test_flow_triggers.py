"""Setup offers the triggers: the driver's person and the charger's plug proposed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.tesla_scout_worker.const import (
    CONF_ARRIVAL_ENTITIES,
    CONF_COMMANDS_URL,
    CONF_PLUGGED_ENTITY,
    CONF_TOKEN,
    DOMAIN,
)
from custom_components.tesla_scout_worker.suggestions import (
    charger_plug,
    proposed_people,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er

from .common import (
    form_schema,
    reauth,
    sign_in_and_continue,
    sign_in_and_finish,
    through_triggers,
)

pytestmark = pytest.mark.usefixtures("current_request_with_host", "credentials")

COMPONENT = Path(__file__).parent.parent / "custom_components" / DOMAIN
# The simulator's account: "Sim Driver" <driver@example.com>.
TITLE = "driver@example.com"


def _suggested(result: Any) -> dict[str, Any]:
    """Return the suggested value of each field of a flow form."""
    return {
        str(marker): (marker.description or {}).get("suggested_value")
        for marker in result["data_schema"].schema
    }


def _people(hass: HomeAssistant, **names: str) -> None:
    """Add person entities: object id -> name."""
    for object_id, name in names.items():
        hass.states.async_set(f"person.{object_id}", "home", {"friendly_name": name})


def _plug(
    hass: HomeAssistant,
    entity_id: str,
    *,
    platform: str | None = None,
    original_name: str | None = None,
    device_class: str = "plug",
) -> None:
    """Add a binary sensor, registered by ``platform`` when one is given."""
    if platform is not None:
        domain, object_id = entity_id.split(".")
        registry = er.async_get(hass)
        registered = registry.async_get_or_create(
            domain,
            platform,
            object_id,
            suggested_object_id=object_id,
            original_name=original_name,
        )
        assert registered.entity_id == entity_id
    hass.states.async_set(entity_id, "off", {"device_class": device_class})


async def test_setup_offers_the_triggers(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim_url: str,
) -> None:
    """After sign-in: the driver and the charger proposed; the choice is the options."""
    _people(hass, sim="Sim Driver", guest="Guest")
    _plug(
        hass,
        "binary_sensor.wall_connector_vehicle_connected",
        platform="tesla_wall_connector",
    )
    _plug(hass, "binary_sensor.tablet_plugged_in", platform="fully_kiosk")
    hass.states.async_set("device_tracker.phone", "home", {"source_type": "gps"})

    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "triggers"
    assert _suggested(result) == {
        CONF_ARRIVAL_ENTITIES: ["person.sim"],
        CONF_PLUGGED_ENTITY: "binary_sensor.wall_connector_vehicle_connected",
    }
    # Pre-selected only: both fields may be left empty.
    assert result["data_schema"]({}) == {}
    assert not hass.config_entries.async_entries(DOMAIN)

    result = await through_triggers(
        hass,
        result,
        {
            CONF_ARRIVAL_ENTITIES: ["person.sim", "device_tracker.phone"],
            CONF_PLUGGED_ENTITY: "binary_sensor.wall_connector_vehicle_connected",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.title == TITLE
    assert dict(entry.options) == {
        CONF_ARRIVAL_ENTITIES: ["person.sim", "device_tracker.phone"],
        CONF_PLUGGED_ENTITY: "binary_sensor.wall_connector_vehicle_connected",
    }
    assert entry.state is ConfigEntryState.LOADED


async def test_setup_without_triggers_is_remembered(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim_url: str,
) -> None:
    """Cleared at setup: no trigger, and the options do not propose them again."""
    _people(hass, sim="Sim Driver")
    _plug(hass, "binary_sensor.easee_cable", platform="easee")
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    result = await through_triggers(hass, result)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert dict(entry.options) == {
        CONF_ARRIVAL_ENTITIES: [],
        CONF_PLUGGED_ENTITY: None,
    }
    assert entry.state is ConfigEntryState.LOADED

    options = await hass.config_entries.options.async_init(entry.entry_id)
    scout = {
        str(marker): marker.description
        for marker in form_schema(options).schema["scout"].schema.schema
    }
    assert scout[CONF_ARRIVAL_ENTITIES] == {"suggested_value": []}
    assert scout[CONF_PLUGGED_ENTITY] == {"suggested_value": None}


async def test_setup_proposes_nothing_when_ambiguous(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim_url: str,
) -> None:
    """Two people named otherwise and two chargers: nothing pre-selected."""
    _people(hass, anna="Anna", ben="Ben")
    _plug(hass, "binary_sensor.garage_charger_plug")
    _plug(hass, "binary_sensor.carport_charger_plug")
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    assert result["step_id"] == "triggers"
    assert _suggested(result) == {
        CONF_ARRIVAL_ENTITIES: [],
        CONF_PLUGGED_ENTITY: None,
    }


async def test_setup_proposes_the_only_person(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    sim_url: str,
) -> None:
    """No person named like the account, but only one person: that one."""
    _people(hass, anna="Anna")
    result = await sign_in_and_finish(hass, hass_client_no_auth, sim_url)
    assert _suggested(result)[CONF_ARRIVAL_ENTITIES] == ["person.anna"]


async def test_proposed_people(hass: HomeAssistant) -> None:
    """The people named like the account (name or e-mail); else the only one."""
    token: dict[str, Any] = {}  # no id token: the title's e-mail decides
    assert proposed_people(hass, token, TITLE) == []
    _people(hass, anna="Anna")
    assert proposed_people(hass, token, TITLE) == ["person.anna"]
    _people(hass, ben="Ben")
    assert proposed_people(hass, token, TITLE) == []
    _people(hass, me=" DRIVER ")
    assert proposed_people(hass, token, TITLE) == ["person.me"]


@pytest.mark.parametrize(
    ("plugs", "expected"),
    [
        pytest.param([], None, id="none"),
        pytest.param(
            [("binary_sensor.socket", None, None)],
            "binary_sensor.socket",
            id="the_only_plug",
        ),
        pytest.param(
            [
                ("binary_sensor.tablet", "fully_kiosk", None),
                ("binary_sensor.socket", None, None),
            ],
            None,
            id="two_plugs_no_charger",
        ),
        pytest.param(
            [
                ("binary_sensor.tablet", "fully_kiosk", None),
                ("binary_sensor.zaptec_go", "zaptec", None),
            ],
            "binary_sensor.zaptec_go",
            id="charger_by_integration",
        ),
        pytest.param(
            [
                ("binary_sensor.tablet", "fully_kiosk", None),
                ("binary_sensor.garage", "mqtt", "Wallbox car connected"),
            ],
            "binary_sensor.garage",
            id="charger_by_name",
        ),
        pytest.param(
            [
                ("binary_sensor.tablet", None, None),
                ("binary_sensor.go_e_car", None, None),
            ],
            "binary_sensor.go_e_car",
            id="charger_by_entity_id",
        ),
        pytest.param(
            [
                ("binary_sensor.wallbox_a", "wallbox", None),
                ("binary_sensor.wallbox_b", "wallbox", None),
            ],
            None,
            id="two_chargers",
        ),
    ],
)
def test_charger_plug(
    hass: HomeAssistant,
    plugs: list[tuple[str, str | None, str | None]],
    expected: str | None,
) -> None:
    """One wall charger's plug sensor, or the only plug sensor; else nothing."""
    # Never proposed: another device class, and this integration's own sensor.
    _plug(hass, "binary_sensor.front_door", device_class="door")
    _plug(hass, "binary_sensor.model_3_charger", platform=DOMAIN)
    for entity_id, platform, name in plugs:
        _plug(hass, entity_id, platform=platform, original_name=name)
    assert charger_plug(hass) == expected


async def test_options_propose_the_charger(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Never chosen: the options propose the wall charger, never the car's sensor."""
    registry = er.async_get(hass)
    own = [
        state.entity_id
        for state in hass.states.async_all("binary_sensor")
        if state.attributes.get("device_class") == "plug"
        and (registered := registry.async_get(state.entity_id)) is not None
        and registered.platform == DOMAIN
    ]
    assert own  # the car's own plugged-in sensor is there ...
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    scout = form_schema(result).schema["scout"].schema.schema
    marker = next(key for key in scout if key == CONF_PLUGGED_ENTITY)
    assert marker.description == {"suggested_value": None}  # ... and not proposed
    await hass.config_entries.options.async_configure(
        result["flow_id"], {"scout": {}, "charging": {}}
    )
    await hass.async_block_till_done()

    _plug(hass, "binary_sensor.wall_connector", platform="tesla_wall_connector")
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    scout = form_schema(result).schema["scout"].schema.schema
    marker = next(key for key in scout if key == CONF_PLUGGED_ENTITY)
    assert marker.description == {"suggested_value": "binary_sensor.wall_connector"}
    assert CONF_PLUGGED_ENTITY not in loaded_entry.options

    # A choice is kept: nothing else is proposed over it.
    hass.config_entries.async_update_entry(
        loaded_entry, options={CONF_PLUGGED_ENTITY: "sensor.charger_status"}
    )
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    scout = form_schema(result).schema["scout"].schema.schema
    marker = next(key for key in scout if key == CONF_PLUGGED_ENTITY)
    assert marker.description == {"suggested_value": "sensor.charger_status"}


async def test_reauth_does_not_offer_triggers(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    """Reauth signs in and finishes: no triggers step, options untouched."""
    _people(hass, sim="Sim Driver")
    result = await reauth(hass, hass_client_no_auth, loaded_entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert dict(loaded_entry.options) == {}


async def test_reconfigure_does_not_offer_triggers(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
) -> None:
    """Reconfigure, signing in again, finishes: no triggers step, options kept."""
    _people(hass, sim="Sim Driver")
    old = loaded_entry.data[CONF_TOKEN]["refresh_token"]
    result = await loaded_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_COMMANDS_URL: "", "sign_in_again": True}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    result = await sign_in_and_continue(hass, hass_client_no_auth, result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert loaded_entry.data[CONF_TOKEN]["refresh_token"] != old
    assert dict(loaded_entry.options) == {}


def test_triggers_step_translated() -> None:
    """Every field of the step has a label and a description; en.json is a copy."""
    strings = (COMPONENT / "strings.json").read_bytes()
    assert (COMPONENT / "translations" / "en.json").read_bytes() == strings
    step = json.loads(strings)["config"]["step"]["triggers"]
    assert step["title"]
    assert step["description"]
    fields = {CONF_ARRIVAL_ENTITIES, CONF_PLUGGED_ENTITY}
    assert set(step["data"]) == fields
    assert set(step["data_description"]) == fields
