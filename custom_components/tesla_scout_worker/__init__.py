"""Tesla Scout & Worker: healthy Fleet API tokens, a cheap scout, timed charging."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryError,
    ConfigEntryNotReady,
    ImplementationUnavailableError,
)
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.config_entry_oauth2_flow import (
    async_get_config_entry_implementation,
)
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType

from .api import FleetClient
from .charge_control import ChargeControl
from .commands_tls import CaFileError, async_commands_session, close_with_hass
from .const import (
    CONF_BILL_STATE_CHECKS,
    CONF_COMMANDS_URL,
    CONF_FLEET_API_URL,
    CONF_FLOW_REQUESTS,
    CONF_REGION,
    CONF_SERVER_URL,
    CONF_TOKEN,
    DEFAULT_BILL_STATE_CHECKS,
    DOMAIN,
    FLEET_API_SERVERS,
    SCOPE_VEHICLE_LOCATION,
)
from .entity import account_device_info
from .errors import (
    FleetError,
    NotRegisteredFleetError,
    WrongRegionError,
)
from .keys import PublicKeyView
from .models import TeslaConfigEntry, TeslaRuntimeData
from .oauth import TeslaOAuth2Implementation, granted_scopes, token_region
from .redact import install_log_redaction
from .roster import async_setup_scout, vehicle_gone
from .scout_memory import ScoutMemory, storage_key as scout_storage_key
from .servers import server_for
from .services import async_setup_services
from .session_manager import SessionManager
from .signing import SigningPolicy, async_delete_entry_issues
from .token_manager import STORAGE_VERSION, TeslaTokenManager, TokenUnavailableError
from .usage import ApiCategory, ApiUsage
from .vehicle import TeslaVehicle

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.DEVICE_TRACKER,
    Platform.SENSOR,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions and keep secrets out of the logs."""
    install_log_redaction()
    async_setup_services(hass)
    hass.http.register_view(PublicKeyView())
    return True


ISSUE_MISSING_SCOPE_LOCATION = "missing_scope_location"
ISSUE_NOT_REGISTERED = "app_not_registered"


def fleet_server(entry: TeslaConfigEntry) -> str:
    """Return the Fleet API base URL for the entry (see servers.server_for)."""
    return server_for(entry.data)


def account_region(entry: TeslaConfigEntry) -> str:
    """Return the account's region: the access token's ou_code, else the entry's."""
    token = entry.data.get(CONF_TOKEN) or {}
    region = token_region(str(token.get("access_token", "")))
    if region in FLEET_API_SERVERS:
        return region
    return str(entry.data.get(CONF_REGION) or "na")


def missing_scope_issue_id(entry: TeslaConfigEntry) -> str:
    """Return the id of the entry's repair issue about the location scope."""
    return f"{ISSUE_MISSING_SCOPE_LOCATION}_{entry.entry_id}"


@callback
def _async_location_scope_issue(
    hass: HomeAssistant, entry: TeslaConfigEntry, granted: bool
) -> None:
    """Raise (or clear) the repair issue saying vehicle location is not granted."""
    issue_id = missing_scope_issue_id(entry)
    if granted:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_MISSING_SCOPE_LOCATION,
        translation_placeholders={
            "title": entry.title,
            "scope": SCOPE_VEHICLE_LOCATION,
        },
    )


@callback
def _async_count_flow_requests(
    hass: HomeAssistant, entry: TeslaConfigEntry, usage: ApiUsage
) -> None:
    """Count the requests the config flow made before the entry existed, once."""
    if (billed := entry.data.get(CONF_FLOW_REQUESTS)) is None:
        return
    for category, count in billed.items():
        for _ in range(int(count)):
            usage.record(ApiCategory(category))
    data = {k: v for k, v in entry.data.items() if k != CONF_FLOW_REQUESTS}
    hass.config_entries.async_update_entry(entry, data=data)


def not_registered_issue_id(entry: TeslaConfigEntry) -> str:
    """Return the id of the entry's repair issue about the app's registration."""
    return f"{ISSUE_NOT_REGISTERED}_{entry.entry_id}"


