"""Base entities."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .coordinator import STALE_AFTER, VehicleCoordinator
from .models import TeslaConfigEntry
from .roster import signal_new_vehicle
from .vehicle import TeslaVehicle

LOCATION_ENTITY_KEYS = frozenset({"location", "at_home", "distance_home"})
"""Entities that need the vehicle_location scope."""


def account_device_info(entry: TeslaConfigEntry) -> DeviceInfo:
    """Return the device that stands for the Tesla account (its Fleet API access)."""
    return DeviceInfo(
        identifiers={(DOMAIN, str(entry.unique_id))},
        name=entry.title,
        manufacturer="Tesla",
        model="Fleet API account",
        entry_type=DeviceEntryType.SERVICE,
    )


class AccountEntity(Entity):
    """An entity of the account device, pushed by the token manager or usage."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, entry: TeslaConfigEntry, description: EntityDescription) -> None:
        """Initialize."""
        self.entity_description = description
        self._entry = entry
        self._attr_unique_id = f"{entry.unique_id}_{description.key}"
        self._attr_device_info = account_device_info(entry)


class VehicleEntity(CoordinatorEntity[VehicleCoordinator]):
    """An entity of a vehicle device, updated by the scout."""

    _attr_has_entity_name = True

    def __init__(self, vehicle: TeslaVehicle, description: EntityDescription) -> None:
        """Initialize."""
        super().__init__(vehicle.coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{vehicle.vin}_{description.key}"
        self._attr_device_info = vehicle.device_info

    @property
    def available(self) -> bool:
        """Available while Tesla's server was reached within the stale limit.

        Location entities need the vehicle_location scope too.
        """
        if (
            self.entity_description.key in LOCATION_ENTITY_KEYS
            and not self.coordinator.location_granted
        ):
            return False
        data = self.coordinator.data
        return data is not None and dt_util.utcnow() - data.checked_at <= STALE_AFTER


@callback
def async_add_vehicle_entities(
    hass: HomeAssistant,
    entry: TeslaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Callable[[TeslaVehicle], Iterable[Entity]],
) -> None:
    """Add the entities of every vehicle now and of vehicles that appear later."""

    @callback
    def _add(vehicle: TeslaVehicle) -> None:
        async_add_entities(make(vehicle))

    for vehicle in entry.runtime_data.vehicles.values():
        _add(vehicle)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_vehicle(entry), _add)
    )
