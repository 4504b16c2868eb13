"""The scout's memory: what it last knew about each car, across restarts.

One store per config entry (``tesla_scout_worker.scout.<entry_id>``) holds,
per car, the state and time of the last check and the few fields of the last
``vehicle_data`` answer the integration uses (charge level, limit, charging
state, location, software version, charge schedules) with ``fetched_at``,
when the car said them. Nothing else: no tokens, no odometer, no names.

After a restart the coordinators start from it, so entities, planning and the
daily check know the last charge level, limit and location at once, without
waking the car. Restored data is never *fresh*: nothing acts on it as if the
car had just said it (the off-peak action waits for the awake car).

The store also keeps each car's habits (scout_habits.py): when it usually
sets off from home and from elsewhere, learnt from the checks, so the scout
knows when to look after a restart too. Version 1 stores (no habits) are
migrated: their cars are kept and the habits start empty.

The VIN is the key, as in the sessions store; it is never logged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .scout_habits import Habits
from .vehicle_data import HomeZone, VehicleData, build_vehicle_data

STORAGE_VERSION: Final = 2
SAVE_DELAY: Final = 10  # seconds after a check that brought something new

KEPT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "charge_state": ("battery_level", "charge_limit_soc", "charging_state"),
    "drive_state": ("latitude", "longitude"),
    "vehicle_state": ("car_version",),
    "charge_schedule_data": ("charge_schedules",),
}
"""The payload fields worth keeping, per piece of ``vehicle_data``."""

KEPT_SCHEDULE_FIELDS: Final = (
    "id",
    "days_of_week",
    "enabled",
    "one_time",
    "start_enabled",
    "start_time",
    "end_enabled",
    "end_time",
    "latitude",
    "longitude",
)
"""The fields of a charge schedule the car-control layer compares."""


def storage_key(entry_id: str) -> str:
    """Return the store's key for a config entry."""
    return f"{DOMAIN}.scout.{entry_id}"


class _ScoutStore(Store[dict[str, Any]]):
    """A store that keeps version 1's cars and drops anything older."""

    async def _async_migrate_func(
        self,
        old_major_version: int,
        old_minor_version: int,
        old_data: dict[str, Any],
    ) -> dict[str, Any]:
        if old_major_version == 1 and isinstance(old_data, Mapping):
            return {"vehicles": old_data.get("vehicles") or {}, "habits": {}}
        return {}


def _kept(piece: str, values: Mapping[str, Any]) -> dict[str, Any]:
    kept = {key: values[key] for key in KEPT_FIELDS[piece] if key in values}
    schedules = kept.get("charge_schedules")
    if isinstance(schedules, list):
        kept["charge_schedules"] = [
            {key: s[key] for key in KEPT_SCHEDULE_FIELDS if key in s}
            for s in schedules
            if isinstance(s, Mapping)
        ]
    return kept


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: Any) -> datetime | None:
    """Parse a stored time; only aware times are valid."""
    if value is None:
        return None
    parsed = dt_util.parse_datetime(str(value))
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"not an aware time: {value!r}")
    return parsed


def remembered(data: VehicleData) -> dict[str, Any]:
    """Return what is kept of a car's data."""
    return {
        "state": data.state,
        "checked_at": data.checked_at.isoformat(),
        "fetched_at": _iso(data.fetched_at),
        **{piece: _kept(piece, getattr(data, piece)) for piece in KEPT_FIELDS},
    }


