"""Small geographic helpers (spherical earth)."""

from __future__ import annotations

from dataclasses import dataclass
import math

EARTH_RADIUS_KM = 6371.0088
KM_PER_MILE = 1.609344


@dataclass(frozen=True, slots=True)
class Location:
    """A point on earth in decimal degrees."""

    lat: float
    lon: float


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance between two points (haversine)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = (
        math.sin(dlat / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def bearing_deg(a: Location, b: Location) -> int:
    """Return the initial compass bearing from ``a`` to ``b`` (0..359)."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlon = math.radians(b.lon - a.lon)
    x = math.sin(dlon) * math.cos(lat2)
    y = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(
        dlon
    )
    return round(math.degrees(math.atan2(x, y))) % 360


def interpolate(a: Location, b: Location, fraction: float) -> Location:
    """Linear interpolation between two points (fine for city distances)."""
    fraction = min(max(fraction, 0.0), 1.0)
    return Location(
        a.lat + (b.lat - a.lat) * fraction, a.lon + (b.lon - a.lon) * fraction
    )
