"""Config flow: OAuth2 sign-in with Tesla, reauth, reconfigure and options."""

from __future__ import annotations

from collections.abc import Mapping
import logging
from typing import Any, cast

import probatio
from yarl import URL

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import (
    config_entry_oauth2_flow,
    selector,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .commands_tls import ERROR_CA_FILE, async_probe, tls_options
from .const import (
    AUTH_REGION_CHINA,
    AUTH_REGION_GLOBAL,
    CONF_ARRIVAL_ENTITIES,
    CONF_AUTH_REGION,
    CONF_COMMANDS_CA_FILE,
    CONF_COMMANDS_URL,
    CONF_COMMANDS_VERIFY_SSL,
    CONF_DOMAIN,
    CONF_FLEET_API_URL,
    CONF_FLOW_REQUESTS,
    CONF_KEY_FILE,
    CONF_PLUGGED_ENTITY,
    CONF_REGION,
    CONF_SERVER_URL,
    CONF_TOKEN,
    DOMAIN,
    FLEET_API_SERVERS,
    LOGGER,
)
from .keys import (
    KeyCheck,
    SigningKeyError,
    async_check_hosted_key,
    async_get_signing_key,
)
from .oauth import TeslaOAuth2Implementation, decode_jwt_claims, granted_scopes
from .options_flow import (
    SCOUT_FIELDS,
    TRIGGER_FIELDS,
    TeslaScoutWorkerOptionsFlow,
    section_schema,
)
from .registration import (
    PUBLIC_KEY_PATH,
    AppCredentials,
    NotRegisteredError,
    RegistrationError,
    async_account_region,
    async_register_typed_domain,
)
from .servers import server_for
from .suggestions import charger_plug, proposed_people
from .usage import ApiCategory

DEFAULT_TITLE = "Tesla account"
SECTION_ADVANCED = "advanced"
CONF_SIGN_IN_AGAIN = "sign_in_again"


# Without these the integration can do nothing useful: no data, or no charging.
REQUIRED_SCOPES = ("vehicle_device_data", "vehicle_charging_cmds")


def missing_required_scopes(access_token: str) -> list[str]:
    """Return the required scopes the token lacks (none when it names no scopes).

    Charging commands are allowed by vehicle_charging_cmds or by the wider
    vehicle_cmds.
    """
    granted = granted_scopes(access_token)
    if granted is None:
        return []
    missing = [scope for scope in REQUIRED_SCOPES if scope not in granted]
    if "vehicle_cmds" in granted and "vehicle_charging_cmds" in missing:
        missing.remove("vehicle_charging_cmds")
    return missing


def valid_url(value: str) -> bool:
    """Return True for an absolute http(s) URL."""
    try:
        url = URL(value)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.host)