def recalled(raw: Any, home: HomeZone | None) -> VehicleData:
    """Rebuild a car's data from what was kept; ValueError when unreadable."""
    if not isinstance(raw, Mapping):
        raise TypeError("not a mapping")
    checked_at = _time(raw["checked_at"])
    if checked_at is None:
        raise ValueError("no check time")
    pieces: dict[str, dict[str, Any]] = {}
    for piece in KEPT_FIELDS:
        values = raw.get(piece) or {}
        if not isinstance(values, Mapping):
            raise TypeError(f"{piece} is not a mapping")
        pieces[piece] = _kept(piece, values)
    known = VehicleData(
        state=str(raw["state"]),
        checked_at=checked_at,
        fetched_at=_time(raw.get("fetched_at")),
        charge_state=pieces["charge_state"],
        drive_state=pieces["drive_state"],
        vehicle_state=pieces["vehicle_state"],
        charge_schedule_data=pieces["charge_schedule_data"],
        restored=True,
    )
    return build_vehicle_data(
        state=known.state,
        now=checked_at,
        payload=None,
        previous=known,
        home=home,
        restored=True,
    )


class ScoutMemory:
    """The scout's last knowledge of the account's cars, on disk."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Initialize; call async_load before the coordinators' first check."""
        self._store = _ScoutStore(hass, STORAGE_VERSION, storage_key(entry_id))
        self._raw: dict[str, Any] = {}
        self._cars: dict[str, VehicleData] = {}
        self._raw_habits: dict[str, Any] = {}
        self._habits: dict[str, Habits] = {}

    async def async_load(self) -> None:
        """Read the store; an unreadable or newer one is ignored."""
        try:
            stored = await self._store.async_load()
        except HomeAssistantError as err:  # a newer version (after a downgrade)
            LOGGER.info("The scout's memory was not read (%s); starting empty", err)
            stored = None
        vehicles = stored.get("vehicles") if isinstance(stored, Mapping) else None
        self._raw = dict(vehicles) if isinstance(vehicles, Mapping) else {}
        habits = stored.get("habits") if isinstance(stored, Mapping) else None
        self._raw_habits = dict(habits) if isinstance(habits, Mapping) else {}

    def habits(self, vin: str) -> Habits:
        """Return a car's habits (learnt before the restart, or new ones)."""
        if (known := self._habits.get(vin)) is not None:
            return known
        raw = self._raw_habits.pop(vin, None)
        habits = Habits()
        if raw is not None:
            try:
                habits = Habits.from_dict(raw)
            except (TypeError, ValueError) as err:
                LOGGER.debug("Ignoring unreadable habits of a car: %s", err)
        self._habits[vin] = habits
        return habits

    def recall(self, vin: str, home: HomeZone | None) -> VehicleData | None:
        """Return what was known about a car before the restart, if readable."""
        raw = self._raw.get(vin)
        if raw is None:
            return None
        try:
            data = recalled(raw, home)
        except (KeyError, TypeError, ValueError) as err:
            LOGGER.debug("Ignoring an unreadable memory of a car: %s", err)
            del self._raw[vin]
            return None
        self._cars[vin] = data
        return data

    @callback
    def remember(self, vin: str, data: VehicleData, *, changed: bool) -> None:
        """Keep a car's data; write it soon when the check brought news.

        The habits learnt meanwhile are written with it (a check without
        news only adds rest hours; they are written with the next news or
        at unload).
        """
        self._cars[vin] = data
        self._raw.pop(vin, None)
        if changed:
            self._store.async_delay_save(self._data, SAVE_DELAY)

    @callback
    def retain(self, vins: Iterable[str]) -> None:
        """Forget every car but these (the account's current vehicles)."""
        keep = set(vins)
        known = {*self._cars, *self._raw, *self._habits, *self._raw_habits}
        gone = [vin for vin in known if vin not in keep]
        for vin in gone:
            for kept in (self._cars, self._raw, self._habits, self._raw_habits):
                kept.pop(vin, None)
        if gone:
            self._store.async_delay_save(self._data, SAVE_DELAY)

    async def async_save(self) -> None:
        """Write everything now (the entry unloads)."""
        await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        vehicles = dict(self._raw)
        vehicles.update({vin: remembered(d) for vin, d in self._cars.items()})
        habits = dict(self._raw_habits)
        habits.update({vin: h.as_dict() for vin, h in self._habits.items()})
        return {"vehicles": vehicles, "habits": habits}
