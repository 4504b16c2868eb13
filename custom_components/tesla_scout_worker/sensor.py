"""Sensors: token health and Fleet API spend; battery, charging and place per car."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfLength,
    UnitOfPower,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import VehicleCoordinator, VehicleData
from .entity import AccountEntity, VehicleEntity, async_add_vehicle_entities
from .models import TeslaConfigEntry, TeslaRuntimeData
from .scout import VehicleState
from .session_sensor import session_sensors
from .token_manager import TokenStatus
from .usage import ApiCategory

PARALLEL_UPDATES = 0


class Source(StrEnum):
    """What pushes updates to an account sensor."""

    TOKENS = "tokens"
    USAGE = "usage"


@dataclass(frozen=True, kw_only=True)
class AccountSensorDescription(SensorEntityDescription):
    """Describes an account sensor."""

    source: Source
    value_fn: Callable[[TeslaRuntimeData], StateType | datetime]
    last_reset_fn: Callable[[TeslaRuntimeData], datetime | None] | None = None


def _usage_count(category: ApiCategory) -> AccountSensorDescription:
    return AccountSensorDescription(
        key=f"api_calls_{category}",
        translation_key=f"api_calls_{category}",
        source=Source.USAGE,
        state_class=SensorStateClass.TOTAL,
        value_fn=lambda data: data.usage.counts[category],
        last_reset_fn=lambda data: data.usage.period_start,
    )


ACCOUNT_SENSORS: tuple[AccountSensorDescription, ...] = (
    AccountSensorDescription(
        key="token_status",
        translation_key="token_status",
        source=Source.TOKENS,
        device_class=SensorDeviceClass.ENUM,
        options=[str(status) for status in TokenStatus],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: str(data.tokens.status),
    ),
    AccountSensorDescription(
        key="token_expires",
        translation_key="token_expires",
        source=Source.TOKENS,
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.tokens.expires_at,
    ),
    AccountSensorDescription(
        key="token_last_refresh",
        translation_key="token_last_refresh",
        source=Source.TOKENS,
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.tokens.last_refresh,
    ),
    AccountSensorDescription(
        key="token_refresh_count",
        translation_key="token_refresh_count",
        source=Source.TOKENS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.tokens.stats.refresh_count,
    ),
    AccountSensorDescription(
        key="token_failed_refresh_count",
        translation_key="token_failed_refresh_count",
        source=Source.TOKENS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.tokens.stats.failed_count,
    ),
    AccountSensorDescription(
        key="token_rate_limited_count",
        translation_key="token_rate_limited_count",
        source=Source.TOKENS,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.tokens.stats.rate_limited_count,
    ),
    *(_usage_count(category) for category in ApiCategory),
    AccountSensorDescription(
        key="api_cost",
        translation_key="api_cost",
        source=Source.USAGE,
        device_class=SensorDeviceClass.MONETARY,
        state_class=SensorStateClass.TOTAL,
        native_unit_of_measurement="USD",
        suggested_display_precision=3,
        value_fn=lambda data: data.usage.cost_usd,
        last_reset_fn=lambda data: data.usage.period_start,
    ),
)


@dataclass(frozen=True, kw_only=True)
class VehicleSensorDescription(SensorEntityDescription):
    """Describes a vehicle sensor."""

    value_fn: Callable[[VehicleData], StateType | datetime]


CHARGING_STATES = [
    "disconnected",
    "stopped",
    "starting",
    "charging",
    "complete",
    "no_power",
]

VEHICLE_STATES = [str(state) for state in VehicleState]


def _charging_state(data: VehicleData) -> str | None:
    state = data.charging_state
    if state == "nopower":
        return "no_power"
    return state if state in CHARGING_STATES else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


VEHICLE_SENSORS: tuple[VehicleSensorDescription, ...] = (
    VehicleSensorDescription(
        key="battery_level",
        translation_key="battery_level",
        device_class=SensorDeviceClass.BATTERY,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        value_fn=lambda data: data.charge_state.get("battery_level"),
    ),
    VehicleSensorDescription(
        key="charge_limit",
        translation_key="charge_limit",
        native_unit_of_measurement=PERCENTAGE,
        value_fn=lambda data: data.charge_state.get("charge_limit_soc"),
    ),
    VehicleSensorDescription(
        key="charging_state",
        translation_key="charging_state",
        device_class=SensorDeviceClass.ENUM,
        options=CHARGING_STATES,
        value_fn=_charging_state,
    ),
    VehicleSensorDescription(
        key="charger_power",
        translation_key="charger_power",
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfPower.KILO_WATT,
        value_fn=lambda data: data.charger_power,
    ),
    VehicleSensorDescription(
        key="distance_home",
        translation_key="distance_home",
        device_class=SensorDeviceClass.DISTANCE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfLength.KILOMETERS,
        suggested_display_precision=1,
        value_fn=lambda data: _round(data.distance_home_km, 3),
    ),
    VehicleSensorDescription(
        key="vehicle_state",
        translation_key="vehicle_state",
        device_class=SensorDeviceClass.ENUM,
        options=VEHICLE_STATES,
        value_fn=lambda data: data.state if data.state in VEHICLE_STATES else None,
    ),
    VehicleSensorDescription(
        key="next_update",
        translation_key="next_update",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.next_update,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TeslaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the sensors."""
    async_add_entities(
        AccountSensor(entry, description) for description in ACCOUNT_SENSORS
    )

    def make(coordinator: VehicleCoordinator) -> list[VehicleSensor]:
        return [
            VehicleSensor(coordinator, description) for description in VEHICLE_SENSORS
        ]

    async_add_vehicle_entities(hass, entry, async_add_entities, make)
    async_add_vehicle_entities(
        hass,
        entry,
        async_add_entities,
        lambda coordinator: session_sensors(entry, coordinator.vin),
    )


class AccountSensor(AccountEntity, SensorEntity):
    """A sensor of the account device."""

    entity_description: AccountSensorDescription

    async def async_added_to_hass(self) -> None:
        """Follow the token manager or the usage counters."""
        data = self._entry.runtime_data
        source = (
            data.tokens
            if self.entity_description.source is Source.TOKENS
            else data.usage
        )
        self.async_on_remove(source.async_add_listener(self.async_write_ha_state))

    @property
    def native_value(self) -> StateType | datetime:
        """Return the value."""
        return self.entity_description.value_fn(self._entry.runtime_data)

    @property
    def last_reset(self) -> datetime | None:
        """Return the start of the counting period."""
        if self.entity_description.last_reset_fn is None:
            return None
        return self.entity_description.last_reset_fn(self._entry.runtime_data)


class VehicleSensor(VehicleEntity, SensorEntity):
    """A sensor of a vehicle, updated by the scout."""

    entity_description: VehicleSensorDescription

    @property
    def native_value(self) -> StateType | datetime:
        """Return the value."""
        return self.entity_description.value_fn(self.coordinator.data)
