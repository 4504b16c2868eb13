"""Fleet API usage and cost, counted per account and calendar month."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_time
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, PRICE_COMMAND, PRICE_DATA, PRICE_WAKE
from .listeners import Listeners

STORAGE_VERSION = 1
SAVE_DELAY = 30  # seconds


class ApiCategory(StrEnum):
    """Billing category of a Fleet API request."""

    DATA = "data"
    COMMAND = "command"
    WAKE = "wake"
    STATE_CHECK = "state_check"
    HANDSHAKE = "handshake"
    """A signed-command session opened with a car (billed as a command)."""


PRICES: dict[ApiCategory, float] = {
    ApiCategory.DATA: PRICE_DATA,
    ApiCategory.COMMAND: PRICE_COMMAND,
    ApiCategory.WAKE: PRICE_WAKE,
    ApiCategory.STATE_CHECK: PRICE_DATA,
    ApiCategory.HANDSHAKE: PRICE_COMMAND,
}


def month_start(moment: datetime) -> datetime:
    """Return the local start of the month containing moment."""
    local = dt_util.as_local(moment)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment: datetime) -> datetime:
    """Return the local start of the month after the one containing moment."""
    start = month_start(moment)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


class ApiUsage:
    """Count billed Fleet API requests this month and estimate their cost."""

    def __init__(
        self, hass: HomeAssistant, entry_id: str, *, bill_state_checks: bool
    ) -> None:
        """Initialize; call async_load before use."""
        self.hass = hass
        self.bill_state_checks = bill_state_checks
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.usage.{entry_id}"
        )
        self.period_start = month_start(dt_util.now())
        self.counts: dict[ApiCategory, int] = dict.fromkeys(ApiCategory, 0)
        self.previous: dict[str, Any] | None = None
        self._listeners = Listeners()
        self._unsub_rollover: CALLBACK_TYPE | None = None

    async def async_load(self) -> None:
        """Restore this month's counters and arm the monthly reset."""
        stored = await self._store.async_load()
        if stored:
            start = dt_util.parse_datetime(stored.get("period_start", ""))
            if start is not None and start == self.period_start:
                for category in ApiCategory:
                    self.counts[category] = int(stored["counts"].get(category, 0))
                self.previous = stored.get("previous")
            elif start is not None:
                self.previous = self._summary(
                    start, {ApiCategory(k): int(v) for k, v in stored["counts"].items()}
                )
        self._arm_rollover()

    @callback
    def async_stop(self) -> None:
        """Cancel the monthly reset timer and save now."""
        if self._unsub_rollover is not None:
            self._unsub_rollover()
            self._unsub_rollover = None

    async def async_save(self) -> None:
        """Write the counters now."""
        await self._store.async_save(self._data())

    @callback
    def _arm_rollover(self) -> None:
        self._unsub_rollover = async_track_point_in_time(
            self.hass, self._async_rollover, next_month_start(self.period_start)
        )

    @callback
    def _async_rollover(self, now: datetime) -> None:
        """Start a new month."""
        self.previous = self._summary(self.period_start, self.counts)
        self.period_start = month_start(now)
        self.counts = dict.fromkeys(ApiCategory, 0)
        self._store.async_delay_save(self._data, SAVE_DELAY)
        self._arm_rollover()
        self._notify()

    @callback
    def record(self, category: ApiCategory) -> None:
        """Count one billed request."""
        self.counts[category] += 1
        self._store.async_delay_save(self._data, SAVE_DELAY)
        self._notify()

    def price(self, category: ApiCategory) -> float:
        """Return the price of one request of this category in USD."""
        if category is ApiCategory.STATE_CHECK and not self.bill_state_checks:
            return 0.0
        return PRICES[category]

    @property
    def total_calls(self) -> int:
        """Return all billed requests this month."""
        return sum(self.counts.values())

    @property
    def cost_usd(self) -> float:
        """Return the estimated cost of this month's requests in USD."""
        return round(sum(self.price(c) * n for c, n in self.counts.items()), 4)

    def _summary(
        self, start: datetime, counts: dict[ApiCategory, int]
    ) -> dict[str, Any]:
        return {
            "period_start": start.isoformat(),
            "counts": {str(k): v for k, v in counts.items()},
            "cost_usd": round(sum(self.price(c) * n for c, n in counts.items()), 4),
        }

    def _data(self) -> dict[str, Any]:
        return {
            "period_start": self.period_start.isoformat(),
            "counts": {str(k): v for k, v in self.counts.items()},
            "previous": self.previous,
        }

    def as_dict(self) -> dict[str, Any]:
        """Return this month's usage for diagnostics and responses."""
        return {
            **self._summary(self.period_start, self.counts),
            "bill_state_checks": self.bill_state_checks,
            "previous_month": self.previous,
        }

    @callback
    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call update whenever the counters change."""
        return self._listeners.add(update)

    @callback
    def _notify(self) -> None:
        self._listeners.notify()
