"""Plan inputs: a charging need, the options and states to a planner request.

Everything a need says is checked before anything is asked of Tesla, so bad
input costs nothing and changes nothing. The state of charge is the last one
the scout saw (also from before a restart); planning never wakes the car. A
level older than ``SOC_STALE_AFTER`` is planned from conservatively: a parked
car loses charge (Tesla cars lose roughly 0.5-1 % a day asleep, more with
Sentry mode), so ``conservative_soc`` subtracts 1 % per started 12 hours since
the car said it, at most ``SOC_MARGIN_MAX``. The plan records the level seen,
when the car said it and the level used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
import math
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util

from .charge_control import CHARGE_LIMIT_MAX, CHARGE_LIMIT_MIN
from .charging_needs import ChargingNeed
from .charging_plan import (
    MODE_DEADLINE,
    MODE_OFF_PEAK,
    MODE_PRICES,
    ChargingPlan,
    OffPeakWindow,
    PlanRequest,
)
from .const import (
    CONF_BATTERY_CAPACITY,
    CONF_CHARGING_POWER,
    CONF_LEAD_TIME,
    CONF_OFF_PEAK_END,
    CONF_OFF_PEAK_START,
    CONF_PRICE_ENTITY,
    DEFAULT_BATTERY_CAPACITY,
    DEFAULT_CHARGING_POWER,
    DEFAULT_LEAD_TIME,
    DEFAULT_OFF_PEAK_END,
    DEFAULT_OFF_PEAK_START,
    DOMAIN,
)
from .planner import plan_charging
from .prices import (
    PlanInputError,
    PriceSlot,
    parse_price_series,
)
from .time_of_day import parse_time_option

MODES: Final = (MODE_OFF_PEAK, MODE_PRICES, MODE_DEADLINE)
MAX_PLAN_AHEAD: Final = timedelta(hours=48)
"""How far ahead a session can be planned at once. The charge level it starts
from is the one seen now, and price sensors publish today and tomorrow; a need
further ahead is queued and planned by the daily check when it is near."""
MAX_QUEUE_AHEAD: Final = timedelta(days=365)

SOC_STALE_AFTER: Final = timedelta(hours=6)
"""A charge level older than this is planned from conservatively."""
SOC_LOSS_PERIOD: Final = timedelta(hours=12)
"""Every started period of this length since the level was seen costs 1 %."""
SOC_MARGIN_MAX: Final = 10.0
"""The most subtracted from an old level, in percent."""


@dataclass(frozen=True, slots=True)
class SocReading:
    """A charge level and when the car said it (None: just now)."""

    level: float
    as_of: datetime | None = None


type SocReader = Callable[[str], Awaitable[SocReading]]


def soc_margin(age: timedelta) -> float:
    """Return the percent a level this old may have lost since (0 when recent)."""
    if age <= SOC_STALE_AFTER:
        return 0.0
    return min(SOC_MARGIN_MAX, float(math.ceil(age / SOC_LOSS_PERIOD)))


def conservative_soc(level: float, age: timedelta) -> float:
    """Return the level to plan from: ``level`` less the margin for its age."""
    return max(0.0, level - soc_margin(age))


def validation_error(
    key: str, placeholders: Mapping[str, str] | None = None
) -> ServiceValidationError:
    """Return a translated validation error."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=dict(placeholders) if placeholders else None,
    )


