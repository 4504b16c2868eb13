"""Actions (services) for automations."""

from __future__ import annotations

from typing import Any

import probatio

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .const import DOMAIN
from .models import TeslaConfigEntry
from .session_services import async_setup_session_services

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_EMERGENCY = "emergency"

SERVICE_REFRESH_TOKEN = "refresh_token"
SERVICE_CHECK_TOKEN = "check_token"

ENTRY_SCHEMA = probatio.Schema({probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})
REFRESH_SCHEMA = ENTRY_SCHEMA.extend(
    {probatio.Optional(ATTR_EMERGENCY, default=False): cv.boolean}
)


def async_get_entry(hass: HomeAssistant, call: ServiceCall) -> TeslaConfigEntry:
    """Return the loaded entry an action is for (the only one if not given)."""
    entry_id: str | None = call.data.get(ATTR_CONFIG_ENTRY_ID)
    loaded: list[TeslaConfigEntry] = [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED
    ]
    if entry_id is None:
        if len(loaded) == 1:
            return loaded[0]
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_required" if loaded else "no_loaded_entry",
        )
    for entry in loaded:
        if entry.entry_id == entry_id:
            return entry
    raise ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="entry_not_loaded",
        translation_placeholders={"entry_id": entry_id},
    )


async def _async_refresh_token(call: ServiceCall) -> ServiceResponse:
    entry = async_get_entry(call.hass, call)
    tokens = entry.runtime_data.tokens
    await tokens.async_refresh(emergency=call.data[ATTR_EMERGENCY])
    return _token_response(entry)


async def _async_check_token(call: ServiceCall) -> ServiceResponse:
    return _token_response(async_get_entry(call.hass, call))


def _token_response(entry: TeslaConfigEntry) -> dict[str, Any]:
    tokens = entry.runtime_data.tokens
    health = tokens.as_dict()
    return {
        "status": health["status"],
        "remaining_minutes": health["remaining_minutes"],
        "expires_at": health["expires_at"],
        "last_refresh": health["last_refresh"],
        "refresh_count": health["refresh_count"],
    }


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_REFRESH_TOKEN,
        _async_refresh_token,
        schema=REFRESH_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CHECK_TOKEN,
        _async_check_token,
        schema=ENTRY_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    async_setup_session_services(hass)
