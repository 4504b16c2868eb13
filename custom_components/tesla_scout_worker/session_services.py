"""Actions of special charging sessions: plan, cancel, list."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, cast

import probatio

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.util import dt as dt_util
from homeassistant.util.json import JsonValueType

from .charging_needs import ChargingNeed
from .const import DOMAIN
from .models import TeslaConfigEntry
from .plan_inputs import MODES, validation_error
from .session_manager import SessionManager

SERVICE_PLAN: Final = "plan_special_charging"
SERVICE_CANCEL: Final = "cancel_special_charging"
SERVICE_LIST: Final = "list_sessions"

ATTR_TARGET_SOC: Final = "target_soc"
ATTR_READY_BY: Final = "ready_by"
ATTR_MODE: Final = "mode"
ATTR_PRICE_ENTITY: Final = "price_entity"
ATTR_CONTINUOUS: Final = "continuous"
ATTR_QUEUE: Final = "queue"
ATTR_SESSION_ID: Final = "session_id"

PLAN_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required(ATTR_DEVICE_ID): cv.string,
        probatio.Required(ATTR_TARGET_SOC): probatio.All(
            probatio.Coerce(int), probatio.Range(min=1, max=100)
        ),
        probatio.Required(ATTR_READY_BY): cv.datetime,
        probatio.Optional(ATTR_MODE): probatio.In(MODES),
        probatio.Optional(ATTR_PRICE_ENTITY): cv.entity_id,
        probatio.Optional(ATTR_CONTINUOUS, default=True): cv.boolean,
        probatio.Optional(ATTR_QUEUE, default=False): cv.boolean,
    }
)
CANCEL_SCHEMA: Final = probatio.All(
    probatio.Schema(
        {
            probatio.Optional(ATTR_SESSION_ID): cv.string,
            probatio.Optional(ATTR_DEVICE_ID): cv.string,
        }
    ),
    cv.has_at_least_one_key(ATTR_SESSION_ID, ATTR_DEVICE_ID),
)
LIST_SCHEMA: Final = probatio.Schema({probatio.Optional(ATTR_DEVICE_ID): cv.string})


def _managers(hass: HomeAssistant) -> list[SessionManager]:
    entries: list[TeslaConfigEntry] = [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED
    ]
    return [entry.runtime_data.sessions for entry in entries]


def _vehicle(hass: HomeAssistant, device_id: str) -> tuple[SessionManager, str]:
    """Return the session manager and VIN of a vehicle device."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        raise validation_error("device_not_found", {"device_id": device_id})
    vins = {value for domain, value in device.identifiers if domain == DOMAIN}
    for manager in _managers(hass):
        for vin in vins:
            if vin in manager.vehicles:
                return manager, vin
    raise validation_error("not_a_vehicle", {"device_id": device_id})


def _aware(value: datetime) -> datetime:
    """Take a naive ready-by as local time."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt_util.get_default_time_zone())
    return value


async def _async_plan(call: ServiceCall) -> ServiceResponse:
    manager, vin = _vehicle(call.hass, call.data[ATTR_DEVICE_ID])
    need = ChargingNeed(
        vin=vin,
        target_soc=call.data[ATTR_TARGET_SOC],
        ready_by=_aware(call.data[ATTR_READY_BY]),
        mode=call.data.get(ATTR_MODE),
        price_entity=call.data.get(ATTR_PRICE_ENTITY),
        continuous=call.data[ATTR_CONTINUOUS],
    )
    if call.data[ATTR_QUEUE]:
        queued = await manager.async_enqueue(need)
        return {
            "queued": True,
            "ready_by": queued.ready_by.isoformat(),
            "target_soc": queued.target_soc,
            "queue_length": len(manager.store.queue),
        }
    session = await manager.async_plan(need)
    response: dict[str, Any] = session.public_dict(manager.device_id(vin))
    response["plan"] = session.plan.as_dict()
    return response


async def _async_cancel(call: ServiceCall) -> ServiceResponse:
    session_id: str | None = call.data.get(ATTR_SESSION_ID)
    if session_id is None:
        manager, vin = _vehicle(call.hass, call.data[ATTR_DEVICE_ID])
        session = manager.open_session(vin)
        if session is None:
            raise validation_error("no_open_session")
        session_id = session.id
    else:
        found = [m for m in _managers(call.hass) if session_id in m.sessions]
        if not found:
            raise validation_error("session_not_found", {"session_id": session_id})
        manager = found[0]
    session = await manager.async_cancel(session_id)
    return session.public_dict(manager.device_id(session.vin))


async def _async_list(call: ServiceCall) -> ServiceResponse:
    if (device_id := call.data.get(ATTR_DEVICE_ID)) is not None:
        manager, vin = _vehicle(call.hass, device_id)
        return {"sessions": cast("list[JsonValueType]", manager.public_sessions(vin))}
    sessions: list[dict[str, Any]] = []
    for manager in _managers(call.hass):
        sessions.extend(manager.public_sessions())
    return {"sessions": cast("list[JsonValueType]", sessions)}


@callback
def async_setup_session_services(hass: HomeAssistant) -> None:
    """Register the session actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_PLAN,
        _async_plan,
        schema=PLAN_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_CANCEL,
        _async_cancel,
        schema=CANCEL_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_LIST,
        _async_list,
        schema=LIST_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
