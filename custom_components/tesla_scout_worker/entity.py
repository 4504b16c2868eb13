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
from .coordinator import STALE_AFTER, VehicleCoordinator, signal_new_vehicle
from .models import TeslaConfigEntry

MODELS = {"S": "Model S", "3": "Model 3", "X": "Model X", "Y": "Model Y"}


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


def vehicle_model(vin: str) -> str | None:
    """Return the model named by the VIN's fourth character."""
    return MODELS.get(vin[3:4].upper())


def vehicle_device_info(coordinator: VehicleCoordinator) -> DeviceInfo:
    """Return the device of a vehicle, linked to the account device."""
    data = coordinator.data
    version = data.vehicle_state.get("car_version") if data is not None else None
    return DeviceInfo(
        identifiers={(DOMAIN, coordinator.vin)},
        name=coordinator.display_name,
        manufacturer="Tesla",
        model=vehicle_model(coordinator.vin),
        sw_version=str(version).split(" ", 1)[0] if version else None,
        via_device_id=coordinator.config_entry.runtime_data.account_device_id,
    )


class VehicleEntity(CoordinatorEntity[VehicleCoordinator]):
    """An entity of a vehicle device, updated by the scout."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: VehicleCoordinator, description: EntityDescription
    ) -> None:
        """Initialize."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.vin}_{description.key}"
        self._attr_device_info = vehicle_device_info(coordinator)

    @property
    def available(self) -> bool:
        """Available while Tesla's server was reached within the stale limit."""
        data = self.coordinator.data
        return data is not None and dt_util.utcnow() - data.checked_at <= STALE_AFTER


@callback
def async_add_vehicle_entities(
    hass: HomeAssistant,
    entry: TeslaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    make: Callable[[VehicleCoordinator], Iterable[Entity]],
) -> None:
    """Add the entities of every vehicle now and of vehicles that appear later."""

    @callback
    def _add(coordinator: VehicleCoordinator) -> None:
        async_add_entities(make(coordinator))

    for coordinator in entry.runtime_data.coordinators.values():
        _add(coordinator)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_new_vehicle(entry), _add)
    )