def validate_need(need: ChargingNeed, *, queued: bool) -> None:
    """Refuse a need that cannot be planned, before any request is made."""
    if not CHARGE_LIMIT_MIN <= need.target_soc <= CHARGE_LIMIT_MAX:
        raise validation_error(
            "target_soc_out_of_range",
            {"minimum": str(CHARGE_LIMIT_MIN), "maximum": str(CHARGE_LIMIT_MAX)},
        )
    ahead = dt_util.as_utc(need.ready_by) - dt_util.utcnow()
    if ahead <= timedelta(0):
        raise validation_error("ready_by_not_after_now")
    limit = MAX_QUEUE_AHEAD if queued else MAX_PLAN_AHEAD
    if ahead > limit:
        raise validation_error(
            "ready_by_queue_too_far" if queued else "ready_by_too_far",
            {"hours": str(int(limit.total_seconds() // 3600))},
        )
    if need.mode is not None and need.mode not in MODES:
        raise validation_error("invalid_mode", {"mode": need.mode})


def battery_level_of(data: Any) -> float | None:
    """Return the battery level from a coordinator's data, if it has one.

    Accepts vehicle_data-shaped mappings (``charge_state.battery_level``), flat
    mappings and objects with a ``battery_level`` or ``charge_state`` attribute.
    """
    if data is None:
        return None
    if isinstance(data, Mapping):
        charge = data.get("charge_state")
        value = (
            charge.get("battery_level")
            if isinstance(charge, Mapping)
            else data.get("battery_level")
        )
    else:
        value = getattr(data, "battery_level", None)
        charge = getattr(data, "charge_state", None)
        if value is None and isinstance(charge, Mapping):
            value = charge.get("battery_level")
    try:
        return None if value is None else float(value)
    except TypeError, ValueError:
        return None


def price_slots(hass: HomeAssistant, entity_id: str | None) -> list[PriceSlot]:
    """Parse the price entity's attributes."""
    if not entity_id:
        raise validation_error("price_entity_required")
    state = hass.states.get(entity_id)
    if state is None:
        raise validation_error("price_entity_unavailable", {"entity": entity_id})
    try:
        return parse_price_series(
            dict(state.attributes), dt_util.get_default_time_zone()
        )
    except PlanInputError as err:
        raise validation_error(err.key) from err


async def async_make_plan(
    hass: HomeAssistant,
    options: Mapping[str, Any],
    need: ChargingNeed,
    current_soc: SocReader,
) -> ChargingPlan:
    """Plan a need: mode, prices and window from the options, then the planner.

    Everything local is checked before ``current_soc`` (which may ask Tesla)
    is awaited.
    """
    tz = dt_util.get_default_time_zone()
    price_entity = need.price_entity or options.get(CONF_PRICE_ENTITY)
    mode = need.mode or (MODE_PRICES if price_entity else MODE_OFF_PEAK)
    prices = price_slots(hass, price_entity) if mode == MODE_PRICES else None
    window = None
    if mode == MODE_OFF_PEAK:
        try:
            window = OffPeakWindow(
                parse_time_option(
                    options.get(CONF_OFF_PEAK_START), DEFAULT_OFF_PEAK_START
                ),
                parse_time_option(options.get(CONF_OFF_PEAK_END), DEFAULT_OFF_PEAK_END),
                tz,
            )
        except PlanInputError as err:
            raise validation_error(err.key) from err
    reading = await current_soc(need.vin)
    now = dt_util.now()
    as_of = dt_util.as_local(reading.as_of) if reading.as_of is not None else now
    soc = conservative_soc(reading.level, now - as_of)
    try:
        plan = plan_charging(
            PlanRequest(
                now=now,
                current_soc=soc,
                target_soc=float(need.target_soc),
                capacity_kwh=float(
                    options.get(CONF_BATTERY_CAPACITY, DEFAULT_BATTERY_CAPACITY)
                ),
                power_kw=float(
                    options.get(CONF_CHARGING_POWER, DEFAULT_CHARGING_POWER)
                ),
                ready_by=need.ready_by,
                lead_time=timedelta(
                    minutes=float(options.get(CONF_LEAD_TIME, DEFAULT_LEAD_TIME))
                ),
                off_peak=window,
                prices=prices,
                continuous=need.continuous,
            )
        )
    except PlanInputError as err:
        raise validation_error(err.key) from err
    return replace(plan, soc_seen=reading.level, soc_as_of=as_of, soc_used=soc)
