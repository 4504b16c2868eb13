"""Buttons of a vehicle: check it now (never wakes it)."""

from __future__ import annotations

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import VehicleEntity, async_add_vehicle_entities
from .models import TeslaConfigEntry
from .vehicle import TeslaVehicle

PARALLEL_UPDATES = 1

FORCE_UPDATE = ButtonEntityDescription(
    key="force_update",
    translation_key="force_update",
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TeslaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the buttons of every vehicle."""

    def make(vehicle: TeslaVehicle) -> list[ForceUpdateButton]:
        return [ForceUpdateButton(vehicle, FORCE_UPDATE)]

    async_add_vehicle_entities(hass, entry, async_add_entities, make)


class ForceUpdateButton(VehicleEntity, ButtonEntity):
    """Check the vehicle now: state check, data only if it is online."""

    @property
    def available(self) -> bool:
        """Always pressable: a check is how stale data gets fresh again."""
        return True

    async def async_press(self) -> None:
        """Run a check now (at most one per 10 s; never a wake-up)."""
        await self.coordinator.async_request_refresh()
