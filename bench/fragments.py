"""Scenario results on disk, and a wall clock; no Home Assistant imports.

Each scenario (or month policy) writes one ``bench/<name>.json.tmp``
(git-ignored); ``bench/report.py`` merges them into ``bench/results.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
import time
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent


def wall_clock() -> float:
    """Real seconds (a clock freezegun does not freeze)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def fragment_path(name: str) -> Path:
    """Where a scenario leaves its result for the report."""
    return BENCH_DIR / f"{name}.json.tmp"


def write_fragment(name: str, data: dict[str, Any]) -> None:
    """Save one scenario's (or one policy's) result."""
    fragment_path(name).write_text(
        json.dumps(data, indent=2, sort_keys=True, default=str) + "\n",
        encoding="utf-8",
    )


def read_fragment(name: str) -> dict[str, Any] | None:
    """Load a saved result, None when the scenario did not run."""
    path = fragment_path(name)
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
