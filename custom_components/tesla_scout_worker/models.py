"""Runtime data of a config entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from homeassistant.config_entries import ConfigEntry

from .api import FleetClient
from .token_manager import TeslaTokenManager
from .usage import ApiUsage


@dataclass
class TeslaRuntimeData:
    """Everything a loaded config entry owns."""

    tokens: TeslaTokenManager
    client: FleetClient
    usage: ApiUsage
    vehicles: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


type TeslaConfigEntry = ConfigEntry[TeslaRuntimeData]
