"""Diagnostics never contain tokens, secrets, VINs or locations."""

from __future__ import annotations

import json

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.const import CONF_TOKEN
from custom_components.tesla_scout_worker.diagnostics import (
    async_get_config_entry_diagnostics,
)
from homeassistant.core import HomeAssistant
from tesla_fleet_sim import Simulator

from .conftest import CLIENT_SECRET


async def test_diagnostics_redacted(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """Secrets and identifiers are redacted; health and usage are present."""
    diag = await async_get_config_entry_diagnostics(hass, loaded_entry)
    text = json.dumps(diag, default=str)
    token = loaded_entry.data[CONF_TOKEN]
    for secret in (
        token["access_token"],
        token["refresh_token"],
        CLIENT_SECRET,
        sim.vehicle().vin,
        loaded_entry.unique_id,
        loaded_entry.title,
    ):
        assert secret not in text
    assert diag["entry"]["data"][CONF_TOKEN] == "**REDACTED**"
    assert diag["token"]["status"] == "valid"
    assert diag["usage"]["counts"]["state_check"] == 1
    assert diag["vehicles"][0]["vin"] == "**REDACTED**"
    assert diag["vehicles"][0]["state"] == "online"
