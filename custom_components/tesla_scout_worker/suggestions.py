"""Which entities to propose as the scout's triggers: the driver, the charger.

Arrival and departure triggers make the scout check the car right when the
driver comes or goes. The flows propose, never force: the person named like
the Tesla account (or the only person), and the one wall charger's plugged-in
sensor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_FRIENDLY_NAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .const import CONF_TOKEN, DOMAIN
from .oauth import decode_jwt_claims


def _account_names(token: Mapping[str, Any], title: str) -> set[str]:
    """Return the casefolded names the Tesla account goes by.

    The id token's name, and the part of the account's e-mail (or of the
    entry's title, which is that e-mail) before the @.
    """
    claims = decode_jwt_claims(str(token.get("id_token", "")))
    return {
        str(value).strip().casefold()
        for value in (
            claims.get("name"),
            str(claims.get("email") or title).partition("@")[0],
        )
        if value
    }


def _people_named(hass: HomeAssistant, names: set[str]) -> list[str]:
    """Return the person entities whose name is one of ``names``."""
    return [
        state.entity_id
        for state in hass.states.async_all("person")
        if str(state.attributes.get(ATTR_FRIENDLY_NAME, "")).strip().casefold() in names
    ]


def driver_people(hass: HomeAssistant, entry: ConfigEntry[Any]) -> list[str]:
    """Return the person entities that look like the Tesla account's driver.

    A person whose name is the account's (the id token's name), or whose
    name is the part of the account's e-mail before the @, is proposed as
    arrival and departure trigger: a person follows the phone's tracker.
    """
    token = entry.data.get(CONF_TOKEN) or {}
    return _people_named(hass, _account_names(token, entry.title))


def proposed_people(
    hass: HomeAssistant, token: Mapping[str, Any], title: str
) -> list[str]:
    """Return the people to pre-select as triggers while setting up.

    The people named like the Tesla account (see driver_people); when none
    is, the only person of the household, if there is exactly one.
    """
    if people := _people_named(hass, _account_names(token, title)):
        return people
    everyone = hass.states.async_entity_ids("person")
    return everyone if len(everyone) == 1 else []


# Integrations of wall chargers, and words in the names of their entities.
CHARGER_PLATFORMS = frozenset(
    {
        "blue_current",
        "easee",
        "goecharger",
        "goecharger_api2",
        "keba",
        "nrgkick",
        "ocpp",
        "ohme",
        "openevse",
        "peblar",
        "tesla_wall_connector",
        "v2c",
        "wallbox",
        "zaptec",
    }
)
CHARGER_HINTS = (
    "wall_connector",
    "wall connector",
    "wallbox",
    "charger",
    "evse",
    "easee",
    "zaptec",
    "go-e",
    "go_e",
)


def charger_plug(hass: HomeAssistant) -> str | None:
    """Return the plugged-in sensor of the wall charger, when there is one.

    Candidates are the binary sensors with device class plug, except this
    integration's own (the car's, which a check reads anyway). One of a wall
    charger (its integration, or a charger word in its entity id or name) is
    proposed when it is the only such one; without any, the only plug sensor
    is. Anything else is ambiguous and proposes nothing.
    """
    registry = er.async_get(hass)
    plugs: list[str] = []
    chargers: list[str] = []
    for state in hass.states.async_all("binary_sensor"):
        if state.attributes.get(ATTR_DEVICE_CLASS) != BinarySensorDeviceClass.PLUG:
            continue
        entry = registry.async_get(state.entity_id)
        if entry is not None and entry.platform == DOMAIN:
            continue
        plugs.append(state.entity_id)
        platform, name = "", ""
        if entry is not None:
            platform, name = entry.platform, entry.original_name or ""
        text = f"{state.entity_id} {name}".casefold()
        if platform in CHARGER_PLATFORMS or any(hint in text for hint in CHARGER_HINTS):
            chargers.append(state.entity_id)
    if len(chargers) == 1:
        return chargers[0]
    if not chargers and len(plugs) == 1:
        return plugs[0]
    return None