class TeslaScoutWorkerFlowHandler(
    config_entry_oauth2_flow.AbstractOAuth2FlowHandler, domain=DOMAIN
):
    """Sign in with Tesla (or a compatible server) through application credentials."""

    DOMAIN = DOMAIN
    VERSION = 1

    def __init__(self) -> None:
        """Initialize."""
        super().__init__()
        self._server_url: str | None = None
        self._auth_region: str | None = None
        self._reconfigured: dict[str, Any] | None = None
        self._new_entry: dict[str, Any] = {}
        self._title = DEFAULT_TITLE

    @property
    def logger(self) -> logging.Logger:
        """Return the integration's logger (its records are redacted)."""
        return LOGGER

    @staticmethod
    @callback
    def async_get_options_flow(
        config_entry: ConfigEntry[Any],
    ) -> OptionsFlowWithReload:
        """Return the options flow."""
        return TeslaScoutWorkerOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Start: sign in with Tesla; a collapsed section may name another server.

        Reauthentication keeps the entry's server and goes straight to sign-in.
        """
        if self.source == SOURCE_REAUTH:
            return await self.async_step_pick_implementation()
        errors: dict[str, str] = {}
        if user_input is not None:
            advanced = user_input.get(SECTION_ADVANCED) or {}
            server_url = str(advanced.get(CONF_SERVER_URL) or "").strip()
            if server_url and not valid_url(server_url):
                errors["base"] = "invalid_url"
            else:
                self._server_url = server_url.rstrip("/") or None
                if advanced.get(CONF_AUTH_REGION) == AUTH_REGION_CHINA:
                    self._auth_region = AUTH_REGION_CHINA
                return await self.async_step_pick_implementation()
        schema = probatio.Schema(
            {
                probatio.Required(SECTION_ADVANCED): section(
                    probatio.Schema(
                        {
                            probatio.Required(
                                CONF_AUTH_REGION, default=AUTH_REGION_GLOBAL
                            ): selector.SelectSelector(
                                selector.SelectSelectorConfig(
                                    options=[AUTH_REGION_GLOBAL, AUTH_REGION_CHINA],
                                    translation_key=CONF_AUTH_REGION,
                                )
                            ),
                            probatio.Optional(CONF_SERVER_URL): str,
                        }
                    ),
                    {"collapsed": not errors},
                )
            }
        )
        if user_input is not None:
            schema = self.add_suggested_values_to_schema(schema, user_input)
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

    async def async_step_auth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point the chosen credentials at the server (and region) before signing in.

        Accounts in mainland China sign in at auth.tesla.cn.
        """
        if isinstance(self.flow_impl, TeslaOAuth2Implementation) and (
            self.flow_impl.server_url != self._server_url
            or self.flow_impl.region != self._auth_region
        ):
            self.flow_impl = self.flow_impl.for_server(
                self._server_url, self._auth_region
            )
        return await super().async_step_auth(user_input)

    async def async_oauth_create_entry(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Create (or, on reauth, update) the entry for the signed-in account."""
        token = data[CONF_TOKEN]
        claims = decode_jwt_claims(str(token.get("access_token", "")))
        account = claims.get("sub")
        if not account:
            return self.async_abort(reason="invalid_token")
        if missing := missing_required_scopes(str(token.get("access_token", ""))):
            return self.async_abort(
                reason="scope_refused",
                description_placeholders={"scopes": ", ".join(missing)},
            )
        region = str(claims.get("ou_code", "")).lower()
        if region not in FLEET_API_SERVERS:
            region = "na"
        await self.async_set_unique_id(str(account))
        if self.source == SOURCE_REAUTH:
            self._abort_if_unique_id_mismatch(reason="wrong_account")
            return self.async_update_reload_and_abort(
                self._get_reauth_entry(),
                data_updates={CONF_TOKEN: token, CONF_REGION: region},
            )
        if self.source == SOURCE_RECONFIGURE:
            self._abort_if_unique_id_mismatch(reason="wrong_account")
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(),
                data={
                    **(self._reconfigured or {}),
                    CONF_TOKEN: token,
                    CONF_REGION: region,
                },
            )
        self._abort_if_unique_id_configured()
        id_claims = decode_jwt_claims(str(token.get("id_token", "")))
        self._title = str(id_claims.get("email") or DEFAULT_TITLE)
        # No server URL (None) means Tesla's own servers for the region.
        self._new_entry = {
            **data,
            CONF_REGION: region,
            CONF_SERVER_URL: self._server_url,
        }
        try:
            await self._async_locate_account()
        except NotRegisteredError:
            return await self.async_step_register()
        return await self.async_step_triggers()

    async def _async_locate_account(self) -> None:
        """Ask Tesla where the account lives; keep the base URL it names.

        Raises NotRegisteredError when Tesla answers 412: the app must be
        registered in the account's region first.
        """
        answer = await self._async_region_lookup()
        region = str(answer.get("region") or "").lower()
        named = answer.get("fleet_api_base_url")
        if region in FLEET_API_SERVERS and named:
            self._new_entry[CONF_REGION] = region
            self._new_entry[CONF_FLEET_API_URL] = str(named).rstrip("/")

    async def _async_region_lookup(self) -> dict[str, Any]:
        """Ask users/region; a billed answer is counted by the entry's usage."""
        try:
            answer = await async_account_region(
                async_get_clientsession(self.hass),
                server_for(self._new_entry),
                str(self._new_entry[CONF_TOKEN].get("access_token", "")),
            )
        except NotRegisteredError:
            self._count_flow_request()  # the 412 is billed too
            raise
        if answer.billed:
            self._count_flow_request()
        return answer.region

    def _count_flow_request(self) -> None:
        billed = self._new_entry.setdefault(CONF_FLOW_REQUESTS, {})
        billed[ApiCategory.DATA] = billed.get(ApiCategory.DATA, 0) + 1

    async def async_step_register(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Register the app in the account's region, with the domain of its key.

        Tesla answers every request with 412 until the developer app is
        registered once per region: a partner token, then partner_accounts
        with the domain that serves the app's public key.
        """
        errors: dict[str, str] = {}
        server = server_for(self._new_entry)
        signing_key = await async_get_signing_key(self.hass)
        placeholders = {
            "server": server,
            "key_path": PUBLIC_KEY_PATH,
            "detail": "-",
            "public_key": signing_key.public_pem.strip(),
        }
        if user_input is not None:
            try:
                self._new_entry[CONF_DOMAIN] = await async_register_typed_domain(
                    async_get_clientsession(self.hass),
                    self._app_credentials,
                    server,
                    str(user_input.get(CONF_DOMAIN, "")),
                )
                await self._async_locate_account()
            except RegistrationError as err:
                self._new_entry.pop(CONF_DOMAIN, None)
                errors[err.field] = err.reason
                placeholders["detail"] = err.detail or "-"
            except NotRegisteredError:
                errors["base"] = "still_not_registered"
            else:
                return await self.async_step_triggers()
        schema = self.add_suggested_values_to_schema(
            probatio.Schema({probatio.Required(CONF_DOMAIN): str}),
            user_input or {CONF_DOMAIN: self._new_entry.get(CONF_DOMAIN)},
        )
        return self.async_show_form(
            step_id="register",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_triggers(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Offer the arrival and plugged-in triggers; the choice becomes the options.

        Shown once, after signing in (and registering) and before the entry is
        created; reauth and reconfigure never get here. The driver's person and
        a wall charger's plugged-in sensor are pre-selected when they can be
        told apart; the user may clear both. What is submitted, even nothing,
        is stored, so the options flow proposes no trigger the user declined.
        """
        if user_input is not None:
            options: dict[str, Any] = {
                CONF_ARRIVAL_ENTITIES: list(
                    user_input.get(CONF_ARRIVAL_ENTITIES) or []
                ),
                CONF_PLUGGED_ENTITY: user_input.get(CONF_PLUGGED_ENTITY) or None,
            }
            return self.async_create_entry(
                title=self._title, data=self._new_entry, options=options
            )
        token = self._new_entry.get(CONF_TOKEN) or {}
        suggested = {
            CONF_ARRIVAL_ENTITIES: proposed_people(self.hass, token, self._title),
            CONF_PLUGGED_ENTITY: charger_plug(self.hass),
        }
        schema = section_schema(
            {key: SCOUT_FIELDS[key] for key in TRIGGER_FIELDS}, suggested
        )
        return self.async_show_form(step_id="triggers", data_schema=schema)

    async def _app_credentials(self) -> AppCredentials:
        """Return the chosen application credentials for a partner token."""
        impl = cast("TeslaOAuth2Implementation", self.flow_impl)
        return AppCredentials(impl.client_id, impl.client_secret, impl.token_url)

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Tesla refused our refresh token: sign in again."""
        self._server_url = entry_data.get(CONF_SERVER_URL)
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm reauthentication."""
        if user_input is None:
            return self.async_show_form(step_id="reauth_confirm")
        return await self.async_step_user()

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the commands endpoint (signing proxy); optionally sign in again.

        The proxy's TLS trust is set here too (verify its certificate, an
        extra CA file); a URL is probed once before anything is stored (see
        commands_tls.py). Signing in again gets a token with the scopes now
        granted (e.g. after allowing vehicle location in the Tesla account).
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            commands_url = str(user_input.get(CONF_COMMANDS_URL, "")).strip()
            key_file = str(user_input.get(CONF_KEY_FILE, "")).strip()
            verify, ca_file = tls_options(user_input)
            if commands_url and not valid_url(commands_url):
                errors[CONF_COMMANDS_URL] = "invalid_url"
            elif key_file and (key_error := await _key_file_error(self.hass, key_file)):
                errors[CONF_KEY_FILE] = key_error
            elif not commands_url and await self._domain_serves_another_key(
                entry, key_file
            ):
                errors[CONF_KEY_FILE] = "public_key_differs"
            elif commands_url and (
                error := await async_probe(
                    self.hass, commands_url, verify, ca_file if verify else None
                )
            ):
                field = CONF_COMMANDS_URL
                if error == ERROR_CA_FILE:
                    field = CONF_COMMANDS_CA_FILE
                errors[field] = error
            else:
                data = dict(entry.data)
                for key in (
                    CONF_COMMANDS_URL,
                    CONF_COMMANDS_VERIFY_SSL,
                    CONF_COMMANDS_CA_FILE,
                    CONF_KEY_FILE,
                ):
                    data.pop(key, None)
                if key_file:
                    data[CONF_KEY_FILE] = key_file
                if commands_url:
                    data[CONF_COMMANDS_URL] = commands_url.rstrip("/")
                    data[CONF_COMMANDS_VERIFY_SSL] = verify
                    if verify and ca_file:
                        data[CONF_COMMANDS_CA_FILE] = ca_file
                if user_input.get(CONF_SIGN_IN_AGAIN):
                    self._reconfigured = data
                    self._server_url = entry.data.get(CONF_SERVER_URL)
                    return await self.async_step_pick_implementation()
                return self.async_update_reload_and_abort(entry, data=data)
        schema = probatio.Schema(
            {
                probatio.Optional(
                    CONF_COMMANDS_URL,
                    description={
                        "suggested_value": entry.data.get(CONF_COMMANDS_URL, "")
                    },
                ): str,
                probatio.Optional(
                    CONF_COMMANDS_VERIFY_SSL,
                    default=entry.data.get(CONF_COMMANDS_VERIFY_SSL, True),
                ): bool,
                probatio.Optional(
                    CONF_COMMANDS_CA_FILE,
                    description={
                        "suggested_value": entry.data.get(CONF_COMMANDS_CA_FILE, "")
                    },
                ): str,
                probatio.Optional(
                    CONF_KEY_FILE,
                    description={"suggested_value": entry.data.get(CONF_KEY_FILE, "")},
                ): str,
                probatio.Optional(CONF_SIGN_IN_AGAIN, default=False): bool,
            }
        )
        if user_input is not None:
            schema = self.add_suggested_values_to_schema(schema, user_input)
        try:
            signing_key = await async_get_signing_key(
                self.hass, entry.data.get(CONF_KEY_FILE) or None
            )
        except SigningKeyError:
            signing_key = await async_get_signing_key(self.hass)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=schema,
            errors=errors,
            description_placeholders={
                "public_key": signing_key.public_pem.strip(),
                "key_path": PUBLIC_KEY_PATH,
                "domain": str(entry.data.get(CONF_DOMAIN) or "-"),
            },
        )

    async def _domain_serves_another_key(
        self, entry: ConfigEntry[Any], key_file: str
    ) -> bool:
        """Whether the app's domain (when known) serves another key than the chosen.

        Commands signed here must use the key Tesla registered for the domain.
        A domain Home Assistant cannot reach is not held against the form:
        Tesla may reach it when Home Assistant cannot (e.g. behind NAT).
        """
        domain = entry.data.get(CONF_DOMAIN)
        if not domain:
            return False
        key = await async_get_signing_key(self.hass, key_file or None)
        check = await async_check_hosted_key(self.hass, str(domain), key)
        return check is KeyCheck.DIFFERS


async def _key_file_error(hass: HomeAssistant, path: str) -> str | None:
    """Return why the key file at ``path`` cannot sign commands (None: it can)."""
    try:
        await async_get_signing_key(hass, path)
    except SigningKeyError as err:
        return err.reason
    return None
