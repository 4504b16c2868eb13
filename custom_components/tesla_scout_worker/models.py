"""Runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass, field

from homeassistant.config_entries import ConfigEntry

from .api import FleetClient
from .charge_control import ChargeControl
from .scout_memory import ScoutMemory
from .session_manager import SessionManager
from .token_manager import TeslaTokenManager
from .usage import ApiUsage
from .vehicle import TeslaVehicle


@dataclass
class TeslaRuntimeData:
    """Everything a loaded config entry owns."""

    account_device_id: str
    tokens: TeslaTokenManager
    client: FleetClient
    usage: ApiUsage
    control: ChargeControl
    sessions: SessionManager
    memory: ScoutMemory
    """What the scout last knew about each car (kept across restarts)."""
    vehicles: dict[str, TeslaVehicle] = field(default_factory=dict)
    """The account's cars by VIN."""


type TeslaConfigEntry = ConfigEntry[TeslaRuntimeData]
