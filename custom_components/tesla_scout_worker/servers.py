"""Which Fleet API server an account's requests go to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yarl import URL

from .const import (
    CONF_FLEET_API_URL,
    CONF_REGION,
    CONF_SERVER_URL,
    FLEET_API_SERVERS,
    TESLA_API_HOST_SUFFIXES,
)


def is_tesla_url(url: str) -> bool:
    """Return True for an https URL on one of Tesla's API hosts."""
    try:
        parsed = URL(url)
    except ValueError:
        return False
    host = parsed.host or ""
    return parsed.scheme == "https" and host.endswith(TESLA_API_HOST_SUFFIXES)


def regional_server(named: str, override: str | None) -> str | None:
    """Return the base URL to use for the base URL Tesla named (users/region).

    Without a server override only Tesla's own https hosts are followed. With
    one (e.g. the simulator) its origin is kept and the path Tesla named is
    followed, so requests never leave the server the user chose. None when
    ``named`` cannot be used.
    """
    try:
        url = URL(named)
    except ValueError:
        return None
    if override is None:
        return str(url).rstrip("/") if is_tesla_url(named) else None
    if not url.is_absolute():
        return None
    origin = URL(override).origin()
    return str(origin.with_path(url.path)).rstrip("/")


def server_for(data: Mapping[str, Any]) -> str:
    """Return the Fleet API base URL for a config entry's data.

    The base URL Tesla named after a 421 (users/region) wins; with a server
    override only its path is followed. Otherwise the override, or Tesla's
    server of the entry's region.
    """
    override = data.get(CONF_SERVER_URL)
    override = str(override).rstrip("/") if override else None
    if (named := data.get(CONF_FLEET_API_URL)) and (
        server := regional_server(str(named), override)
    ):
        return server
    if override:
        return override
    return FLEET_API_SERVERS.get(data.get(CONF_REGION, "na"), FLEET_API_SERVERS["na"])
