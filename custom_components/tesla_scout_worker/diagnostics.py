"""Diagnostics with tokens, secrets, VINs and locations redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .models import TeslaConfigEntry

TO_REDACT = {
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "token",
    "vin",
    "id",
    "vehicle_id",
    "id_s",
    "user_id",
    "latitude",
    "longitude",
    "native_latitude",
    "native_longitude",
    "lat",
    "lon",
    "heading",
    "tokens",
    "backseat_token",
    "unique_id",
    "title",
    "display_name",
    "vehicle_name",
    "key_file",
    "domain",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: TeslaConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    data = entry.runtime_data
    return {
        "entry": async_redact_data(
            {
                "title": entry.title,
                "unique_id": entry.unique_id,
                "data": dict(entry.data),
                "options": dict(entry.options),
            },
            TO_REDACT,
        ),
        "token": data.tokens.as_dict(),
        "usage": data.usage.as_dict(),
        "signing": data.control.signing.as_dict(),
        "vehicles": async_redact_data(
            [
                {
                    **vehicle.listing,
                    "commands": {
                        "signing": vehicle.command_signing,
                        "path": str(data.control.signing.path(vin)),
                        "key_paired": data.control.signing.paired.get(vin),
                    },
                }
                for vin, vehicle in data.vehicles.items()
            ],
            TO_REDACT,
        ),
    }
