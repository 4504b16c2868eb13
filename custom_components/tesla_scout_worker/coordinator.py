"""The scout: one coordinator per vehicle that watches the car without waking it.

Every cycle asks Tesla's server for the car's state first (GET /vehicles/{vin},
which never reaches the car). Only when that says "online" is the car itself
asked for its data; a 408 from it means it just fell asleep. The interval to
the next cycle comes from the pure policy in scout.py.

The roster owns the coordinators of an account: it creates them at setup,
re-lists the account once a day to add new vehicles and drop removed ones, and
turns the optional trigger entities into immediate checks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, cast

from homeassistant.const import ATTR_LATITUDE, ATTR_LONGITUDE, STATE_HOME, STATE_ON
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.exceptions import ConfigEntryAuthFailed, HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import (
    async_track_state_change_event,
    async_track_time_interval,
)
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import FleetError, RateLimitedError, VehicleAsleepError
from .const import (
    CONF_ARRIVAL_ENTITIES,
    CONF_ASLEEP_INTERVAL,
    CONF_DRIVING_MIN_INTERVAL,
    CONF_HOME_ZONE,
    CONF_IDLE_INTERVAL,
    CONF_OFF_PEAK_ACTION,
    CONF_OFF_PEAK_END,
    CONF_OFF_PEAK_LIMIT,
    CONF_OFF_PEAK_START,
    CONF_PLUGGED_ENTITY,
    DEFAULT_ASLEEP_INTERVAL,
    DEFAULT_DRIVING_MIN_INTERVAL,
    DEFAULT_HOME_ZONE,
    DEFAULT_IDLE_INTERVAL,
    DEFAULT_OFF_PEAK_ACTION,
    DEFAULT_OFF_PEAK_END,
    DEFAULT_OFF_PEAK_LIMIT,
    DEFAULT_OFF_PEAK_START,
    DOMAIN,
    LOGGER,
)
from .models import TeslaConfigEntry
from .scout import (
    Observation,
    PollSettings,
    VehicleState,
    backoff,
    bearing_deg,
    distance_km,
    heading_home,
    is_driving,
    mph_to_kmh,
    next_interval,
)

STALE_AFTER: Final = timedelta(hours=24)
"""Entities turn unavailable when Tesla's server was last reached this long ago."""
RELIST_INTERVAL: Final = timedelta(days=1)
DEFAULT_ZONE_RADIUS_M: Final = 100.0
SCHEDULE_MATCH_KM: Final = 0.5
"""A schedule this close to home counts as the home schedule."""
ALL_DAYS: Final = 0b1111111
MINUTES_PER_DAY: Final = 24 * 60
MAX_ARRIVAL_ATTEMPTS: Final = 3
CHARGING_STATES: Final = frozenset({"charging", "starting"})
PLUGGED_TRIGGER_STATES: Final = frozenset(
    {STATE_ON, "plugged", "plugged_in", "connected", "charging", "true"}
)


def signal_new_vehicle(entry: TeslaConfigEntry) -> str:
    """Return the dispatcher signal that announces a new vehicle's coordinator."""
    return f"{DOMAIN}_new_vehicle_{entry.entry_id}"


@dataclass(frozen=True, slots=True)
class HomeZone:
    """Where home is."""

    latitude: float
    longitude: float
    radius_km: float
    name: str = STATE_HOME


