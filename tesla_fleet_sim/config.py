"""Configuration dataclasses and the simulator's default constants."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import timedelta
import hashlib
import json
import math
from pathlib import Path
import random
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from .geo import Location

DEFAULT_CLIENT_ID = "sim-client-id"
DEFAULT_CLIENT_SECRET = "sim-client-secret"
DEFAULT_ACCOUNT_SUB = "sim-account-1"
DEFAULT_EMAIL = "driver@example.com"
DEFAULT_FULL_NAME = "Sim Driver"
DEFAULT_REGION = "eu"
DEFAULT_VIN = "5YJ3E7EB0KF000001"
DEFAULT_DISPLAY_NAME = "Sim Model 3"
DEFAULT_HOME = Location(lat=52.2297, lon=21.0122)
DEFAULT_WORK = Location(lat=52.1680, lon=20.8120)  # about 15 km south-west of home
DEFAULT_TIMEZONE = "Europe/Warsaw"
DEFAULT_CAR_VERSION = "2025.14.3 1a2b3c4d5e"
DEFAULT_PARTNER_DOMAIN = "sim-partner.example.com"
COMMAND_SIGNING = ("required", "allowed", "off")
UNSIGNED_REJECTIONS = ("forbidden", "hardlocked")

ALL_SCOPES: tuple[str, ...] = (
    "openid",
    "offline_access",
    "user_data",
    "vehicle_device_data",
    "vehicle_location",
    "vehicle_cmds",
    "vehicle_charging_cmds",
)

REGIONS = ("na", "eu", "cn")
TESLA_FLEET_URLS = {
    "na": "https://fleet-api.prd.na.vn.cloud.tesla.com",
    "eu": "https://fleet-api.prd.eu.vn.cloud.tesla.com",
    "cn": "https://fleet-api.prd.cn.vn.cloud.tesla.cn",
}


@dataclass(slots=True)
class RateLimits:
    """Requests allowed per vehicle and category within ``window``."""

    data: int = 60
    command: int = 30
    wake: int = 3
    window: timedelta = timedelta(seconds=60)

    def limit_for(self, category: str) -> int | None:
        """Return the limit of a category, or None when it is not limited."""
        return {"data": self.data, "command": self.command, "wake": self.wake}.get(
            category
        )


@dataclass(slots=True)
class Prices:
    """US dollars per billed request and category."""

    data: float = 0.002
    command: float = 0.001
    wake: float = 0.02
    state_check: float = 0.002  # GET /vehicles[/{vin}], billed like data when enabled

    def price_of(self, category: str) -> float:
        """Return the price of one request of ``category``."""
        return float(getattr(self, category))


@dataclass(slots=True)
class ClientConfig:
    """A registered third-party application."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    redirect_uris: list[str] = field(default_factory=list)  # empty: any is accepted
    scopes: tuple[str, ...] = ALL_SCOPES  # the most the client may be granted
    name: str = "Simulated partner app"
    # Regions where the app starts registered (POST /api/1/partner_accounts done).
    # None: every region that has an account; (): nowhere, so user calls get 412.
    registered_regions: tuple[str, ...] | None = None
    domain: str = DEFAULT_PARTNER_DOMAIN  # the domain of the starting registrations
    allowed_origins: tuple[str, ...] = ()  # registrable root domains; empty: any


def _derived_number(vin: str, salt: str, digits: int) -> int:
    """Derive a stable pseudo-random number of ``digits`` digits from a VIN."""
    digest = hashlib.sha256(f"{salt}:{vin}".encode()).hexdigest()
    low: int = 10 ** (digits - 1)
    return low + int(digest, 16) % (9 * low)


@dataclass(slots=True)
class VehicleConfig:
    """The initial state and fixed properties of one car."""

    vin: str = DEFAULT_VIN
    display_name: str = DEFAULT_DISPLAY_NAME
    id: int | None = None  # None: derived from the VIN
    vehicle_id: int | None = None  # None: derived from the VIN
    home: Location = DEFAULT_HOME
    work: Location = DEFAULT_WORK
    location: Location | None = None  # start position; None: home
    battery_capacity_kwh: float = 75.0
    battery_level: float = 50.0
    charge_limit_soc: int = 80
    charger_kw: float = 11.0
    charger_voltage: int = 230
    charger_phases: int = 3
    charge_current_max: int = 16
    charging_efficiency: float = 0.9
    consumption_kwh_per_km: float = 0.16
    timezone: str = DEFAULT_TIMEZONE
    state: str = "online"
    plugged_in: bool = False
    odometer_km: float = 12345.0
    car_version: str = DEFAULT_CAR_VERSION
    car_type: str = "model3"
    color: str | None = None
    # Vehicle Command Protocol: "required" refuses unsigned REST commands,
    # "allowed" takes both, "off" (pre-2021 S/X) knows only REST commands.
    command_signing: str = "allowed"
    # How a "required" car refuses an unsigned command: "forbidden" (HTTP 403,
    # the server's VCP error) or "hardlocked" (200, unsigned_cmds_hardlocked).
    unsigned_rejection: str = "forbidden"
    # The public key of the app's registered domain is on the car's keychain
    # (signed_command, fleet_status, the proxy); more keys: SimVehicle.pair_key.
    key_paired: bool = False

    def __post_init__(self) -> None:
        """Reject unknown signing settings early."""
        if self.command_signing not in COMMAND_SIGNING:
            raise ValueError(f"command_signing must be one of {COMMAND_SIGNING}")
        if self.unsigned_rejection not in UNSIGNED_REJECTIONS:
            raise ValueError(f"unsigned_rejection must be one of {UNSIGNED_REJECTIONS}")

    @property
    def api_id(self) -> int:
        """Return the "id" field of the vehicle summary."""
        return self.id if self.id is not None else _derived_number(self.vin, "id", 16)

    @property
    def api_vehicle_id(self) -> int:
        """Return the "vehicle_id" field of the vehicle summary."""
        if self.vehicle_id is not None:
            return self.vehicle_id
        return _derived_number(self.vin, "vehicle_id", 10)


