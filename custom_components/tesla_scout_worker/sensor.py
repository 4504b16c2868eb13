"""Sensors: token health and API spend; car state and special charging per car."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

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

from .entity import AccountEntity, VehicleEntity, async_add_vehicle_entities
from .models import TeslaConfigEntry, TeslaRuntimeData
from .scout_policy import VehicleState
from .session_manager import SessionManager
from .sessions import ChargingSession, SessionState
from .signing import CommandPath, SigningPolicy
from .token_manager import TokenStatus
from .usage import ApiCategory
from .vehicle import TeslaVehicle
from .vehicle_data import VehicleData

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


STATE_NONE = "none"


@dataclass(frozen=True, kw_only=True)
class SessionSensorDescription(SensorEntityDescription):
    """Describes a session sensor; ``value_fn`` gets the car's latest session."""

    value_fn: Callable[[ChargingSession | None], StateType | datetime]


def _open_plan_time(
    pick: Callable[[ChargingSession], datetime | None],
) -> Callable[[ChargingSession | None], datetime | None]:
    def value(session: ChargingSession | None) -> datetime | None:
        if session is None or not session.is_open:
            return None
        return pick(session)

    return value


def _next_send(session: ChargingSession) -> datetime | None:
    return session.plan.send_at if session.state is SessionState.SCHEDULED else None


def _cost(session: ChargingSession | None) -> float | None:
    if session is None or not session.is_open:
        return None
    return session.plan.expected_cost


SESSION_SENSORS: tuple[SessionSensorDescription, ...] = (
    SessionSensorDescription(
        key="session_state",
        translation_key="session_state",
        device_class=SensorDeviceClass.ENUM,
        options=[STATE_NONE, *(str(state) for state in SessionState)],
        value_fn=lambda s: STATE_NONE if s is None else str(s.state),
    ),
    SessionSensorDescription(
        key="session_next_send",
        translation_key="session_next_send",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_open_plan_time(_next_send),
    ),
    SessionSensorDescription(
        key="session_planned_start",
        translation_key="session_planned_start",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_open_plan_time(lambda s: s.plan.start),
    ),
    SessionSensorDescription(
        key="session_planned_end",
        translation_key="session_planned_end",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=_open_plan_time(lambda s: s.plan.end),
    ),
    SessionSensorDescription(
        key="session_planned_cost",
        translation_key="session_planned_cost",
        suggested_display_precision=2,
        value_fn=_cost,
    ),
)


COMMAND_PATH = SensorEntityDescription(
    key="command_path",
    translation_key="command_path",
    device_class=SensorDeviceClass.ENUM,
    options=[str(path) for path in CommandPath],
    entity_category=EntityCategory.DIAGNOSTIC,
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

    sessions = entry.runtime_data.sessions

    signing = entry.runtime_data.control.signing

    def make(vehicle: TeslaVehicle) -> list[SensorEntity]:
        return [
            *(VehicleSensor(vehicle, description) for description in VEHICLE_SENSORS),
            *(
                SessionSensor(sessions, vehicle, description)
                for description in SESSION_SENSORS
            ),
            CommandPathSensor(signing, vehicle),
        ]

    async_add_vehicle_entities(hass, entry, async_add_entities, make)


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


class SessionSensor(SensorEntity):
    """A special charging session sensor of a vehicle, pushed by the sessions."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: SessionSensorDescription

    def __init__(
        self,
        manager: SessionManager,
        vehicle: TeslaVehicle,
        description: SessionSensorDescription,
    ) -> None:
        """Initialize."""
        self.entity_description = description
        self._manager = manager
        self._vin = vehicle.vin
        self._attr_unique_id = f"{vehicle.vin}_{description.key}"
        self._attr_device_info = vehicle.device_info

    async def async_added_to_hass(self) -> None:
        """Follow the session manager."""
        self.async_on_remove(
            self._manager.async_add_listener(self.async_write_ha_state)
        )

    @property
    def _session(self) -> ChargingSession | None:
        return self._manager.latest_session(self._vin)

    @property
    def native_value(self) -> StateType | datetime:
        """Return the value for the car's current (or latest) session."""
        return self.entity_description.value_fn(self._session)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return the session's id, target and ready-by on the state sensor."""
        session = self._session
        if self.entity_description.key != "session_state" or session is None:
            return None
        return {
            "session_id": session.id,
            "target_soc": session.target_soc,
            "ready_by": session.ready_by.isoformat(),
            "reason": session.reason,
            "soc_used": session.plan.soc_used,
            "soc_as_of": (
                None
                if session.plan.soc_as_of is None
                else session.plan.soc_as_of.isoformat()
            ),
        }


class CommandPathSensor(SensorEntity):
    """How commands reach a car now: signed, proxy, unsigned, key not paired, ..."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description = COMMAND_PATH

    def __init__(self, signing: SigningPolicy, vehicle: TeslaVehicle) -> None:
        """Initialize."""
        self._signing = signing
        self._vin = vehicle.vin
        self._attr_unique_id = f"{vehicle.vin}_{COMMAND_PATH.key}"
        self._attr_device_info = vehicle.device_info

    async def async_added_to_hass(self) -> None:
        """Follow what is known about the car's command signing."""
        self.async_on_remove(
            self._signing.async_add_listener(self.async_write_ha_state)
        )

    @property
    def native_value(self) -> str:
        """Return the car's command path."""
        return str(self._signing.path(self._vin))
