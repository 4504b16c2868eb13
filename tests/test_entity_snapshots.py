"""Snapshots of every entity's registry entry and state, one test per platform.

The car is at home, plugged in, online and charging, on a frozen clock, with a
special charging session planned: the snapshots pin the entity set, unique ids,
entity ids, registry entries, states and attributes of today's integration.

Every platform is loaded (as for users) and each test snapshots one entity
domain, with the same assertions as Home Assistant's ``snapshot_platform``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
import re

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.types import PropertyPath, SerializableData

from custom_components.tesla_scout_worker.const import CONF_BATTERY_CAPACITY, DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import AccountConfig, SimClock, SimConfig, Simulator, VehicleConfig

from .common import find_device
from .scout_common import TIME_ZONE, VIN, prepare_home

WARSAW = dt_util.get_time_zone(TIME_ZONE)
assert WARSAW is not None
NOW = datetime(2027, 1, 13, 22, 30, tzinfo=WARSAW)  # a Wednesday evening
READY_BY = datetime(2027, 1, 14, 7, 0, tzinfo=WARSAW)
SESSION_ID = re.compile(r"session_[0-9a-z]{26}")


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Use Home Assistant's serializer and its tests/snapshots directory.

    The homeassistant pytest plugin defines this fixture too, but syrupy's
    plugin registers later and shadows it.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def scout_polling() -> bool:
    """Let the scout poll on its own (the default), so the next check is set."""
    return True


@pytest.fixture
async def home(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Freeze the clock; run in the car's time zone with zone.home at its home."""
    await prepare_home(hass, freezer, NOW)


@pytest.fixture
def sim(home: None) -> Simulator:
    """A car at home, plugged in and charging: 41 %, limit 50 %, 74.3 kWh."""
    car = VehicleConfig(
        battery_level=41,
        battery_capacity_kwh=74.3,
        charge_limit_soc=50,
        plugged_in=True,
    )
    config = SimConfig(accounts=[AccountConfig(vehicles=[car])])
    return Simulator(config, clock=SimClock.follow(dt_util.utcnow))


@pytest.fixture
async def planned_entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> MockConfigEntry:
    """The entry, set up with the car online and a special session planned."""
    hass.config_entries.async_update_entry(
        config_entry, options={CONF_BATTERY_CAPACITY: 74.3}
    )
    await setup_entry()
    assert config_entry.state is ConfigEntryState.LOADED
    device = find_device(hass, VIN)
    assert device is not None
    response = await hass.services.async_call(
        DOMAIN,
        "plan_special_charging",
        {
            "device_id": device.id,
            "target_soc": 90,
            "ready_by": READY_BY,
            "mode": "off_peak",
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["state"] == "scheduled"
    await hass.async_block_till_done()
    return config_entry


def _stable_session_id(
    *, data: SerializableData, path: PropertyPath
) -> SerializableData:
    """Replace the session's random id (a ULID) once it has the expected form."""
    if [str(name) for name, _ in path] == ["attributes", "session_id"]:
        assert isinstance(data, str)
        assert SESSION_ID.fullmatch(data), data
        return "session_<ulid>"
    return data


@pytest.mark.parametrize(
    "platform",
    [
        Platform.BINARY_SENSOR,
        Platform.BUTTON,
        Platform.DEVICE_TRACKER,
        Platform.SENSOR,
    ],
)
async def test_entities(
    hass: HomeAssistant,
    planned_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    """Every entity of the platform: its registry entry and its state."""
    entity_entries = sorted(
        (
            entity_entry
            for entity_entry in er.async_entries_for_config_entry(
                entity_registry, planned_entry.entry_id
            )
            if entity_entry.domain == platform
        ),
        key=lambda entity_entry: entity_entry.entity_id,
    )
    assert entity_entries
    assert [entity_entry.entity_id for entity_entry in entity_entries] == snapshot(
        name="entity_ids"
    )
    for entity_entry in entity_entries:
        assert entity_entry == snapshot(name=f"{entity_entry.entity_id}-entry")
        assert entity_entry.disabled_by is None, "Please enable all entities."
        state = hass.states.get(entity_entry.entity_id)
        assert state, f"State not found for {entity_entry.entity_id}"
        assert state == snapshot(
            name=f"{entity_entry.entity_id}-state", matcher=_stable_session_id
        )


async def test_only_known_platforms(
    planned_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """No entity of the entry lives outside the snapshotted platforms."""
    domains = {
        entity_entry.domain
        for entity_entry in er.async_entries_for_config_entry(
            entity_registry, planned_entry.entry_id
        )
    }
    assert domains == {
        Platform.BINARY_SENSOR,
        Platform.BUTTON,
        Platform.DEVICE_TRACKER,
        Platform.SENSOR,
    }


async def test_devices(
    planned_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The account device and the vehicle device it links to."""
    devices = sorted(
        dr.async_entries_for_config_entry(device_registry, planned_entry.entry_id),
        key=lambda device: sorted(device.identifiers),
    )
    assert devices == snapshot
