"""Repair flows: restore what a failed session left on a car; register the app; pair the key."""

from __future__ import annotations

from typing import Any

import probatio

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, issue_registry as ir, selector
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.config_entry_oauth2_flow import (
    async_get_config_entry_implementation,
)

from . import account_region
from .const import CONF_DOMAIN, CONF_SERVER_URL, DOMAIN
from .keys import KeyCheck, async_check_hosted_key
from .models import TeslaConfigEntry
from .oauth import TeslaOAuth2Implementation
from .registration import (
    PUBLIC_KEY_PATH,
    AppCredentials,
    RegistrationError,
    async_register_typed_domain,
    normalize_domain,
    public_key_url,
)
from .servers import server_for
from .signing import ISSUE_KEY_NOT_PAIRED, CommandPath, pairing_link

QR_CODE = "qr_code"


class _EntryRepairFlow(RepairsFlow):
    """A repair flow of one config entry: its loaded entry, its issue's words."""

    _entry_id: str

    def _loaded_entry(self) -> TeslaConfigEntry | None:
        """Return the entry when it is loaded (None otherwise)."""
        entry: TeslaConfigEntry | None = self.hass.config_entries.async_get_entry(
            self._entry_id
        )
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return None
        return entry

    def _placeholders(self) -> dict[str, str]:
        """Return the issue's placeholders (the car, what is left, the link)."""
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        if issue is None or issue.translation_placeholders is None:
            return {}
        return dict(issue.translation_placeholders)


class RestoreCarFlow(_EntryRepairFlow):
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
        entry = self._loaded_entry()
        if entry is None:
            return self.async_abort(reason="entry_not_loaded")
        try:
            await entry.runtime_data.sessions.async_restore(self._session_id)
        except HomeAssistantError as err:
            return self.async_abort(
                reason="restore_failed", description_placeholders={"error": str(err)}
            )
        return self.async_create_entry(data={})


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


class PairKeyFlow(_EntryRepairFlow):
    """Show the pairing link and its QR code; ask Tesla when the owner is done."""

    def __init__(self, entry_id: str, device_id: str) -> None:
        """Initialize for one car of one config entry."""
        self._entry_id = entry_id
        self._device_id = device_id

    def _vin(self) -> str | None:
        device = dr.async_get(self.hass).async_get(self._device_id)
        if device is None:
            return None
        return next((ident for dom, ident in device.identifiers if dom == DOMAIN), None)

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Ask for the app's domain first when it is not known yet."""
        entry = self._loaded_entry()
        if entry is None or self._vin() is None:
            return self.async_abort(reason="entry_not_loaded")
        if not entry.data.get(CONF_DOMAIN):
            return await self.async_step_domain()
        return await self.async_step_pair()

    async def async_step_domain(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Ask which domain the app is registered with (the link names it)."""
        errors: dict[str, str] = {}
        entry = self._loaded_entry()
        if entry is None:
            return self.async_abort(reason="entry_not_loaded")
        if user_input is not None:
            domain = normalize_domain(str(user_input.get(CONF_DOMAIN, "")))
            if domain is None:
                errors[CONF_DOMAIN] = "invalid_domain"
            else:
                self.hass.config_entries.async_update_entry(
                    entry, data={**entry.data, CONF_DOMAIN: domain}
                )
                return await self.async_step_pair()
        return self.async_show_form(
            step_id="domain",
            data_schema=probatio.Schema({probatio.Required(CONF_DOMAIN): str}),
            errors=errors,
            description_placeholders={"key_path": PUBLIC_KEY_PATH},
        )

    async def async_step_pair(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Show the link; when submitted, check the key with Tesla (and the domain)."""
        entry = self._loaded_entry()
        vin = self._vin()
        if entry is None or vin is None:
            return self.async_abort(reason="entry_not_loaded")
        policy = entry.runtime_data.control.signing
        domain = str(entry.data[CONF_DOMAIN])
        link = pairing_link(domain)
        errors: dict[str, str] = {}
        if user_input is not None:
            key = policy.key
            if (
                vin in policy.not_accepted
                and key is not None
                and await async_check_hosted_key(self.hass, domain, key)
                is KeyCheck.DIFFERS
            ):
                errors["base"] = "public_key_differs"
            else:
                await policy.async_key_added(vin)
                if policy.path(vin) is not CommandPath.KEY_NOT_PAIRED:
                    return self.async_create_entry(data={})
                errors["base"] = "still_not_paired"
        schema = probatio.Schema(
            {
                probatio.Optional(QR_CODE): selector.QrCodeSelector(
                    selector.QrCodeSelectorConfig(
                        data=link,
                        scale=6,
                        error_correction_level=selector.QrErrorCorrectionLevel.QUARTILE,
                    )
                )
            }
        )
        placeholders = {
            **self._placeholders(),
            "link": link,
            "key_url": public_key_url(domain),
            "public_key": policy.key.public_pem.strip() if policy.key else "-",
        }
        return self.async_show_form(
            step_id="pair",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the repair flow of a fixable issue."""
    data = data or {}
    if issue_id.startswith("app_not_registered_"):
        return RegisterAppFlow(str(data.get("entry_id")))
    if issue_id.startswith(f"{ISSUE_KEY_NOT_PAIRED}_"):
        return PairKeyFlow(str(data.get("entry_id")), str(data.get("device_id")))
    return RestoreCarFlow(str(data.get("entry_id")), str(data.get("session_id")))
