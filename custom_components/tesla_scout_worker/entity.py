"""Base entities."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN
from .models import TeslaConfigEntry


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
