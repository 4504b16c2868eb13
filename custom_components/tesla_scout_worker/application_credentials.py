"""Application credentials platform for Tesla Scout & Worker."""

from __future__ import annotations

from homeassistant.components.application_credentials import ClientCredential
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_entry_oauth2_flow

from .oauth import TeslaOAuth2Implementation


async def async_get_auth_implementation(
    hass: HomeAssistant, auth_domain: str, credential: ClientCredential
) -> config_entry_oauth2_flow.AbstractOAuth2Implementation:
    """Return the Tesla OAuth2 implementation for these credentials."""
    return TeslaOAuth2Implementation(hass, auth_domain, credential)


async def async_get_description_placeholders(hass: HomeAssistant) -> dict[str, str]:
    """Return placeholders for the credentials dialog."""
    return {
        "developer_url": "https://developer.tesla.com/dashboard",
        "redirect_url": config_entry_oauth2_flow.async_get_redirect_uri(hass),
    }
