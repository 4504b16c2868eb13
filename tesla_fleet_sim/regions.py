"""Regional base URLs: one simulator serves every region under its own prefix.

``http://127.0.0.1:8765/eu`` and ``http://127.0.0.1:8765/na`` are the
simulator's Fleet API (and auth) for Europe and North America; the root URL
is the region of ``SimConfig.server_region``. Point a client's server URL
at one region and an account that lives in the other gets 421.
"""

from __future__ import annotations

from yarl import URL

from .config import REGIONS, TESLA_FLEET_URLS


def regional_url(origin: str, region: str) -> str:
    """Return the simulator's base URL of ``region`` (``origin`` has no path)."""
    return f"{origin.rstrip('/')}/{region}"


def split_region(path: str) -> tuple[str | None, str]:
    """Split ``/eu/api/1/...`` into ("eu", "/api/1/..."); no prefix: (None, path)."""
    head, _, rest = path.lstrip("/").partition("/")
    if head in REGIONS:
        return head, "/" + rest
    return None, path


def audience_region(audience: str, root_region: str) -> str | None:
    """Return the region a partner token's ``audience`` names, or None.

    Tesla's own base URLs and the simulator's (root or regional, any host)
    are understood.
    """
    text = audience.strip().rstrip("/")
    for region, url in TESLA_FLEET_URLS.items():
        if text == url:
            return region
    parsed = URL(text)
    if not parsed.is_absolute() or parsed.scheme not in ("http", "https"):
        return None
    path = parsed.path.strip("/")
    if not path:
        return root_region
    return path if path in REGIONS else None
