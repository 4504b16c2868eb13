"""Sensors: token health and Fleet API spend (vehicle sensors join them later)."""

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
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .entity import AccountEntity
from .models import TeslaConfigEntry, TeslaRuntimeData
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
        native_unit_of_measurement="calls",
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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TeslaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the sensors."""
    async_add_entities(
        AccountSensor(entry, description) for description in ACCOUNT_SENSORS
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
