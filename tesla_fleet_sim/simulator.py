"""The simulator: accounts, cars, tokens, billing and scripted events on one clock."""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
import heapq
import itertools
import logging
from typing import Any

from .billing import Ledger, RequestRecord
from .clock import SimClock, ensure_utc
from .config import SimConfig
from .errors import SimulationError
from .faults import Faults
from .partners import PartnerRegistry
from .plans import SCRIPTABLE_ACTIONS, DayPlan
from .ratelimit import RateLimiter
from .tokens import TokenAuthority
from .vehicle import SimVehicle

_LOGGER = logging.getLogger(__package__)

EventAction = Callable[..., object] | str
TOKEN_PATH = "/oauth2/v3/token"
API_PREFIX = "/api/1/"


@dataclass(order=True, slots=True)
class ScriptedEvent:
    """Something a test or plan makes happen to a car at an exact moment."""

    at: datetime
    seq: int
    vin: str = field(compare=False)
    action: EventAction = field(compare=False)
    kwargs: dict[str, Any] = field(compare=False, default_factory=dict)

    def apply(self, vehicle: SimVehicle) -> None:
        """Run the action on ``vehicle``."""
        if isinstance(self.action, str):
            getattr(vehicle, self.action)(**self.kwargs)
        else:
            self.action(vehicle, **self.kwargs)

    def describe(self) -> str:
        """Name the action for logs."""
        name = self.action if isinstance(self.action, str) else self.action.__name__
        return f"{name} at {self.at.isoformat()}"


