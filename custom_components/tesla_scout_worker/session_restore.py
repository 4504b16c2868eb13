"""When a session cannot put the car back: say what is left, offer to restore.

A session that fails says so in a repair issue. When its cleanup gave up with
something still changed on the car (the charge limit, its charge schedule),
the issue names exactly that and is fixable: its repair flow ("Restore now")
runs the cleanup once more. Pure helpers here; the flow is in repairs.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .sessions import LEFTOVER_LIMIT, LEFTOVER_SCHEDULE, ChargingSession

ISSUE_SESSION_FAILED: Final = "session_failed"
ISSUE_RESTORE: Final = "session_restore"
CLEANUP_RETRY_DELAYS: Final = (
    timedelta(minutes=5),
    timedelta(minutes=10),
    timedelta(minutes=20),
    timedelta(minutes=40),
    timedelta(minutes=60),
)
"""Waits between cleanup attempts; the last one repeats. Each attempt wakes
the car (a billed wake-up), so a car that keeps refusing is asked less often."""
CLEANUP_GIVE_UP_AFTER: Final = timedelta(hours=6)


def cleanup_retry_at(session: ChargingSession, now: datetime) -> datetime | None:
    """Return when to try the cleanup again, None when it is time to give up.

    Counts the failed attempt (``session.cleanup_attempts``).
    """
    session.cleanup_attempts += 1
    delay = CLEANUP_RETRY_DELAYS[
        min(session.cleanup_attempts, len(CLEANUP_RETRY_DELAYS)) - 1
    ]
    started = session.cleanup_started_at or now
    retry_at = now + delay
    return None if retry_at - started > CLEANUP_GIVE_UP_AFTER else retry_at


def issue_id(session: ChargingSession) -> str:
    """Return the repair issue id of a session."""
    return f"{ISSUE_SESSION_FAILED}_{session.id}"


def _local(moment: datetime, fmt: str) -> str:
    return dt_util.as_local(moment).strftime(fmt)


@callback
def async_raise_failed_issue(
    hass: HomeAssistant, entry_id: str, session: ChargingSession
) -> None:
    """Raise the session's repair issue: what failed, and what is left."""
    start = session.plan.start or session.ready_by
    end = session.plan.end or session.ready_by
    left = session.leftovers
    placeholders = {
        "vehicle": session.vehicle_name,
        "start": _local(start, "%Y-%m-%d %H:%M"),
        "window": f"{_local(start, '%H:%M')}-{_local(end, '%H:%M')}",
        "limit_now": str(session.target_soc),
        "limit_before": str(session.original_limit or "-"),
    }
    if not left:
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id(session),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=f"{ISSUE_SESSION_FAILED}_{session.reason}",
            translation_placeholders=placeholders,
        )
        return
    kind = (
        "both"
        if left == (LEFTOVER_LIMIT, LEFTOVER_SCHEDULE)
        else left[0]  # "limit" or "schedule"
    )
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(session),
        is_fixable=True,
        is_persistent=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key=f"{ISSUE_RESTORE}_{kind}",
        translation_placeholders=placeholders,
        data={"entry_id": entry_id, "session_id": session.id},
    )


@callback
def async_clear_issue(hass: HomeAssistant, session: ChargingSession) -> None:
    """Delete the session's repair issue."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(session))