@dataclass(slots=True)
class AccountConfig:
    """A Tesla account (the OAuth subject) and its cars."""

    sub: str = DEFAULT_ACCOUNT_SUB
    email: str = DEFAULT_EMAIL
    region: str = DEFAULT_REGION
    full_name: str = DEFAULT_FULL_NAME
    refused_scopes: tuple[str, ...] = ()  # scopes the user unticks at consent
    vehicles: list[VehicleConfig] = field(default_factory=lambda: [VehicleConfig()])

    @property
    def user_id(self) -> int:
        """Return the numeric user id reported in vehicle_data."""
        return _derived_number(self.sub, "user", 12)

    @property
    def ou_code(self) -> str:
        """Return the region as it appears in access tokens ("EU", "NA", "CN")."""
        return self.region.upper()


@dataclass(slots=True)
class SimConfig:
    """Everything that shapes a simulator run.

    ``server_region`` is the region of the server's root URL; every region is
    also served under its own prefix (``/na``, ``/eu``, ``/cn``).
    """

    clients: list[ClientConfig] = field(default_factory=lambda: [ClientConfig()])
    accounts: list[AccountConfig] = field(default_factory=lambda: [AccountConfig()])
    server_region: str = DEFAULT_REGION
    access_token_lifetime: timedelta = timedelta(hours=8)
    refresh_grace: timedelta = timedelta(hours=24)
    refresh_token_lifetime: timedelta = timedelta(days=90)
    auth_code_lifetime: timedelta = timedelta(minutes=10)
    sleep_after: timedelta = timedelta(minutes=15)
    # Whether a vehicle_data read restarts the car's sleep timer. Disputed for
    # post-2021 cars; True is the pessimistic world (every read keeps the car
    # awake for another sleep_after), False lets a polled car fall asleep.
    data_keeps_awake: bool = True
    # After wake_up an asleep car stays asleep for a delay drawn per wake-up from
    # [wake_delay_min, wake_delay_max] (whole seconds, deterministic per seed and
    # VIN); a fixed wake_delay overrides the range (tests that need leniency).
    wake_delay: timedelta | None = None
    wake_delay_min: timedelta = timedelta(seconds=10)
    wake_delay_max: timedelta = timedelta(seconds=30)
    seed: int = 0
    bill_state_checks: bool = True
    bill_unauthorized: bool = True  # whether 401 answers are billed like other < 500
    rate_limits: RateLimits = field(default_factory=RateLimits)
    prices: Prices = field(default_factory=Prices)
    schedule_radius_m: float | None = 1000.0  # None: schedules apply anywhere
    charge_starting_period: timedelta = timedelta(0)  # "Starting" before "Charging"

    def wake_delay_for(self, vin: str, attempt: int) -> timedelta:
        """Return how long wake-up number ``attempt`` of car ``vin`` takes."""
        if self.wake_delay is not None:
            return self.wake_delay
        low = math.ceil(self.wake_delay_min.total_seconds())
        high = max(low, math.floor(self.wake_delay_max.total_seconds()))
        draw = random.Random(f"{self.seed}:{vin}:{attempt}")  # noqa: S311 - not crypto
        return timedelta(seconds=draw.randint(low, high))

    def registered_regions(self, client: ClientConfig) -> tuple[str, ...]:
        """Regions where ``client`` starts registered."""
        if client.registered_regions is not None:
            return client.registered_regions
        return tuple(sorted({a.region for a in self.accounts}))

    def client(self, client_id: str) -> ClientConfig | None:
        """Return the client registered under ``client_id``."""
        return next((c for c in self.clients if c.client_id == client_id), None)

    def account(self, sub: str) -> AccountConfig | None:
        """Return the account with subject ``sub``."""
        return next((a for a in self.accounts if a.sub == sub), None)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimConfig:
        """Build a config from JSON-like data (durations in seconds)."""
        return _build(cls, data)

    @classmethod
    def from_file(cls, path: str | Path) -> SimConfig:
        """Load a config from a JSON file."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _build[T](cls: type[T], data: dict[str, Any]) -> T:
    """Instantiate a config dataclass from a dict, converting nested values."""
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {name: _convert(hints[name], value) for name, value in data.items()}
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    """Convert a JSON value to the type named by ``hint``."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _convert(inner[0], value)
    if origin is list:
        (item,) = get_args(hint)
        return [_convert(item, v) for v in value]
    if origin is tuple:
        return tuple(value)
    if hint is timedelta:
        return timedelta(seconds=float(value))
    if hint is Location:
        return Location(lat=float(value["lat"]), lon=float(value["lon"]))
    if is_dataclass(hint) and isinstance(hint, type):
        return _build(hint, value)
    return value


__all__ = [
    "ALL_SCOPES",
    "AccountConfig",
    "ClientConfig",
    "Prices",
    "RateLimits",
    "SimConfig",
    "VehicleConfig",
]
