"""Diagnostics never contain tokens, secrets, VINs or locations."""

from __future__ import annotations

from datetime import UTC, datetime
import json
import re

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props
from syrupy.types import PropertyPath, SerializableData

from custom_components.tesla_scout_worker.const import CONF_SERVER_URL, CONF_TOKEN
from custom_components.tesla_scout_worker.diagnostics import (
    async_get_config_entry_diagnostics,
)
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import SimClock, Simulator

from .conftest import CLIENT_SECRET

NOW = datetime(2027, 1, 13, 21, 30, tzinfo=UTC)
LOOPBACK_URL = re.compile(r"http://127\.0\.0\.1:\d+")


@pytest.fixture
def sim(freezer: FrozenDateTimeFactory) -> Simulator:
    """The default account, on a clock frozen at a fixed instant.

    Token expiry, the minutes left and the billing month then never change
    between runs.
    """
    freezer.move_to(NOW)
    return Simulator(clock=SimClock.follow(dt_util.utcnow))


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Use Home Assistant's serializer and its tests/snapshots directory.

    The homeassistant pytest plugin defines this fixture too, but syrupy's
    plugin registers later and shadows it.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


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


def _simulator_url(*, data: SerializableData, path: PropertyPath) -> SerializableData:
    """Replace the simulator's URL: its port is a free one, new every run."""
    if [str(name) for name, _ in path] == ["entry", "data", CONF_SERVER_URL]:
        assert isinstance(data, str)
        assert LOOPBACK_URL.fullmatch(data), data
        return "http://127.0.0.1:<port>"
    return data


async def test_diagnostics_snapshot(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
    hass_client: ClientSessionGenerator,
    snapshot: SnapshotAssertion,
) -> None:
    """The diagnostics download, as the frontend gets it, is unchanged.

    ``hass_client`` comes after the entry (so after the clock is frozen): its
    access token is issued at the frozen time, not before it.
    """
    diag = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    text = json.dumps(diag)
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
    assert diag == snapshot(
        exclude=props("entry_id", "created_at", "modified_at"),
        matcher=_simulator_url,
    )
