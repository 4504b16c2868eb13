"""The scout: one coordinator per vehicle that watches the car without waking it.

Every cycle asks Tesla's server for the car's state first (GET /vehicles/{vin},
which never reaches the car). Only when that says "online" is the car itself
asked for its data; a 408 from it means it just fell asleep. The interval to
the next cycle comes from the pure policy in scout_policy.py; what the answers
mean is worked out in vehicle_data.py. When the car is seen arriving home and
plugged in, the optional off-peak action goes through the car-control layer.
What a check learnt is kept in the scout's memory (scout_memory.py), and a
coordinator starts from it after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Final, cast

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, HomeAssistantError
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import FleetClient
from .charge_control import ChargeControl
from .const import (
    CONF_ASLEEP_INTERVAL,
    CONF_DRIVING_MIN_INTERVAL,
    CONF_HABIT_INTERVAL,
    CONF_IDLE_INTERVAL,
    CONF_OFF_PEAK_ACTION,
    CONF_OFF_PEAK_END,
    CONF_OFF_PEAK_LIMIT,
    CONF_OFF_PEAK_START,
    DEFAULT_ASLEEP_INTERVAL,
    DEFAULT_DRIVING_MIN_INTERVAL,
    DEFAULT_HABIT_INTERVAL,
    DEFAULT_IDLE_INTERVAL,
    DEFAULT_OFF_PEAK_ACTION,
    DEFAULT_OFF_PEAK_END,
    DEFAULT_OFF_PEAK_LIMIT,
    DEFAULT_OFF_PEAK_START,
    DOMAIN,
    LOGGER,
)
from .errors import (
    FleetError,
    KeyNotPairedError,
    RateLimitedError,
    SigningRequiredError,
    VehicleAsleepError,
)
from .scout_habits import Place, Seen
from .scout_memory import ScoutMemory
from .scout_policy import PollSettings, VehicleState, backoff, next_interval
from .time_of_day import time_to_minutes
from .vehicle_data import HomeZone, VehicleData, build_vehicle_data, home_zone

STALE_AFTER: Final = timedelta(hours=24)
"""Entities turn unavailable when Tesla's server was last reached this long ago."""
MAX_ARRIVAL_ATTEMPTS: Final = 3


def _minutes_option(options: Mapping[str, Any], key: str, default: float) -> timedelta:
    return timedelta(minutes=float(options.get(key, default)))


def poll_settings(options: Mapping[str, Any]) -> PollSettings:
    """Return the polling intervals chosen in the options."""
    return PollSettings(
        idle=_minutes_option(options, CONF_IDLE_INTERVAL, DEFAULT_IDLE_INTERVAL),
        asleep=_minutes_option(options, CONF_ASLEEP_INTERVAL, DEFAULT_ASLEEP_INTERVAL),
        driving_min=_minutes_option(
            options, CONF_DRIVING_MIN_INTERVAL, DEFAULT_DRIVING_MIN_INTERVAL
        ),
        habit=_minutes_option(options, CONF_HABIT_INTERVAL, DEFAULT_HABIT_INTERVAL),
    )


def seen_of(data: VehicleData) -> Seen:
    """Return where a check found the car, for learning its habits."""
    place = None if data.at_home is None else Place.HOME if data.at_home else Place.AWAY
    return Seen(
        at=dt_util.as_local(data.checked_at),
        place=place,
        moving=data.driving,
        location=data.location,
    )


class VehicleCoordinator(DataUpdateCoordinator[VehicleData]):
    """Check one vehicle at adaptive intervals, never waking it."""

    config_entry: ConfigEntry[Any]

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        vehicle: Mapping[str, Any],
        *,
        client: FleetClient,
        control: ChargeControl,
        session_active: Callable[[str], bool],
        memory: ScoutMemory,
    ) -> None:
        """Initialize from the vehicle's entry in the account's vehicle list.

        ``session_active`` tells whether a special charging session owns the
        car; the off-peak action keeps its hands off it then. What ``memory``
        recalls of the car is the data until the first check (which keeps
        the payload when the car sleeps); every check is remembered.
        """
        self.vin = str(vehicle["vin"])
        self.display_name = str(vehicle.get("display_name") or "Tesla")
        self.settings = poll_settings(entry.options)
        self._client = client
        self._control = control
        self._session_active = session_active
        self._memory = memory
        self._habits = memory.habits(self.vin)
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
        if (
            known := memory.recall(self.vin, home_zone(hass, entry.options))
        ) is not None:
            self.data = known

    @property
    def location_granted(self) -> bool:
        """Whether the token allows reading where the car is."""
        return self._client.location_granted

    async def _async_state(self) -> str:
        if self._listed_state is not None:
            state, self._listed_state = self._listed_state, None
            return state
        summary = await self._client.async_vehicle_state(self.vin)
        return str(summary.get("state") or VehicleState.OFFLINE)

    async def _async_update_data(self) -> VehicleData:
        """Check the state; fetch data only when the car is already online."""
        client = self._client
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

        home = home_zone(self.hass, self.config_entry.options)
        previous = cast("VehicleData | None", self.data)
        data = build_vehicle_data(
            state=state,
            now=dt_util.utcnow(),
            payload=payload,
            previous=previous,
            home=home,
        )
        if home is not None:
            await self._async_arrival(data, home)
        self._memory.remember(
            self.vin,
            data,
            changed=payload is not None or previous is None or previous.state != state,
        )
        after = seen_of(data)
        self._habits.learn(None if previous is None else seen_of(previous), after)
        self.update_interval = next_interval(
            self.settings, data.observation(), habits=self._habits, now=after.at
        )
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
        if self._session_active(self.vin):
            LOGGER.debug(
                "%s arrived home during a charging session; off-peak action skipped",
                self.display_name,
            )
            return
        try:
            await self._async_off_peak_action(data, home)
        except (SigningRequiredError, KeyNotPairedError) as err:
            # Not sent; its repair issue says what to do. No retry helps.
            LOGGER.warning(
                "The off-peak action for %s was not sent: %s", self.display_name, err
            )
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
        limit = int(options.get(CONF_OFF_PEAK_LIMIT, DEFAULT_OFF_PEAK_LIMIT))
        await self._control.async_ensure_off_peak(
            self.vin,
            {
                "charge_state": data.charge_state,
                "charge_schedule_data": data.charge_schedule_data,
            },
            limit=limit,
            start=time_to_minutes(
                options.get(CONF_OFF_PEAK_START, DEFAULT_OFF_PEAK_START)
            ),
            end=time_to_minutes(options.get(CONF_OFF_PEAK_END, DEFAULT_OFF_PEAK_END)),
            home=(home.latitude, home.longitude, home.radius_km),
        )
        data.charge_state["charge_limit_soc"] = limit
        LOGGER.debug("Off-peak action done for %s", self.display_name)
