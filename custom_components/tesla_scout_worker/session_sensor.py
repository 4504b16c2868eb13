"""Sensors of special charging sessions, one set per vehicle device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.typing import StateType

from .const import DOMAIN
from .models import TeslaConfigEntry
from .session_manager import SessionManager
from .sessions import ChargingSession, SessionState

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


def session_sensors(entry: TeslaConfigEntry, vin: str) -> list[SessionSensor]:
    """Return the session sensors of one vehicle."""
    manager = entry.runtime_data.sessions
    if manager is None:
        return []
    return [SessionSensor(manager, vin, description) for description in SESSION_SENSORS]


class SessionSensor(SensorEntity):
    """A special charging session sensor of a vehicle device."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: SessionSensorDescription

    def __init__(
        self,
        manager: SessionManager,
        vin: str,
        description: SessionSensorDescription,
    ) -> None:
        """Initialize."""
        self.entity_description = description
        self._manager = manager
        self._vin = vin
        self._attr_unique_id = f"{vin}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, vin)},
            name=manager.vehicle_name(vin),
            manufacturer="Tesla",
        )

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
        }
