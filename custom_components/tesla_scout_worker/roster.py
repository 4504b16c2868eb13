"""The scout's roster: the account's vehicles and what makes them checked now.

The roster creates a coordinator and a vehicle record per car at setup,
re-lists the account once a day to add new vehicles and drop removed ones
(their devices too), and turns the optional trigger entities (people,
trackers, binary sensors, a charger's plugged-in entity) into immediate checks.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.const import STATE_HOME, STATE_ON
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import (
    async_track_state_change_event,
    async_track_time_interval,
)

from .const import CONF_ARRIVAL_ENTITIES, CONF_PLUGGED_ENTITY, DOMAIN, LOGGER
from .coordinator import VehicleCoordinator
from .models import TeslaConfigEntry
from .vehicle import TeslaVehicle, listed_signing
from .vehicle_data import home_zone

RELIST_INTERVAL: Final = timedelta(days=1)
PLUGGED_TRIGGER_STATES: Final = frozenset(
    {STATE_ON, "plugged", "plugged_in", "connected", "charging", "true"}
)


def signal_new_vehicle(entry: TeslaConfigEntry) -> str:
    """Return the dispatcher signal that announces a new vehicle."""
    return f"{DOMAIN}_new_vehicle_{entry.entry_id}"


def _is_trigger(
    entity_id: str,
    old: State | None,
    new: State | None,
    *,
    plugged_entity: str | None,
    home_state: str,
) -> bool:
    """Return whether a state change asks for an immediate check.

    A person or tracker entering the home zone is an arrival; leaving it is a
    departure, after which the car is usually on the road and online, so one
    check sees it leave instead of showing it at home all day.
    """
    if old is None or new is None or old.state == new.state:
        return False
    if entity_id == plugged_entity:
        return new.state.lower() in PLUGGED_TRIGGER_STATES
    if entity_id.startswith("binary_sensor."):
        return new.state == STATE_ON
    return home_state in (old.state, new.state)


class VehicleRoster:
    """The account's vehicles: coordinators, daily re-listing, triggers."""

    def __init__(self, hass: HomeAssistant, entry: TeslaConfigEntry) -> None:
        """Initialize; call async_setup during the entry's setup."""
        self.hass = hass
        self.entry = entry

    @property
    def vehicles(self) -> dict[str, TeslaVehicle]:
        """Return the account's cars by VIN."""
        return self.entry.runtime_data.vehicles

    async def async_setup(self, listing: list[dict[str, Any]]) -> None:
        """Create a record and coordinator per car, first refresh, start routines.

        ``listing`` is the account's vehicle list, read during setup.
        """
        created = [self._add(vehicle) for vehicle in listing]
        self.entry.runtime_data.memory.retain(self.vehicles)
        await asyncio.gather(
            *(v.coordinator.async_config_entry_first_refresh() for v in created)
        )
        self._remove_stale_devices()
        self.entry.async_on_unload(
            async_track_time_interval(
                self.hass,
                self._async_relist,
                RELIST_INTERVAL,
                name=f"{DOMAIN} vehicle list",
                cancel_on_shutdown=True,
            )
        )
        if unsub := self._track_triggers():
            self.entry.async_on_unload(unsub)

    def _add(self, listing: dict[str, Any]) -> TeslaVehicle:
        data = self.entry.runtime_data
        coordinator = VehicleCoordinator(
            self.hass,
            self.entry,
            listing,
            client=data.client,
            control=data.control,
            session_active=data.sessions.is_active,
            memory=data.memory,
        )
        vehicle = TeslaVehicle(
            vin=coordinator.vin,
            name=coordinator.display_name,
            listing=listing,
            coordinator=coordinator,
            account_device_id=data.account_device_id,
            command_signing=listed_signing(listing),
        )
        self.vehicles[vehicle.vin] = vehicle
        return vehicle

    async def _async_relist(self, _now: datetime | None = None) -> None:
        """Re-list the account: add new vehicles, drop the ones that are gone."""
        if self.entry.pref_disable_polling:
            return  # the user turned automatic checks off
        try:
            vehicles = await self.entry.runtime_data.client.async_list_vehicles()
        except HomeAssistantError as err:
            LOGGER.debug("Could not re-list the vehicles: %s", err)
            return
        current = {str(v["vin"]) for v in vehicles}
        for vin in [vin for vin in self.vehicles if vin not in current]:
            gone = self.vehicles.pop(vin)
            LOGGER.info("%s left the account; removing it", gone.name)
            await gone.coordinator.async_shutdown()
        self.entry.runtime_data.memory.retain(current)
        self._remove_stale_devices()
        for listing in vehicles:
            known = self.vehicles.get(str(listing["vin"]))
            if known is not None:
                known.listing = listing
                known.command_signing = listed_signing(listing)
                continue
            vehicle = self._add(listing)
            LOGGER.info("New vehicle %s on the account", vehicle.name)
            await vehicle.coordinator.async_refresh()
            async_dispatcher_send(self.hass, signal_new_vehicle(self.entry), vehicle)
        self.entry.runtime_data.control.signing.async_update()

    @callback
    def _remove_stale_devices(self) -> None:
        """Detach devices of vehicles that are no longer on the account."""
        registry = dr.async_get(self.hass)
        keep = {*self.vehicles, str(self.entry.unique_id)}
        for device in dr.async_entries_for_config_entry(registry, self.entry.entry_id):
            ours = {ident for domain, ident in device.identifiers if domain == DOMAIN}
            if ours and not ours & keep:
                registry.async_remove_device(device.id)

    @callback
    def _track_triggers(self) -> CALLBACK_TYPE | None:
        options = self.entry.options
        plugged = options.get(CONF_PLUGGED_ENTITY) or None
        entities = [str(e) for e in options.get(CONF_ARRIVAL_ENTITIES) or []]
        if plugged:
            entities.append(str(plugged))
        if not entities:
            return None

        @callback
        def _state_changed(event: Event[EventStateChangedData]) -> None:
            home = home_zone(self.hass, self.entry.options)
            if not _is_trigger(
                event.data["entity_id"],
                event.data["old_state"],
                event.data["new_state"],
                plugged_entity=plugged,
                home_state=home.name if home is not None else STATE_HOME,
            ):
                return
            LOGGER.debug(
                "%s changed: checking the vehicles now", event.data["entity_id"]
            )
            for vehicle in self.vehicles.values():
                self.entry.async_create_task(
                    self.hass,
                    vehicle.coordinator.async_request_refresh(),
                    name=f"{DOMAIN} triggered check",
                )

        return async_track_state_change_event(self.hass, entities, _state_changed)


async def async_setup_scout(
    hass: HomeAssistant, entry: TeslaConfigEntry, listing: list[dict[str, Any]]
) -> None:
    """Start watching the account's vehicles (before the platforms are set up)."""
    await VehicleRoster(hass, entry).async_setup(listing)


def vehicle_gone(entry: TeslaConfigEntry, identifiers: set[tuple[str, str]]) -> bool:
    """Return whether a device stands for a vehicle no longer on the account."""
    ours = {ident for domain, ident in identifiers if domain == DOMAIN}
    current = {*entry.runtime_data.vehicles, str(entry.unique_id)}
    return bool(ours) and not ours & current