@callback
def _async_not_registered_issue(hass: HomeAssistant, entry: TeslaConfigEntry) -> None:
    """Raise the fixable repair: register the app in the account's region."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        not_registered_issue_id(entry),
        is_fixable=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_NOT_REGISTERED,
        translation_placeholders={
            "title": entry.title,
            "server": server_for(entry.data),
        },
        data={"entry_id": entry.entry_id},
    )


async def async_setup_entry(hass: HomeAssistant, entry: TeslaConfigEntry) -> bool:
    """Set up one Tesla account."""
    try:
        implementation = await async_get_config_entry_implementation(hass, entry)
    except ImplementationUnavailableError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="credentials_provider_unavailable",
        ) from err
    if not isinstance(implementation, TeslaOAuth2Implementation):
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key="credentials_unavailable"
        )
    implementation = implementation.for_server(
        entry.data.get(CONF_SERVER_URL), account_region(entry)
    )

    tokens = TeslaTokenManager(hass, entry, implementation)
    entry.async_on_unload(tokens.async_stop)
    try:
        await tokens.async_start()
    except TokenUnavailableError as err:
        raise ConfigEntryNotReady(str(err)) from err

    usage = ApiUsage(
        hass,
        entry.entry_id,
        bill_state_checks=entry.options.get(
            CONF_BILL_STATE_CHECKS, DEFAULT_BILL_STATE_CHECKS
        ),
    )
    await usage.async_load()
    _async_count_flow_requests(hass, entry, usage)
    entry.async_on_unload(usage.async_stop)

    scopes = granted_scopes(tokens.access_token)
    location_granted = scopes is None or SCOPE_VEHICLE_LOCATION in scopes
    _async_location_scope_issue(hass, entry, location_granted)

    @callback
    def region_found(region: str, base_url: str) -> None:
        """Keep the base URL (and known region) Tesla named; the client uses it."""
        data = {**entry.data, CONF_FLEET_API_URL: base_url}
        if region in FLEET_API_SERVERS:
            data[CONF_REGION] = region
        hass.config_entries.async_update_entry(entry, data=data)

    # Commands to a proxy with its own TLS trust get a session of their own.
    try:
        commands_session = await async_commands_session(hass, entry.data)
    except CaFileError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="commands_ca_file_unusable"
        ) from err
    if commands_session is not None:
        entry.async_on_unload(close_with_hass(hass, commands_session))

    override = entry.data.get(CONF_SERVER_URL)
    client = FleetClient(
        async_get_clientsession(hass),
        tokens,
        usage,
        fleet_server(entry),
        entry.data.get(CONF_COMMANDS_URL),
        commands_session=commands_session,
        server_override=str(override).rstrip("/") if override else None,
        location_granted=location_granted,
        on_region=region_found,
        on_location_refused=lambda: _async_location_scope_issue(hass, entry, False),
        on_not_registered=lambda: _async_not_registered_issue(hass, entry),
    )
    try:
        listing = await client.async_list_vehicles()
    except NotRegisteredFleetError as err:
        # The repair registers the app and reloads the entry; no retry loop.
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key="app_not_registered"
        ) from err
    except WrongRegionError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key="wrong_region"
        ) from err
    except FleetError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="setup_failed"
        ) from err

    ir.async_delete_issue(hass, DOMAIN, not_registered_issue_id(entry))

    # The account device first: vehicle devices name it as their via device.
    account_device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **account_device_info(entry)
    )
    vehicles: dict[str, TeslaVehicle] = {}
    signing = SigningPolicy(
        hass, entry, vehicles, client, proxy=bool(entry.data.get(CONF_COMMANDS_URL))
    )
    control = ChargeControl(hass, client, signing)
    sessions = SessionManager(hass, entry, control, vehicles)
    await sessions.async_load()
    entry.async_on_unload(sessions.async_stop)
    memory = ScoutMemory(hass, entry.entry_id)
    await memory.async_load()
    entry.runtime_data = TeslaRuntimeData(
        account_device_id=account_device.id,
        tokens=tokens,
        client=client,
        usage=usage,
        control=control,
        sessions=sessions,
        memory=memory,
        vehicles=vehicles,
    )
    await async_setup_scout(hass, entry, listing)
    await signing.async_start()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # Drop signing repairs that no longer apply (a Commands URL was set, or
    # Tesla no longer lists the car as needing signed commands).
    signing.async_update()
    # After the coordinators and entities exist: re-arm and run what was missed.
    await sessions.async_start()
    return True


async def async_unload_entry(hass: HomeAssistant, entry: TeslaConfigEntry) -> bool:
    """Unload a config entry."""
    if unloaded := await hass.config_entries.async_unload_platforms(entry, PLATFORMS):
        await entry.runtime_data.usage.async_save()
        await entry.runtime_data.memory.async_save()
        await entry.runtime_data.control.signing.record.async_flush()
    return unloaded


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: TeslaConfigEntry, device_entry: dr.DeviceEntry
) -> bool:
    """Allow removing only devices of vehicles that left the account."""
    return vehicle_gone(entry, device_entry.identifiers)


async def async_remove_entry(hass: HomeAssistant, entry: TeslaConfigEntry) -> None:
    """Delete what this entry stored besides the entry itself."""
    for kind in ("tokens", "usage", "sessions", "pairing"):
        await Store[dict[str, object]](
            hass, STORAGE_VERSION, f"{DOMAIN}.{kind}.{entry.entry_id}"
        ).async_remove()
    await Store[dict[str, object]](
        hass, STORAGE_VERSION, scout_storage_key(entry.entry_id)
    ).async_remove()
    ir.async_delete_issue(hass, DOMAIN, missing_scope_issue_id(entry))
    ir.async_delete_issue(hass, DOMAIN, not_registered_issue_id(entry))
    async_delete_entry_issues(hass, entry.entry_id)
