"""What Tesla said about the signing key on each car, kept across restarts.

Which cars know the installation's key comes from ``fleet_status`` (a billed
data request). It is asked once a day, not at every start of Home Assistant:
the answer and when it was given are stored here, and a start within a day
of the last answer uses it. Cars that refused the key although Tesla lists
it (another key of the app is on them) are kept too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN

STORAGE_VERSION: Final = 1
CHECK_INTERVAL: Final = timedelta(days=1)
SAVE_DELAY: Final = 10  # seconds


def storage_key(entry_id: str) -> str:
    """Return the storage key of a config entry's pairing record."""
    return f"{DOMAIN}.pairing.{entry_id}"


class PairingRecord:
    """Per car: whether Tesla lists the key, and whether the car refused it."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Initialize empty; call async_load to read what was stored."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, storage_key(entry_id)
        )
        self.paired: dict[str, bool] = {}
        self.not_accepted: set[str] = set()
        self.checked_at: datetime | None = None
        self._dirty = False

    async def async_load(self) -> None:
        """Read the stored record (an unreadable one is ignored)."""
        stored = await self._store.async_load()
        if not isinstance(stored, dict):
            return
        paired = stored.get("paired")
        if isinstance(paired, dict):
            self.paired = {str(vin): bool(value) for vin, value in paired.items()}
        refused = stored.get("not_accepted")
        if isinstance(refused, list):
            self.not_accepted = {str(vin) for vin in refused}
        self.checked_at = dt_util.parse_datetime(str(stored.get("checked_at") or ""))

    def due(self, vins: list[str], now: datetime) -> bool:
        """Whether Tesla must be asked: a car is new, or the answer is a day old."""
        if self.checked_at is None or any(vin not in self.paired for vin in vins):
            return True
        return now - self.checked_at >= CHECK_INTERVAL

    def next_check(self, now: datetime) -> datetime:
        """Return when Tesla is to be asked next."""
        if self.checked_at is None:
            return now + CHECK_INTERVAL
        return max(now, self.checked_at + CHECK_INTERVAL)

    def answered(self, paired: dict[str, bool], now: datetime) -> None:
        """Note Tesla's answer."""
        self.paired.update(paired)
        self.checked_at = now
        self.save()

    def save(self) -> None:
        """Write the record soon (and at the latest when the entry unloads)."""
        self._dirty = True
        self._store.async_delay_save(self._data, SAVE_DELAY)

    async def async_flush(self) -> None:
        """Write the record now if it changed since it was read."""
        if self._dirty:
            await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        return {
            "paired": self.paired,
            "not_accepted": sorted(self.not_accepted),
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
        }