class Simulator:
    """A simulated Tesla account world: auth server, Fleet API state and cars."""

    def __init__(
        self, config: SimConfig | None = None, clock: SimClock | None = None
    ) -> None:
        """Build the world from ``config`` (defaults: one client, account, car)."""
        self.config = config if config is not None else SimConfig()
        self.clock = clock if clock is not None else SimClock.real()
        self.faults = Faults()
        self.ledger = Ledger(self.config)
        self.rate_limiter = RateLimiter(self.config)
        self.requests: list[RequestRecord] = []
        self.tokens = TokenAuthority(self.config, self.update)
        self.authorize_account: str | None = None
        self.event_errors: list[str] = []
        self._now = self.clock.now()
        self.partners = PartnerRegistry(self.config, self._now)
        self._events: list[ScriptedEvent] = []
        self._seq = itertools.count()
        self._updating = False
        self._dirty = False
        self._vehicles: dict[str, SimVehicle] = {}
        self._owners: dict[str, str] = {}
        self._build_vehicles()

    def _build_vehicles(self) -> None:
        for account in self.config.accounts:
            for vehicle_config in account.vehicles:
                if vehicle_config.vin in self._vehicles:
                    raise ValueError(f"duplicate VIN {vehicle_config.vin}")
                car = SimVehicle(
                    vehicle_config, self.config, self._now, sync=self.update
                )
                self._vehicles[car.vin] = car
                self._owners[car.vin] = account.sub

    # --- time -------------------------------------------------------------

    def update(self) -> datetime:
        """Bring the world up to the clock; returns the simulated now.

        Scripted events and every car's own events run in time order. The
        world never runs backwards: an earlier clock reading changes nothing.
        """
        if self._updating:
            return self._now
        target = max(self.clock.now(), self._now)
        if target == self._now and not self._dirty:
            return target
        self._updating = True
        try:
            self._run_events_until(target)
            for car in self._vehicles.values():
                car.advance_to(target)
            self._now = target
            self._dirty = False
        finally:
            self._updating = False
        return target

    def _run_events_until(self, target: datetime) -> None:
        while self._events and self._events[0].at <= target:
            event = heapq.heappop(self._events)
            car = self._vehicles[event.vin]
            car.advance_to(event.at)
            try:
                event.apply(car)
            except (SimulationError, ValueError) as err:
                message = f"{event.describe()}: {err}"
                self.event_errors.append(message)
                _LOGGER.warning("Scripted event failed: %s", message)

    # --- cars ---------------------------------------------------------------

    @property
    def vehicles(self) -> list[SimVehicle]:
        """All cars of all accounts."""
        return list(self._vehicles.values())

    def vehicle(self, vin: str | None = None) -> SimVehicle:
        """Return the car with ``vin`` (default: the first car)."""
        if vin is None:
            return next(iter(self._vehicles.values()))
        return self._vehicles[vin]

    def has_vehicle(self, vin: str) -> bool:
        """Whether a car with ``vin`` exists."""
        return vin in self._vehicles

    def account_vehicles(self, sub: str) -> list[SimVehicle]:
        """Return the cars of one account."""
        return [car for vin, car in self._vehicles.items() if self._owners[vin] == sub]

    def vehicle_of(self, sub: str, vin: str) -> SimVehicle | None:
        """Return the car ``vin`` if it belongs to account ``sub``."""
        if self._owners.get(vin) != sub:
            return None
        return self._vehicles[vin]

    def paired_keys(self, vin: str | None = None) -> list[bytes]:
        """Return the public keys car ``vin`` accepts signed commands from.

        Explicitly paired keys, plus every registered app key when the car has
        the app's key paired (``VehicleConfig.key_paired``).
        """
        return self.vehicle(vin).keychain.entries(self.partners.public_keys())

    def is_key_paired(self, public_key: bytes, vin: str | None = None) -> bool:
        """Whether car ``vin`` accepts signed commands from ``public_key``."""
        car = self.vehicle(vin)
        return car.keychain.holds(public_key, self.partners.public_keys())

    # --- scripting -----------------------------------------------------------

    def schedule_event(
        self, at: datetime, action: EventAction, vin: str | None = None, **kwargs: Any
    ) -> None:
        """Run ``action`` on a car at ``at`` (even if no request arrives then).

        ``action`` is a callable taking the car (and ``kwargs``) or the name of
        a car action such as "drive_home", "plug_in" or "fall_asleep".
        Events in the past run at the next update.
        """
        if isinstance(action, str) and action not in SCRIPTABLE_ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        car = self.vehicle(vin)
        event = ScriptedEvent(ensure_utc(at), next(self._seq), car.vin, action, kwargs)
        heapq.heappush(self._events, event)
        self._dirty = True

    def add_daily_plan(
        self,
        vin: str | None,
        plan: DayPlan,
        days: int = 1,
        plug_in_days: Container[int] = (),
        start: date | None = None,
        weekdays: Container[int] | None = None,
    ) -> int:
        """Repeat ``plan`` for ``days`` days from ``start`` (default: today, car-local).

        ``plug_in_days``: weekdays (Monday = 0) on which the evening drive home
        ends plugged in. ``weekdays``: the days the plan runs (default all).
        Steps already in the past are skipped. Returns the events scheduled.
        """
        car = self.vehicle(vin)
        tz = car.schedules.tz
        now = self.update()
        first = start if start is not None else now.astimezone(tz).date()
        count = 0
        for moment, action, kwargs in plan.occurrences(
            tz, first, days, plug_in_days, weekdays
        ):
            if moment.astimezone(UTC) > now:
                self.schedule_event(moment, action, car.vin, **kwargs)
                count += 1
        return count

    @property
    def pending_events(self) -> int:
        """Scripted events not run yet."""
        return len(self._events)

    # --- accounts and tokens -------------------------------------------------

    def issue_tokens(
        self, sub: str | None = None, client_id: str | None = None
    ) -> dict[str, Any]:
        """Log in without a browser; returns the token endpoint's JSON body."""
        return self.tokens.issue_tokens(sub, client_id)

    def revoke_account(self, sub: str) -> None:
        """Make every refresh and access token of account ``sub`` stop working."""
        self.tokens.revoke_account(sub)

    # --- request log ------------------------------------------------------------

    def log_request(self, record: RequestRecord) -> None:
        """Append a record to the request log."""
        self.requests.append(record)

    def token_requests(self, grant_type: str | None = None) -> list[RequestRecord]:
        """Token endpoint requests, optionally of one grant type."""
        return [
            r
            for r in self.requests
            if r.path == TOKEN_PATH
            and (grant_type is None or r.grant_type == grant_type)
        ]

    def api_requests(self, category: str | None = None) -> list[RequestRecord]:
        """Fleet API requests, optionally of one billing category."""
        return [
            r
            for r in self.requests
            if r.path.startswith(API_PREFIX)
            and (category is None or r.category == category)
        ]

    def reset_accounting(self) -> None:
        """Forget billed calls, the request log and rate-limit windows."""
        self.ledger.reset()
        self.requests.clear()
        self.rate_limiter.reset()

    # --- admin view -----------------------------------------------------------

    def to_dict(self, max_requests: int | None = None) -> dict[str, Any]:
        """Everything the admin endpoint shows (the last ``max_requests`` requests)."""
        now = self.update()
        shown = self.requests
        if max_requests is not None:
            shown = self.requests[-max_requests:] if max_requests > 0 else []
        return {
            "now": now.isoformat(),
            "clock": self.clock.as_dict(),
            "server_region": self.config.server_region,
            "clients": [
                {"client_id": c.client_id, "client_secret": c.client_secret}
                for c in self.config.clients
            ],
            "accounts": [
                {
                    "sub": a.sub,
                    "email": a.email,
                    "region": a.region,
                    "vehicles": [v.vin for v in a.vehicles],
                }
                for a in self.config.accounts
            ],
            "authorize_account": self.authorize_account,
            "partner_registrations": self.partners.as_dict(),
            "vehicles": {car.vin: car.to_dict() for car in self._vehicles.values()},
            "ledger": self.ledger.as_dict(),
            "faults": self.faults.as_dict(),
            "auth": self.tokens.as_dict(),
            "pending_events": self.pending_events,
            "event_errors": list(self.event_errors),
            "request_count": len(self.requests),
            "requests": [r.as_dict() for r in shown],
        }
