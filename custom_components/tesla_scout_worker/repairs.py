"""Repair flows: put back what a failed special charging session left on a car."""

from __future__ import annotations

from typing import Any

import probatio

from homeassistant.components.repairs import RepairsFlow, RepairsFlowResult
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .models import TeslaConfigEntry


class RestoreCarFlow(RepairsFlow):
    """Restore now: run the session's cleanup once more."""

    def __init__(self, entry_id: str, session_id: str) -> None:
        """Initialize for one session."""
        self._entry_id = entry_id
        self._session_id = session_id

    async def async_step_init(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Start with the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Ask, then wake the car and put its limit and schedule back."""
        if user_input is None:
            return self.async_show_form(
                step_id="confirm",
                data_schema=probatio.Schema({}),
                description_placeholders=self._placeholders(),
            )
        entry: TeslaConfigEntry | None = self.hass.config_entries.async_get_entry(
            self._entry_id
        )
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        try:
            await entry.runtime_data.sessions.async_restore(self._session_id)
        except HomeAssistantError as err:
            return self.async_abort(
                reason="restore_failed", description_placeholders={"error": str(err)}
            )
        return self.async_create_entry(data={})

    def _placeholders(self) -> dict[str, str]:
        """Return the issue's placeholders (the car, what is left)."""
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        if issue is None or issue.translation_placeholders is None:
            return {}
        return dict(issue.translation_placeholders)


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, Any] | None
) -> RepairsFlow:
    """Create the repair flow of a fixable issue."""
    data = data or {}
    return RestoreCarFlow(str(data.get("entry_id")), str(data.get("session_id")))
