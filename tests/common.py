"""Arrange/act helpers shared by the integration's tests.

The frozen clock, the simulator's request log, devices, the sign-in and
reauth flows, the Force update button and the special charging sessions, each
in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aiohttp import ClientSession
from freezegun.api import FrozenDateTimeFactory
import probatio
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.tesla_scout_worker.const import CONF_SERVER_URL, DOMAIN
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowContext, FlowResult, FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import Simulator
from tesla_fleet_sim.billing import RequestRecord

SESSIONS_STORAGE_KEY = f"{DOMAIN}.sessions"

# --- the frozen clock -------------------------------------------------------


async def advance(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    delta: timedelta,
    step: timedelta = timedelta(minutes=1),
) -> None:
    """Let simulated time pass in steps, running every timer that comes due."""
    end = dt_util.utcnow() + delta
    while (now := dt_util.utcnow()) < end:
        freezer.tick(min(step, end - now))
        async_fire_time_changed(hass)
        # Scheduled refreshes run as background tasks doing real loopback I/O:
        # let them finish before the clock jumps past their request timeout.
        await hass.async_block_till_done(wait_background_tasks=True)


async def advance_to(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, when: datetime
) -> None:
    """Move the clock to ``when`` in one jump and run everything that became due."""
    freezer.move_to(when)
    async_fire_time_changed(hass, when)
    await hass.async_block_till_done(wait_background_tasks=True)


async def tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, delta: timedelta
) -> None:
    """Move the clock forward by ``delta`` in one jump and run the due timers."""
    await advance_to(hass, freezer, dt_util.utcnow() + delta)


# --- what Home Assistant shows ----------------------------------------------


def state(hass: HomeAssistant, entity_id: str) -> str:
    """Return an entity's state."""
    current = hass.states.get(entity_id)
    assert current is not None, entity_id
    return current.state


def find_device(hass: HomeAssistant, identifier: str) -> dr.DeviceEntry | None:
    """Return this integration's device with the identifier (VIN or account)."""
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    return dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, identifier), entry.entry_id
    )


def device_id(hass: HomeAssistant, identifier: str) -> str:
    """Return the id of this integration's device (VIN or account); it must exist."""
    device = find_device(hass, identifier)
    assert device is not None, identifier
    return device.id


def reauth_flows(hass: HomeAssistant) -> list[Any]:
    """Return the reauth flows in progress."""
    return [
        flow
        for flow in hass.config_entries.flow.async_progress()
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


# --- the config flow: signing in at the simulator ----------------------------


async def start_flow(hass: HomeAssistant, sim_url: str) -> dict[str, Any]:
    """Start a user flow and name the simulator in the advanced section."""
    # Before the test HTTP client starts: aiohttp's test server freezes its
    # router, and the integration registers its public-key view at setup
    # (Home Assistant's own server never freezes it).
    assert await async_setup_component(hass, DOMAIN, {})
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"advanced": {CONF_SERVER_URL: sim_url + "/"}}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    return dict(result)


async def sign_in(
    hass_client_no_auth: ClientSessionGenerator, authorize_url: str
) -> URL:
    """Follow the authorize URL like a browser and hand the callback to HA."""
    async with (
        ClientSession() as browser,
        browser.get(authorize_url, allow_redirects=False) as resp,
    ):
        assert resp.status == 302
        location = URL(resp.headers["Location"])
    assert location.path == "/auth/external/callback"
    client = await hass_client_no_auth()
    callback = await client.get(f"{location.path}?{location.query_string}")
    assert callback.status == 200
    return location


async def sign_in_and_continue(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    result: Mapping[str, Any],
) -> dict[str, Any]:
    """Sign in at a flow's external step and return the flow's next step."""
    await sign_in(hass_client_no_auth, result["url"])
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    await hass.async_block_till_done()
    return dict(result)


