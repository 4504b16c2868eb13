"""Runtime data of a config entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry

from .api import FleetClient
from .token_manager import TeslaTokenManager
from .usage import ApiUsage

if TYPE_CHECKING:
    from .coordinator import VehicleCoordinator
    from .session_manager import SessionManager


def _no_session(_vin: str) -> bool:
    """Return False: no special charging session manager is plugged in."""
    return False


@dataclass
class TeslaRuntimeData:
    """Everything a loaded config entry owns."""

    account_device_id: str
    tokens: TeslaTokenManager
    client: FleetClient
    usage: ApiUsage
    vehicles: list[dict[str, Any]] = field(default_factory=list)
    coordinators: dict[str, VehicleCoordinator] = field(default_factory=dict)
    # Whether a special charging session owns the car (VIN); the scout skips
    # its off-peak action then. The session manager replaces this hook.
    session_active: Callable[[str], bool] = _no_session
    sessions: SessionManager | None = None


type TeslaConfigEntry = ConfigEntry[TeslaRuntimeData]
