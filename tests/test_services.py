"""Token actions."""

from __future__ import annotations

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.const import DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from tesla_fleet_sim import Simulator


async def test_check_token(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    """check_token answers with status and minutes left."""
    response = await hass.services.async_call(
        DOMAIN, "check_token", {}, blocking=True, return_response=True
    )
    assert response is not None
    assert response["status"] == "valid"
    remaining = response["remaining_minutes"]
    assert isinstance(remaining, int)
    assert 470 <= remaining <= 480
    assert response["refresh_count"] == 0


async def test_refresh_token(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """refresh_token refreshes; a second one within a minute is refused."""
    response = await hass.services.async_call(
        DOMAIN,
        "refresh_token",
        {"config_entry_id": loaded_entry.entry_id},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["refresh_count"] == 1
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, "refresh_token", {}, blocking=True)
    assert err.value.translation_key == "refresh_rate_limited"
    await hass.services.async_call(
        DOMAIN, "refresh_token", {"emergency": True}, blocking=True
    )
    assert len(sim.token_requests("refresh_token")) == 2


async def test_unknown_entry(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """An unknown or unloaded entry id is a validation error."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "check_token",
            {"config_entry_id": "nope"},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "entry_not_loaded"


async def test_entry_required_with_two_accounts(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """With no account loaded, or more than one, the caller must choose."""
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "check_token", {}, blocking=True, return_response=True
        )
    assert err.value.translation_key == "no_loaded_entry"


async def test_entry_required_when_ambiguous(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two loaded accounts need config_entry_id."""
    entries = [loaded_entry, loaded_entry]
    monkeypatch.setattr(
        hass.config_entries, "async_entries", lambda *_args, **_kw: entries
    )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "check_token", {}, blocking=True, return_response=True
        )
    assert err.value.translation_key == "entry_required"