async def sign_in_and_finish(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, sim_url: str
) -> dict[str, Any]:
    """Start a flow, sign in at the simulator and return the flow's last step."""
    result = await start_flow(hass, sim_url)
    return await sign_in_and_continue(hass, hass_client_no_auth, result)


async def through_triggers(
    hass: HomeAssistant,
    result: Mapping[str, Any],
    user_input: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Answer the triggers step shown before the entry is created.

    Without ``user_input`` the fields are cleared: no trigger.
    """
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "triggers"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input or {}
    )
    await hass.async_block_till_done()
    return dict(result)


async def reauth(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    entry: MockConfigEntry,
) -> dict[str, Any]:
    """Start the entry's reauth, sign in again and return the flow's last step."""
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    assert result["url"].startswith(entry.data[CONF_SERVER_URL])
    return await sign_in_and_continue(hass, hass_client_no_auth, result)


def form_schema[ContextT: FlowContext, HandlerT](
    result: FlowResult[ContextT, HandlerT],
) -> probatio.Schema:
    """Return the schema of a flow's form step (a form always has one)."""
    schema = result["data_schema"]
    assert schema is not None
    return schema


def placeholders[ContextT: FlowContext, HandlerT](
    result: FlowResult[ContextT, HandlerT],
) -> Mapping[str, str]:
    """Return the description placeholders of a flow step that has them."""
    values = result["description_placeholders"]
    assert values is not None
    return values


async def press_force_update(hass: HomeAssistant, car: str) -> None:
    """Press a car's Force update button (``car`` is its entity id prefix)."""
    await hass.services.async_call(
        "button", "press", {"entity_id": f"button.{car}_force_update"}, blocking=True
    )
    await hass.async_block_till_done()


# --- what the simulator saw -------------------------------------------------


def calls(sim: Simulator, category: str) -> int:
    """Return how many requests of a billing category the simulator answered."""
    return len(sim.api_requests(category))


def vehicle_data_calls(sim: Simulator) -> int:
    """Return how many vehicle_data requests the simulator answered.

    The data category also holds the daily question which cars know the
    signing key (fleet_status); a check of the car is a vehicle_data request.
    """
    return sum(1 for r in sim.api_requests("data") if r.path.endswith("/vehicle_data"))


def billed(counts: Mapping[Any, int]) -> dict[str, int]:
    """Return usage counters as Tesla bills them: a handshake is a command."""
    result = {str(k): v for k, v in counts.items()}
    result["command"] = result.get("command", 0) + result.pop("handshake", 0)
    return result


def command_requests(sim: Simulator, name: str | None = None) -> list[RequestRecord]:
    """Return the command requests the simulator answered (any status).

    With ``name`` only those of that command, e.g. ``"set_charge_limit"``.
    """
    return [
        r
        for r in sim.api_requests("command")
        if name is None or r.path.rsplit("/", 1)[-1] == name
    ]


def commands(sim: Simulator) -> list[str]:
    """Return the names of the commands the simulator carried out (HTTP 200)."""
    return [r.path.rsplit("/", 1)[-1] for r in command_requests(sim) if r.status == 200]


# --- special charging sessions ----------------------------------------------


async def plan_special_charging(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    """Call the plan action; ``None`` values are left out of the call."""
    response = await hass.services.async_call(
        DOMAIN,
        "plan_special_charging",
        {key: value for key, value in data.items() if value is not None},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


def stored_sessions(
    hass_storage: dict[str, Any], entry: MockConfigEntry
) -> dict[str, Any]:
    """Return the entry's persisted sessions and queue."""
    return dict(hass_storage[f"{SESSIONS_STORAGE_KEY}.{entry.entry_id}"]["data"])


def stored_state(hass_storage: dict[str, Any], entry: MockConfigEntry) -> str:
    """Return the persisted state of the newest session."""
    sessions = stored_sessions(hass_storage, entry)["sessions"]
    newest = max(sessions, key=lambda s: s["created_at"])
    return str(newest["state"])
