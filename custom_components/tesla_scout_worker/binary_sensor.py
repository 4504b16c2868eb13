"""Binary sensors of a vehicle: at home, plugged in, charging."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import VehicleEntity, async_add_vehicle_entities
from .models import TeslaConfigEntry
from .vehicle import TeslaVehicle
from .vehicle_data import VehicleData

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class VehicleBinarySensorDescription(BinarySensorEntityDescription):
    """Describes a vehicle binary sensor."""

    value_fn: Callable[[VehicleData], bool | None]


VEHICLE_BINARY_SENSORS: tuple[VehicleBinarySensorDescription, ...] = (
    VehicleBinarySensorDescription(
        key="at_home",
        translation_key="at_home",
        device_class=BinarySensorDeviceClass.PRESENCE,
        value_fn=lambda data: data.at_home,
    ),
    VehicleBinarySensorDescription(
        key="plugged_in",
        translation_key="plugged_in",
        device_class=BinarySensorDeviceClass.PLUG,
        value_fn=lambda data: data.plugged_in,
    ),
    VehicleBinarySensorDescription(
        key="charging",
        translation_key="charging",
        device_class=BinarySensorDeviceClass.BATTERY_CHARGING,
        value_fn=lambda data: data.charging,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TeslaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the binary sensors of every vehicle."""

    def make(vehicle: TeslaVehicle) -> list[VehicleBinarySensor]:
        return [
            VehicleBinarySensor(vehicle, description)
            for description in VEHICLE_BINARY_SENSORS
        ]

    async_add_vehicle_entities(hass, entry, async_add_entities, make)


class VehicleBinarySensor(VehicleEntity, BinarySensorEntity):
    """A binary sensor of a vehicle."""

    entity_description: VehicleBinarySensorDescription

    @property
    def is_on(self) -> bool | None:
        """Return the value."""
        return self.entity_description.value_fn(self.coordinator.data)