@dataclass(slots=True)
class VehicleData:
    """The last known state of one vehicle.

    The payload pieces are those of the last vehicle_data answer; they are kept
    while the car sleeps, so entities keep their last values.
    """

    state: str
    checked_at: datetime
    fetched_at: datetime | None = None
    charge_state: dict[str, Any] = field(default_factory=dict)
    drive_state: dict[str, Any] = field(default_factory=dict)
    vehicle_state: dict[str, Any] = field(default_factory=dict)
    charge_schedule_data: dict[str, Any] = field(default_factory=dict)
    location: tuple[float, float] | None = None
    distance_home_km: float | None = None
    at_home: bool | None = None
    plugged_in: bool | None = None
    charging: bool | None = None
    driving: bool = False
    heading_home: bool = False
    speed_kmh: float | None = None
    next_update: datetime | None = None

    @property
    def fresh(self) -> bool:
        """Whether the payload was fetched in the latest cycle (the car is awake)."""
        return self.fetched_at is not None and self.fetched_at == self.checked_at

    @property
    def charging_state(self) -> str | None:
        """Return charge_state.charging_state lower-cased, None when unknown."""
        value = self.charge_state.get("charging_state")
        if not isinstance(value, str):
            return None
        state = value.lower()
        if state in CHARGING_STATES and not self.fresh:
            return None  # the car stopped charging since; we cannot tell how
        return state

    @property
    def charger_power(self) -> float | None:
        """Return the charger power in kW (0 while asleep)."""
        if self.state == VehicleState.ASLEEP:
            return 0.0
        if self.state != VehicleState.ONLINE:
            return None
        value = self.charge_state.get("charger_power")
        return float(value) if isinstance(value, int | float) else None

    def observation(self) -> Observation:
        """Return what the polling policy needs."""
        return Observation(
            state=self.state,
            driving=self.driving,
            heading_home=self.heading_home,
            charging=bool(self.charging),
            distance_home_km=self.distance_home_km,
            speed_kmh=self.speed_kmh,
        )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def build_vehicle_data(
    *,
    state: str,
    now: datetime,
    payload: dict[str, Any] | None,
    previous: VehicleData | None,
    home: HomeZone | None,
) -> VehicleData:
    """Combine a check's result with what was known before."""
    data = VehicleData(state=state, checked_at=now)
    if payload is not None:
        data.fetched_at = now
        data.charge_state = dict(payload.get("charge_state") or {})
        data.drive_state = dict(payload.get("drive_state") or {})
        data.vehicle_state = dict(payload.get("vehicle_state") or {})
        data.charge_schedule_data = dict(payload.get("charge_schedule_data") or {})
    elif previous is not None:
        data.fetched_at = previous.fetched_at
        data.charge_state = previous.charge_state
        data.drive_state = previous.drive_state
        data.vehicle_state = previous.vehicle_state
        data.charge_schedule_data = previous.charge_schedule_data

    drive = data.drive_state
    lat, lon = _number(drive.get("latitude")), _number(drive.get("longitude"))
    if lat is not None and lon is not None:
        data.location = (lat, lon)
        if home is not None:
            data.distance_home_km = distance_km(lat, lon, home.latitude, home.longitude)
            data.at_home = data.distance_home_km <= home.radius_km

    charging_state = data.charge_state.get("charging_state")
    if isinstance(charging_state, str):
        data.plugged_in = charging_state.lower() != "disconnected"
        if data.fresh:
            data.charging = charging_state.lower() in CHARGING_STATES
    if not data.fresh and state == VehicleState.ASLEEP:
        data.charging = False  # a charging car stays awake

    if data.fresh:
        data.speed_kmh = mph_to_kmh(_number(drive.get("speed")))
        shift = drive.get("shift_state")
        data.driving = is_driving(
            shift if isinstance(shift, str) else None, data.speed_kmh
        )
    if data.driving and data.location is not None and home is not None:
        assert data.distance_home_km is not None  # noqa: S101 - set with location
        earlier = (
            previous.distance_home_km
            if previous is not None and previous.driving and previous.fresh
            else None
        )
        data.heading_home = heading_home(
            distance_km_now=data.distance_home_km,
            previous_distance_km=earlier,
            heading=_number(drive.get("heading")),
            bearing_home=bearing_deg(*data.location, home.latitude, home.longitude),
        )
    return data


