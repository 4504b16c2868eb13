"""One record per car: what every part of the integration knows about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.helpers.device_registry import DeviceInfo

from .const import DOMAIN
from .coordinator import VehicleCoordinator

MODELS = {"S": "Model S", "3": "Model 3", "X": "Model X", "Y": "Model Y"}


def listed_signing(listing: dict[str, Any]) -> str | None:
    """Return the vehicle list's command_signing (required/allowed/off), if any."""
    value = listing.get("command_signing")
    return str(value) if value else None


def vehicle_model(vin: str) -> str | None:
    """Return the model named by the VIN's fourth character."""
    return MODELS.get(vin[3:4].upper())


@dataclass(slots=True)
class TeslaVehicle:
    """A car of the account: its VIN, name, listing, device and scout."""

    vin: str
    name: str
    listing: dict[str, Any]
    """The car's entry in the account's vehicle list (GET /api/1/vehicles)."""
    coordinator: VehicleCoordinator
    account_device_id: str
    command_signing: str | None = None
    """Whether the car needs signed commands: "required", "allowed" or "off".

    From the vehicle list (updated whenever it is read again); "required" as
    well once the car refused an unsigned command. None when Tesla did not say.
    """

    @property
    def device_info(self) -> DeviceInfo:
        """Return the car's device, linked to the account device."""
        data = self.coordinator.data
        version = data.vehicle_state.get("car_version") if data is not None else None
        return DeviceInfo(
            identifiers={(DOMAIN, self.vin)},
            name=self.name,
            manufacturer="Tesla",
            model=vehicle_model(self.vin),
            sw_version=str(version).split(" ", 1)[0] if version else None,
            via_device_id=self.account_device_id,
        )
