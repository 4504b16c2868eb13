"""Shared fixtures."""

from __future__ import annotations

# Import our package before HA's harness mounts its own custom_components.
import custom_components.tesla_scout_worker  # noqa: F401
