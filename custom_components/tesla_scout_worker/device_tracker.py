"""Where each vehicle is (GPS from the last vehicle data)."""

from __future__ import annotations

from homeassistant.components.device_tracker import TrackerEntity
from homeassistant.components.device_tracker.const import SourceType
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import VehicleEntity, async_add_vehicle_entities
from .models import TeslaConfigEntry
from .vehicle import TeslaVehicle

PARALLEL_UPDATES = 0

LOCATION = EntityDescription(key="location", translation_key="location")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TeslaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up a tracker for every vehicle."""

    def make(vehicle: TeslaVehicle) -> list[VehicleTracker]:
        return [VehicleTracker(vehicle, LOCATION)]

    async_add_vehicle_entities(hass, entry, async_add_entities, make)


class VehicleTracker(VehicleEntity, TrackerEntity):
    """The vehicle's position."""

    _attr_source_type = SourceType.GPS

    @property
    def latitude(self) -> float | None:
        """Return the latitude."""
        location = self.coordinator.data.location
        return location[0] if location is not None else None

    @property
    def longitude(self) -> float | None:
        """Return the longitude."""
        location = self.coordinator.data.location
        return location[1] if location is not None else None
