"""What the Fleet API would bill: a ledger of billable calls and a request log."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from .config import SimConfig

DATA = "data"
COMMAND = "command"
WAKE = "wake"
STATE_CHECK = "state_check"
CATEGORIES = (DATA, COMMAND, WAKE, STATE_CHECK)
FIRST_UNBILLED_STATUS = 500


@dataclass(slots=True)
class RequestRecord:
    """One HTTP request the simulator answered (API or auth)."""

    time: datetime
    method: str
    path: str
    status: int = 0
    category: str | None = None
    vin: str | None = None
    grant_type: str | None = None
    expired: bool = False
    billed: bool = False
    sub: str | None = None
    error: str | None = None
    replay: bool = False
    region: str | None = None  # Fleet API: the region whose base URL was called

    def as_dict(self) -> dict[str, Any]:
        """Return the record as JSON-friendly data."""
        data = asdict(self)
        data["time"] = self.time.isoformat()
        return data


def is_billable(status: int) -> bool:
    """Every Fleet API response below 500 is billed (408 and 429 included)."""
    return status < FIRST_UNBILLED_STATUS


class Ledger:
    """Counts of billed Fleet API calls by category and vehicle."""

    def __init__(self, config: SimConfig) -> None:
        """Start empty; prices and the state-check switch are read from ``config``."""
        self._config = config
        self._counts = dict.fromkeys(CATEGORIES, 0)
        self._by_vehicle: dict[str, dict[str, int]] = {}
        self.unbilled = 0

    def record(self, category: str, vin: str | None, status: int) -> bool:
        """Count a response; returns whether it was billable."""
        if not is_billable(status):
            self.unbilled += 1
            return False
        self._counts[category] += 1
        if vin is not None:
            per_vehicle = self._by_vehicle.setdefault(vin, dict.fromkeys(CATEGORIES, 0))
            per_vehicle[category] += 1
        return True

    @property
    def counts(self) -> dict[str, int]:
        """Billable calls per category (state checks counted even when free)."""
        return dict(self._counts)

    @property
    def by_vehicle(self) -> dict[str, dict[str, int]]:
        """Billable calls per VIN and category."""
        return {vin: dict(counts) for vin, counts in self._by_vehicle.items()}

    def vehicle_counts(self, vin: str) -> dict[str, int]:
        """Billable calls of one vehicle per category."""
        return dict(self._by_vehicle.get(vin, dict.fromkeys(CATEGORIES, 0)))

    def cost_by_category(
        self, bill_state_checks: bool | None = None
    ) -> dict[str, float]:
        """US dollars per category."""
        if bill_state_checks is None:
            bill_state_checks = self._config.bill_state_checks
        prices = self._config.prices
        costs = {c: self._counts[c] * prices.price_of(c) for c in CATEGORIES}
        if not bill_state_checks:
            costs[STATE_CHECK] = 0.0
        return {c: round(v, 6) for c, v in costs.items()}

    def cost_usd(self, bill_state_checks: bool | None = None) -> float:
        """Total US dollars (None: use the config's bill_state_checks)."""
        return round(sum(self.cost_by_category(bill_state_checks).values()), 6)

    def reset(self) -> None:
        """Forget everything counted so far."""
        self._counts = dict.fromkeys(CATEGORIES, 0)
        self._by_vehicle.clear()
        self.unbilled = 0

    def as_dict(self) -> dict[str, Any]:
        """Return counts and costs, with and without billing state checks."""
        return {
            "counts": self.counts,
            "by_vehicle": self.by_vehicle,
            "unbilled_5xx": self.unbilled,
            "bill_state_checks": self._config.bill_state_checks,
            "cost_by_category": self.cost_by_category(),
            "cost_usd": self.cost_usd(),
            "cost_usd_state_checks_billed": self.cost_usd(bill_state_checks=True),
            "cost_usd_state_checks_free": self.cost_usd(bill_state_checks=False),
        }
