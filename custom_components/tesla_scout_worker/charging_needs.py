"""Charging needs: what a special charging session is asked to achieve.

A need comes from the plan action (planned at once), from the queue (the
action with ``queue: true``, planned by the daily check) or from the charging
calendar (events like "Charge 90%", ready by their start). It is one type
wherever it comes from; the queue stores it as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
import re
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util

from .const import LOGGER

SOURCE_ACTION: Final = "action"
SOURCE_QUEUE: Final = "queue"
SOURCE_CALENDAR: Final = "calendar"
PLANNING_HORIZON: Final = timedelta(hours=36)
"""The daily check plans the needs that are ready by within this time."""
TARGET_PATTERN: Final = re.compile(r"(?<!\d)(\d{1,3})\s*%")
PERCENT_MAX: Final = 100


@dataclass(frozen=True, kw_only=True, slots=True)
class ChargingNeed:
    """Charge one car to ``target_soc`` % by ``ready_by``.

    ``key`` names a queued or calendar need so it is planned once; needs of
    the plan action have none.
    """

    vin: str
    target_soc: int
    ready_by: datetime
    mode: str | None = None
    price_entity: str | None = None
    continuous: bool = True
    source: str = SOURCE_ACTION
    key: str | None = None

    def with_key(self, key: str) -> ChargingNeed:
        """Return the same need under a key."""
        return replace(self, key=key)

    def as_dict(self) -> dict[str, Any]:
        """Return the need for storage."""
        return {
            "key": self.key,
            "vin": self.vin,
            "target_soc": self.target_soc,
            "ready_by": self.ready_by.isoformat(),
            "mode": self.mode,
            "price_entity": self.price_entity,
            "continuous": self.continuous,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChargingNeed:
        """Rebuild a need from storage (queued needs before 0.2 had no source)."""
        return cls(
            key=None if data.get("key") is None else str(data["key"]),
            vin=str(data["vin"]),
            target_soc=int(data["target_soc"]),
            ready_by=datetime.fromisoformat(str(data["ready_by"])),
            mode=data.get("mode"),
            price_entity=data.get("price_entity"),
            continuous=bool(data.get("continuous", True)),
            source=str(data.get("source") or SOURCE_QUEUE),
        )


def target_from_text(text: str) -> int | None:
    """Return the first percentage 1..100 in ``text`` (e.g. "Charge 90%")."""
    for match in TARGET_PATTERN.finditer(text):
        value = int(match.group(1))
        if 0 < value <= PERCENT_MAX:
            return value
    return None


def calendar_needs(
    entity_id: str,
    events: list[Any],
    vehicles: Mapping[str, str],
    now: datetime,
) -> list[ChargingNeed]:
    """Turn calendar events with a target ("90%") into needs (ready-by = start).

    ``vehicles`` maps VINs to display names. With several cars, an event
    naming a car is for that car; other events are for the first car.
    """
    if not vehicles:
        return []
    first = next(iter(vehicles))
    needs: list[ChargingNeed] = []
    for event in events:
        if not isinstance(event, Mapping):
            continue
        text = f"{event.get('summary') or ''} {event.get('description') or ''}"
        target = target_from_text(text)
        start = event_start(event.get("start"))
        if target is None or start is None or start <= now:
            continue
        vin = first
        for candidate, name in vehicles.items():
            if name and name.lower() in text.lower():
                vin = candidate
                break
        needs.append(
            ChargingNeed(
                key=f"calendar:{entity_id}:{start.isoformat()}:{target}:{vin[-6:]}",
                vin=vin,
                target_soc=target,
                ready_by=start,
                source=SOURCE_CALENDAR,
            )
        )
    return needs


def event_start(value: Any) -> datetime | None:
    """Parse an event start: a datetime, or a date (local midnight)."""
    if value is None:
        return None
    parsed = (
        value
        if isinstance(value, datetime)
        else dt_util.parse_datetime(str(value))  # also reads plain dates
    )
    if parsed is None:
        return None
    moment: datetime = parsed
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt_util.get_default_time_zone())
    return moment


async def async_calendar_needs(
    hass: HomeAssistant,
    entity_id: str | None,
    vehicles: Mapping[str, str],
    now: datetime,
) -> list[ChargingNeed]:
    """Read the charging needs of the next PLANNING_HORIZON from a calendar."""
    if not entity_id or not vehicles:
        return []
    try:
        response = await hass.services.async_call(
            "calendar",
            "get_events",
            {
                "entity_id": entity_id,
                "start_date_time": dt_util.as_local(now),
                "end_date_time": dt_util.as_local(now + PLANNING_HORIZON),
            },
            blocking=True,
            return_response=True,
        )
    except HomeAssistantError as err:
        LOGGER.warning("Daily check: could not read the calendar: %s", err)
        return []
    found: Any = (response or {}).get(entity_id)
    events = found.get("events") if isinstance(found, Mapping) else None
    if not isinstance(events, list):
        return []
    return calendar_needs(entity_id, events, vehicles, now)