def time_to_minutes(value: Any) -> int:
    """Return minutes after midnight of "HH:MM[:SS]" (or a number of minutes)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) % MINUTES_PER_DAY
    parsed = dt_util.parse_time(str(value))
    if parsed is None:
        raise ValueError(f"not a time of day: {value!r}")
    return parsed.hour * 60 + parsed.minute


def _all_days(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"all", "daily", str(ALL_DAYS)}
    return bool(value == ALL_DAYS)


def has_off_peak_schedule(
    schedules: list[dict[str, Any]], start: int, end: int, home: HomeZone
) -> bool:
    """Return whether a repeating all-days schedule start..end exists at home."""
    for schedule in schedules:
        lat = _number(schedule.get("latitude"))
        lon = _number(schedule.get("longitude"))
        if (
            schedule.get("enabled")
            and not schedule.get("one_time")
            and schedule.get("start_enabled")
            and schedule.get("start_time") == start
            and schedule.get("end_enabled")
            and schedule.get("end_time") == end
            and _all_days(schedule.get("days_of_week"))
            and lat is not None
            and lon is not None
            and distance_km(lat, lon, home.latitude, home.longitude)
            <= max(home.radius_km, SCHEDULE_MATCH_KM)
        ):
            return True
    return False


def _minutes_option(entry: TeslaConfigEntry, key: str, default: float) -> timedelta:
    return timedelta(minutes=float(entry.options.get(key, default)))


def poll_settings(entry: TeslaConfigEntry) -> PollSettings:
    """Return the polling intervals chosen in the options."""
    return PollSettings(
        idle=_minutes_option(entry, CONF_IDLE_INTERVAL, DEFAULT_IDLE_INTERVAL),
        asleep=_minutes_option(entry, CONF_ASLEEP_INTERVAL, DEFAULT_ASLEEP_INTERVAL),
        driving_min=_minutes_option(
            entry, CONF_DRIVING_MIN_INTERVAL, DEFAULT_DRIVING_MIN_INTERVAL
        ),
    )


def home_zone(hass: HomeAssistant, entry: TeslaConfigEntry) -> HomeZone | None:
    """Return the home zone chosen in the options, None when it does not exist."""
    zone_id = str(entry.options.get(CONF_HOME_ZONE) or DEFAULT_HOME_ZONE)
    zone = hass.states.get(zone_id)
    if zone is None:
        return None
    lat = _number(zone.attributes.get(ATTR_LATITUDE))
    lon = _number(zone.attributes.get(ATTR_LONGITUDE))
    if lat is None or lon is None:
        return None
    radius = _number(zone.attributes.get("radius")) or DEFAULT_ZONE_RADIUS_M
    name = STATE_HOME if zone_id == DEFAULT_HOME_ZONE else zone.name
    return HomeZone(lat, lon, radius / 1000, name)


class VehicleCoordinator(DataUpdateCoordinator[VehicleData]):
    """Check one vehicle at adaptive intervals, never waking it."""

    config_entry: TeslaConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: TeslaConfigEntry, vehicle: dict[str, Any]
    ) -> None:
        """Initialize from the vehicle's entry in the account's vehicle list."""
        self.vin = str(vehicle["vin"])
        self.display_name = str(vehicle.get("display_name") or "Tesla")
        self.settings = poll_settings(entry)
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=self.display_name,
            update_interval=self.settings.idle,
        )
        # The account listing just told us the state: the first cycle uses it
        # instead of paying for another state check.
        listed = vehicle.get("state")
        self._listed_state: str | None = str(listed) if listed else None
        self._arrival_done = False
        self._arrival_attempts = 0

    async def _async_state(self) -> str:
        if self._listed_state is not None:
            state, self._listed_state = self._listed_state, None
            return state
        summary = await self.config_entry.runtime_data.client.async_vehicle_state(
            self.vin
        )
        return str(summary.get("state") or VehicleState.OFFLINE)

    async def _async_update_data(self) -> VehicleData:
        """Check the state; fetch data only when the car is already online."""
        client = self.config_entry.runtime_data.client
        payload: dict[str, Any] | None = None
        try:
            state = await self._async_state()
            if state == VehicleState.ONLINE:
                try:
                    payload = await client.async_vehicle_data(self.vin)
                except VehicleAsleepError:
                    state = VehicleState.ASLEEP
        except RateLimitedError as err:
            self.update_interval = backoff(self.update_interval, err.retry_after)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="rate_limited",
                translation_placeholders={"seconds": str(int(err.retry_after))},
            ) from err
        except ConfigEntryAuthFailed:
            raise
        except HomeAssistantError as err:
            # Not sooner than idle: a failing server is not worth hammering.
            self.update_interval = max(
                self.update_interval or self.settings.idle, self.settings.idle
            )
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_failed",
                translation_placeholders={"error": str(err)},
            ) from err

        home = home_zone(self.hass, self.config_entry)
        data = build_vehicle_data(
            state=state,
            now=dt_util.utcnow(),
            payload=payload,
            previous=self.data,
            home=home,
        )
        if home is not None:
            await self._async_arrival(data, home)
        self.update_interval = next_interval(self.settings, data.observation())
        return data

    @callback
    def _async_refresh_finished(self) -> None:
        """Note the next check; tell entities after a failed one too."""
        data = cast("VehicleData | None", self.data)
        if data is None:
            return  # the first check failed
        interval = self.update_interval
        data.next_update = (
            None
            if interval is None or self.config_entry.pref_disable_polling
            else dt_util.utcnow() + interval
        )
        if not self.last_update_success:
            # The base class tells listeners only about the first failure;
            # entities must still notice when their data grows stale.
            self.async_update_listeners()

    async def _async_arrival(self, data: VehicleData, home: HomeZone) -> None:
        """Send the off-peak action once per arrival at home, when plugged in."""
        if not data.fresh:
            return  # only act on what the awake car just told us
        if data.at_home is False:
            self._arrival_done = False  # left home: the next arrival counts again
            self._arrival_attempts = 0
            return
        if self._arrival_done or not data.at_home or not data.plugged_in:
            return
        options = self.config_entry.options
        if not options.get(CONF_OFF_PEAK_ACTION, DEFAULT_OFF_PEAK_ACTION):
            return
        self._arrival_done = True
        if self.config_entry.runtime_data.session_active(self.vin):
            LOGGER.debug(
                "%s arrived home during a charging session; off-peak action skipped",
                self.display_name,
            )
            return
        try:
            await self._async_off_peak_action(data, home)
        except (FleetError, ValueError) as err:
            self._arrival_attempts += 1
            self._arrival_done = self._arrival_attempts >= MAX_ARRIVAL_ATTEMPTS
            LOGGER.warning(
                "The off-peak action for %s failed (%s)%s",
                self.display_name,
                err,
                "" if self._arrival_done else "; trying again at the next check",
            )

    async def _async_off_peak_action(self, data: VehicleData, home: HomeZone) -> None:
        """Set the off-peak limit and schedule, skipping what is already set."""
        options = self.config_entry.options
        client = self.config_entry.runtime_data.client
        limit = int(options.get(CONF_OFF_PEAK_LIMIT, DEFAULT_OFF_PEAK_LIMIT))
        start = time_to_minutes(
            options.get(CONF_OFF_PEAK_START, DEFAULT_OFF_PEAK_START)
        )
        end = time_to_minutes(options.get(CONF_OFF_PEAK_END, DEFAULT_OFF_PEAK_END))
        if data.charge_state.get("charge_limit_soc") != limit:
            await client.async_command(self.vin, "set_charge_limit", percent=limit)
            data.charge_state["charge_limit_soc"] = limit
        schedules = list(data.charge_schedule_data.get("charge_schedules") or [])
        if start != end and not has_off_peak_schedule(schedules, start, end, home):
            await client.async_command(
                self.vin,
                "add_charge_schedule",
                days_of_week="All",
                enabled=True,
                lat=home.latitude,
                lon=home.longitude,
                start_time=start,
                end_time=end,
                one_time=False,
            )
        LOGGER.debug("Off-peak action done for %s", self.display_name)


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
    def coordinators(self) -> dict[str, VehicleCoordinator]:
        """Return the coordinators by VIN."""
        return self.entry.runtime_data.coordinators

    async def async_setup(self) -> None:
        """Create a coordinator per vehicle, first refresh, start the routines."""
        created = [self._add(vehicle) for vehicle in self.entry.runtime_data.vehicles]
        await asyncio.gather(*(c.async_config_entry_first_refresh() for c in created))
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

    def _add(self, vehicle: dict[str, Any]) -> VehicleCoordinator:
        coordinator = VehicleCoordinator(self.hass, self.entry, vehicle)
        self.coordinators[coordinator.vin] = coordinator
        return coordinator

    async def _async_relist(self, _now: datetime | None = None) -> None:
        """Re-list the account: add new vehicles, drop the ones that are gone."""
        if self.entry.pref_disable_polling:
            return  # the user turned automatic checks off
        try:
            vehicles = await self.entry.runtime_data.client.async_list_vehicles()
        except HomeAssistantError as err:
            LOGGER.debug("Could not re-list the vehicles: %s", err)
            return
        self.entry.runtime_data.vehicles = vehicles
        current = {str(v["vin"]) for v in vehicles}
        for vin in [vin for vin in self.coordinators if vin not in current]:
            coordinator = self.coordinators.pop(vin)
            LOGGER.info("%s left the account; removing it", coordinator.display_name)
            await coordinator.async_shutdown()
        self._remove_stale_devices()
        for vehicle in vehicles:
            if str(vehicle["vin"]) in self.coordinators:
                continue
            coordinator = self._add(vehicle)
            LOGGER.info("New vehicle %s on the account", coordinator.display_name)
            await coordinator.async_refresh()
            async_dispatcher_send(
                self.hass, signal_new_vehicle(self.entry), coordinator
            )

    @callback
    def _remove_stale_devices(self) -> None:
        """Detach devices of vehicles that are no longer on the account."""
        registry = dr.async_get(self.hass)
        keep = {*self.coordinators, str(self.entry.unique_id)}
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
            home = home_zone(self.hass, self.entry)
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
            for coordinator in self.coordinators.values():
                self.entry.async_create_task(
                    self.hass,
                    coordinator.async_request_refresh(),
                    name=f"{DOMAIN} triggered check",
                )

        return async_track_state_change_event(self.hass, entities, _state_changed)


async def async_setup_scout(hass: HomeAssistant, entry: TeslaConfigEntry) -> None:
    """Start watching the account's vehicles (before the platforms are set up)."""
    await VehicleRoster(hass, entry).async_setup()


def vehicle_gone(entry: TeslaConfigEntry, identifiers: set[tuple[str, str]]) -> bool:
    """Return whether a device stands for a vehicle no longer on the account."""
    ours = {ident for domain, ident in identifiers if domain == DOMAIN}
    current = {str(v["vin"]) for v in entry.runtime_data.vehicles}
    current.add(str(entry.unique_id))
    return bool(ours) and not ours & current
