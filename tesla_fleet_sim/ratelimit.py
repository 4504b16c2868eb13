"""Sliding-window rate limits per vehicle and category, in simulated time."""

from __future__ import annotations

from collections import deque
from datetime import datetime
import math

from .config import SimConfig


class RateLimiter:
    """Counts accepted requests per (vin, category) over the last window."""

    def __init__(self, config: SimConfig) -> None:
        """Use the limits of ``config`` (read live, so tests may change them)."""
        self._config = config
        self._seen: dict[tuple[str, str], deque[datetime]] = {}

    def check(self, vin: str, category: str, now: datetime) -> int | None:
        """Admit a request (None) or return the seconds to wait before retrying."""
        limits = self._config.rate_limits
        limit = limits.limit_for(category)
        if limit is None:
            return None
        window = limits.window
        seen = self._seen.setdefault((vin, category), deque())
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= limit:
            oldest = seen[0] if seen else now  # a limit of 0 blocks everything
            wait = (oldest + window - now).total_seconds()
            return max(1, math.ceil(wait))
        seen.append(now)
        return None

    def reset(self) -> None:
        """Forget all counted requests."""
        self._seen.clear()
