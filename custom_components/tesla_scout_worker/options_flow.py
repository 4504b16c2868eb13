"""Options: tune the scout and the charging defaults (also the setup's trigger step)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import probatio

from homeassistant.config_entries import ConfigFlowResult, OptionsFlowWithReload
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector

from .const import (
    CONF_ARRIVAL_ENTITIES,
    CONF_ASLEEP_INTERVAL,
    CONF_BATTERY_CAPACITY,
    CONF_BILL_STATE_CHECKS,
    CONF_CALENDAR_ENTITY,
    CONF_CHARGING_POWER,
    CONF_DAILY_CHECK_TIME,
    CONF_HABIT_INTERVAL,
    CONF_HOME_ZONE,
    CONF_IDLE_INTERVAL,
    CONF_LEAD_TIME,
    CONF_OFF_PEAK_ACTION,
    CONF_OFF_PEAK_END,
    CONF_OFF_PEAK_LIMIT,
    CONF_OFF_PEAK_START,
    CONF_PLUGGED_ENTITY,
    CONF_PRICE_ENTITY,
    DEFAULT_ASLEEP_INTERVAL,
    DEFAULT_BATTERY_CAPACITY,
    DEFAULT_BILL_STATE_CHECKS,
    DEFAULT_CHARGING_POWER,
    DEFAULT_DAILY_CHECK_TIME,
    DEFAULT_HABIT_INTERVAL,
    DEFAULT_HOME_ZONE,
    DEFAULT_IDLE_INTERVAL,
    DEFAULT_LEAD_TIME,
    DEFAULT_OFF_PEAK_ACTION,
    DEFAULT_OFF_PEAK_END,
    DEFAULT_OFF_PEAK_LIMIT,
    DEFAULT_OFF_PEAK_START,
)
from .suggestions import charger_plug, driver_people

SECTION_SCOUT = "scout"
SECTION_CHARGING = "charging"


def _minutes(minimum: int, maximum: int) -> selector.NumberSelector:
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=minimum,
            max=maximum,
            step=1,
            unit_of_measurement="min",
            mode=selector.NumberSelectorMode.BOX,
        )
    )


def _number(
    minimum: float, maximum: float, step: float, unit: str
) -> selector.NumberSelector:
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=minimum,
            max=maximum,
            step=step,
            unit_of_measurement=unit,
            mode=selector.NumberSelectorMode.BOX,
        )
    )


def _entity(*domains: str, multiple: bool = False) -> selector.EntitySelector:
    return selector.EntitySelector(
        selector.EntitySelectorConfig(domain=list(domains), multiple=multiple)
    )


SCOUT_FIELDS: dict[str, tuple[Any, selector.Selector[Any]]] = {
    CONF_HOME_ZONE: (DEFAULT_HOME_ZONE, _entity("zone")),
    CONF_ARRIVAL_ENTITIES: (
        [],
        _entity("person", "device_tracker", "binary_sensor", multiple=True),
    ),
    CONF_PLUGGED_ENTITY: (None, _entity("binary_sensor", "sensor")),
    CONF_IDLE_INTERVAL: (DEFAULT_IDLE_INTERVAL, _minutes(5, 240)),
    CONF_ASLEEP_INTERVAL: (DEFAULT_ASLEEP_INTERVAL, _minutes(10, 720)),
    CONF_HABIT_INTERVAL: (DEFAULT_HABIT_INTERVAL, _minutes(0, 60)),
    CONF_BILL_STATE_CHECKS: (DEFAULT_BILL_STATE_CHECKS, selector.BooleanSelector()),
}
# The scout's fields the config flow offers before creating the entry.
TRIGGER_FIELDS = (CONF_ARRIVAL_ENTITIES, CONF_PLUGGED_ENTITY)
CHARGING_FIELDS: dict[str, tuple[Any, selector.Selector[Any]]] = {
    CONF_OFF_PEAK_ACTION: (DEFAULT_OFF_PEAK_ACTION, selector.BooleanSelector()),
    CONF_OFF_PEAK_START: (DEFAULT_OFF_PEAK_START, selector.TimeSelector()),
    CONF_OFF_PEAK_END: (DEFAULT_OFF_PEAK_END, selector.TimeSelector()),
    CONF_OFF_PEAK_LIMIT: (DEFAULT_OFF_PEAK_LIMIT, _number(50, 100, 1, "%")),
    CONF_BATTERY_CAPACITY: (DEFAULT_BATTERY_CAPACITY, _number(10, 200, 0.5, "kWh")),
    CONF_CHARGING_POWER: (DEFAULT_CHARGING_POWER, _number(1, 250, 0.1, "kW")),
    CONF_LEAD_TIME: (DEFAULT_LEAD_TIME, _minutes(10, 720)),
    CONF_DAILY_CHECK_TIME: (DEFAULT_DAILY_CHECK_TIME, selector.TimeSelector()),
    CONF_PRICE_ENTITY: (None, _entity("sensor")),
    CONF_CALENDAR_ENTITY: (None, _entity("calendar")),
}


def section_schema(
    fields: dict[str, tuple[Any, selector.Selector[Any]]], options: Mapping[str, Any]
) -> probatio.Schema:
    """Return a form section for ``fields``, filled from ``options``.

    Fields whose default is empty may be left empty (optional, suggested);
    the others are required with the current value as default.
    """
    schema: dict[probatio.Marker, Any] = {}
    for key, (default, field_selector) in fields.items():
        current = options.get(key, default)
        if default is None or default == []:  # may be left empty: optional
            marker: probatio.Marker = probatio.Optional(
                key, description={"suggested_value": current}
            )
        else:
            marker = probatio.Required(key, default=current)
        schema[marker] = field_selector
    return probatio.Schema(schema)


class TeslaScoutWorkerOptionsFlow(OptionsFlowWithReload):
    """Tune the scout and the charging defaults; changed options reload the entry."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show both sections; store them flat."""
        if user_input is not None:
            options: dict[str, Any] = {}
            for name in (SECTION_SCOUT, SECTION_CHARGING):
                options.update(
                    {k: v for k, v in user_input.get(name, {}).items() if v is not None}
                )
            return self.async_create_entry(data=options)
        current = dict(self.config_entry.options)
        if CONF_ARRIVAL_ENTITIES not in current:
            # Never chosen: propose the driver's person (and so their phone).
            current[CONF_ARRIVAL_ENTITIES] = driver_people(self.hass, self.config_entry)
        if CONF_PLUGGED_ENTITY not in current:
            # Never chosen: propose the wall charger's plugged-in sensor.
            current[CONF_PLUGGED_ENTITY] = charger_plug(self.hass)
        schema = probatio.Schema(
            {
                probatio.Required(SECTION_SCOUT): section(
                    section_schema(SCOUT_FIELDS, current), {"collapsed": False}
                ),
                probatio.Required(SECTION_CHARGING): section(
                    section_schema(CHARGING_FIELDS, current), {"collapsed": True}
                ),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
