"""Repair flows: restore what a failed session left on a car; register the app."""

from __future__ import annotations

from typing import Any

import probatio

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.config_entry_oauth2_flow import (
    async_get_config_entry_implementation,
)

from . import account_region
from .api import server_for
from .const import CONF_DOMAIN, CONF_SERVER_URL, DOMAIN
from .models import TeslaConfigEntry
from .oauth import TeslaOAuth2Implementation
from .registration import (
    PUBLIC_KEY_PATH,
    AppCredentials,
    RegistrationError,
    async_register_typed_domain,
)


class RestoreCarFlow(RepairsFlow):
    """Restore now: run the session's cleanup once more."""

    def __init__(self, entry_id: str, session_id: str) -> None:
        """Initialize for one session."""
        self._entry_id = entry_id
        self._session_id = session_id

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Start with the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Ask, then wake the car and put its limit and schedule back."""
        if user_input is None:
            return self.async_show_form(
                step_id="confirm",
                data_schema=probatio.Schema({}),
                description_placeholders=self._placeholders(),
            )
        entry: TeslaConfigEntry | None = self.hass.config_entries.async_get_entry(
            self._entry_id
        )
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        try:
            await entry.runtime_data.sessions.async_restore(self._session_id)
        except HomeAssistantError as err:
            return self.async_abort(
                reason="restore_failed", description_placeholders={"error": str(err)}
            )
        return self.async_create_entry(data={})

    def _placeholders(self) -> dict[str, str]:
        """Return the issue's placeholders (the car, what is left)."""
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        if issue is None or issue.translation_placeholders is None:
            return {}
        return dict(issue.translation_placeholders)


class RegisterAppFlow(RepairsFlow):
    """Tesla answered 412: register the app in the account's region, then reload."""

    def __init__(self, entry_id: str) -> None:
        """Initialize for one config entry."""
        self._entry_id = entry_id

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Ask for the domain that serves the app's public key."""
        entry: TeslaConfigEntry | None = self.hass.config_entries.async_get_entry(
            self._entry_id
        )
        if entry is None:
            return self.async_abort(reason="entry_not_loaded")
        server = server_for(entry.data)
        errors: dict[str, str] = {}
        placeholders = {
            "title": entry.title,
            "server": server,
            "key_path": PUBLIC_KEY_PATH,
            "detail": "-",
        }
        if user_input is not None:
            try:
                domain = await async_register_typed_domain(
                    async_get_clientsession(self.hass),
                    lambda: self._credentials(entry),
                    server,
                    str(user_input.get(CONF_DOMAIN, "")),
                )
            except RegistrationError as err:
                errors[err.field] = err.reason
                placeholders["detail"] = err.detail or "-"
            else:
                self.hass.config_entries.async_update_entry(
                    entry, data={**entry.data, CONF_DOMAIN: domain}
                )
                self.hass.config_entries.async_schedule_reload(entry.entry_id)
                return self.async_create_entry(data={})
        suggested: dict[str, Any] = user_input or {
            CONF_DOMAIN: entry.data.get(CONF_DOMAIN)
        }
        schema = self.add_suggested_values_to_schema(
            probatio.Schema({probatio.Required(CONF_DOMAIN): str}), suggested
        )
        return self.async_show_form(
            step_id="init",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def _credentials(self, entry: TeslaConfigEntry) -> AppCredentials:
        """Return the entry's application credentials and its token URL."""
        implementation = await async_get_config_entry_implementation(self.hass, entry)
        if not isinstance(implementation, TeslaOAuth2Implementation):
            raise RegistrationError("credentials_unavailable")
        tesla = implementation.for_server(
            entry.data.get(CONF_SERVER_URL), account_region(entry)
        )
        return AppCredentials(tesla.client_id, tesla.client_secret, tesla.token_url)


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the repair flow of a fixable issue."""
    data = data or {}
    if issue_id.startswith("app_not_registered_"):
        return RegisterAppFlow(str(data.get("entry_id")))
    return RestoreCarFlow(str(data.get("entry_id")), str(data.get("session_id")))
