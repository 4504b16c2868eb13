"""Special charging sessions: the session model, its state machine and storage.

A session is one planned charge of one car to a target state of charge by a
ready-by time. Its life::

    SCHEDULED -> SENDING -> ACTIVE -> CLEANING -> COMPLETED
        |           |                    |-> CANCELLED / FAILED
        |           |-> FAILED  (nothing was changed on the car yet)
        |           |-> CLEANING (undo what was changed, then CANCELLED/FAILED)
        |-> CANCELLED / FAILED

Every transition is written to disk before the side effect it guards, so a
restart resumes from the state the car may be in. The VIN is stored (the car
must be addressed after a restart) but never appears in ``public_dict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .charging_needs import ChargingNeed
from .charging_plan import (
    ERROR_INVALID_STORED_PLAN,
    ChargingPlan,
)
from .const import DOMAIN
from .prices import PlanInputError

STORAGE_VERSION: Final = 1
MAX_FINISHED_SESSIONS: Final = 20
MAX_PLANNED_NEEDS: Final = 200


class SessionState(StrEnum):
    """Where a special charging session is in its life."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    ACTIVE = "active"
    CLEANING = "cleaning"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


TRANSITIONS: Final[dict[SessionState, frozenset[SessionState]]] = {
    SessionState.SCHEDULED: frozenset(
        {SessionState.SENDING, SessionState.CANCELLED, SessionState.FAILED}
    ),
    SessionState.SENDING: frozenset(
        {SessionState.ACTIVE, SessionState.CLEANING, SessionState.FAILED}
    ),
    SessionState.ACTIVE: frozenset({SessionState.CLEANING}),
    SessionState.CLEANING: frozenset(
        {SessionState.COMPLETED, SessionState.CANCELLED, SessionState.FAILED}
    ),
    SessionState.COMPLETED: frozenset(),
    SessionState.CANCELLED: frozenset(),
    SessionState.FAILED: frozenset(),
}

ACTIVE_STATES: Final = frozenset(
    {SessionState.SENDING, SessionState.ACTIVE, SessionState.CLEANING}
)
"""The car belongs to the session: the scout keeps its hands off."""

OPEN_STATES: Final = ACTIVE_STATES | {SessionState.SCHEDULED}
FINAL_STATES: Final = frozenset(TRANSITIONS) - OPEN_STATES
CLEANUP_OUTCOMES: Final = frozenset(
    {SessionState.COMPLETED, SessionState.CANCELLED, SessionState.FAILED}
)

# Reasons given with CANCELLED and FAILED (also in events and repair issues).
REASON_CANCELLED: Final = "cancelled"
REASON_REPLACED: Final = "replaced"
REASON_MISSED: Final = "missed"
REASON_SEND_DEADLINE: Final = "send_deadline"
REASON_COMMAND_REFUSED: Final = "command_refused"
REASON_CLEANUP_DEADLINE: Final = "cleanup_deadline"
REASON_CLEANUP_REFUSED: Final = "cleanup_refused"
REASON_KEY_NOT_PAIRED: Final = "key_not_paired"  # the car refuses the signing key
REASON_SIGNING_REQUIRED: Final = "signing_required"


LEFTOVER_LIMIT: Final = "limit"
LEFTOVER_SCHEDULE: Final = "schedule"


class InvalidTransitionError(RuntimeError):
    """A state change the state machine does not allow."""


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass(kw_only=True, slots=True)
class ChargingSession:
    """One special charging session."""

    id: str
    vin: str
    vehicle_name: str
    target_soc: int
    ready_by: datetime
    plan: ChargingPlan
    created_at: datetime
    state: SessionState = SessionState.SCHEDULED
    reason: str | None = None
    source: str = "action"
    need_key: str | None = None
    # What the send changed on the car, recorded before it was changed.
    original_limit: int | None = None
    original_legacy: dict[str, Any] | None = None
    limit_set: bool = False
    schedule_pending: bool = False
    # The schedule ids on the car before this session added its own: a
    # schedule among them is the driver's, never this session's.
    schedule_not_ours: list[int] | None = None
    schedule_id: int | None = None
    legacy: bool = False
    send_refusals: int = 0
    # What the cleanup has put back so far (a failed cleanup names the rest).
    cleanup_attempts: int = 0
    limit_restored: bool = False
    schedule_removed: bool = False
    # The state CLEANING ends in, and why.
    outcome: SessionState | None = None
    outcome_reason: str | None = None
    send_started_at: datetime | None = None
    sent_at: datetime | None = None
    cleanup_started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """Whether the session still has something to do."""
        return self.state in OPEN_STATES

    @property
    def is_active(self) -> bool:
        """Whether the session owns the car right now."""
        return self.state in ACTIVE_STATES

    @property
    def changed_car(self) -> bool:
        """Whether the send may have changed anything on the car."""
        return (
            self.limit_set
            or self.schedule_pending
            or self.schedule_id is not None
            or self.legacy
        )

    @property
    def leftovers(self) -> tuple[str, ...]:
        """What the session changed on the car and has not put back.

        ``limit`` (the charge limit) and ``schedule`` (its one-time charge
        schedule, or the older scheduled charging time).
        """
        left: list[str] = []
        if (
            self.limit_set
            and self.original_limit is not None
            and not self.limit_restored
        ):
            left.append(LEFTOVER_LIMIT)
        if (
            self.schedule_id is not None or self.schedule_pending or self.legacy
        ) and not self.schedule_removed:
            left.append(LEFTOVER_SCHEDULE)
        return tuple(left)

    @property
    def soc_age_hours(self) -> float | None:
        """How old the planned-from charge level was when planned, in hours."""
        as_of = self.plan.soc_as_of
        if as_of is None:
            return None
        return round(max(0.0, (self.created_at - as_of).total_seconds()) / 3600, 1)

    def transition(
        self, state: SessionState, now: datetime, reason: str | None = None
    ) -> None:
        """Move to ``state``; raise InvalidTransitionError when not allowed."""
        if state not in TRANSITIONS[self.state]:
            raise InvalidTransitionError(f"{self.state} -> {state}")
        self.state = state
        if reason is not None or state in FINAL_STATES:
            self.reason = reason
        self.updated_at = now
        if state in FINAL_STATES:
            self.finished_at = now
        self.history.append({"state": str(state), "at": now.isoformat()})

    def as_dict(self) -> dict[str, Any]:
        """Return everything to persist (with the VIN)."""
        return {
            "id": self.id,
            "vin": self.vin,
            "vehicle_name": self.vehicle_name,
            "target_soc": self.target_soc,
            "ready_by": self.ready_by.isoformat(),
            "plan": self.plan.as_dict(),
            "created_at": self.created_at.isoformat(),
            "state": str(self.state),
            "reason": self.reason,
            "source": self.source,
            "need_key": self.need_key,
            "original_limit": self.original_limit,
            "original_legacy": self.original_legacy,
            "limit_set": self.limit_set,
            "schedule_pending": self.schedule_pending,
            "schedule_not_ours": self.schedule_not_ours,
            "schedule_id": self.schedule_id,
            "legacy": self.legacy,
            "send_refusals": self.send_refusals,
            "cleanup_attempts": self.cleanup_attempts,
            "limit_restored": self.limit_restored,
            "schedule_removed": self.schedule_removed,
            "outcome": None if self.outcome is None else str(self.outcome),
            "outcome_reason": self.outcome_reason,
            "send_started_at": _iso(self.send_started_at),
            "sent_at": _iso(self.sent_at),
            "cleanup_started_at": _iso(self.cleanup_started_at),
            "finished_at": _iso(self.finished_at),
            "updated_at": _iso(self.updated_at),
            "history": list(self.history),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChargingSession:
        """Rebuild a session from ``as_dict`` output."""
        outcome = data.get("outcome")
        created_at = _parse(data["created_at"])
        ready_by = _parse(data["ready_by"])
        if created_at is None or ready_by is None:
            raise PlanInputError(ERROR_INVALID_STORED_PLAN, "session without times")
        return cls(
            id=str(data["id"]),
            vin=str(data["vin"]),
            vehicle_name=str(data.get("vehicle_name") or ""),
            target_soc=int(data["target_soc"]),
            ready_by=ready_by,
            plan=ChargingPlan.from_dict(data["plan"]),
            created_at=created_at,
            state=SessionState(data["state"]),
            reason=data.get("reason"),
            source=str(data.get("source") or "action"),
            need_key=data.get("need_key"),
            original_limit=data.get("original_limit"),
            original_legacy=data.get("original_legacy"),
            limit_set=bool(data.get("limit_set")),
            schedule_pending=bool(data.get("schedule_pending")),
            schedule_not_ours=data.get("schedule_not_ours"),
            schedule_id=data.get("schedule_id"),
            legacy=bool(data.get("legacy")),
            send_refusals=int(data.get("send_refusals") or 0),
            cleanup_attempts=int(data.get("cleanup_attempts") or 0),
            limit_restored=bool(data.get("limit_restored")),
            schedule_removed=bool(data.get("schedule_removed")),
            outcome=None if outcome is None else SessionState(outcome),
            outcome_reason=data.get("outcome_reason"),
            send_started_at=_parse(data.get("send_started_at")),
            sent_at=_parse(data.get("sent_at")),
            cleanup_started_at=_parse(data.get("cleanup_started_at")),
            finished_at=_parse(data.get("finished_at")),
            updated_at=_parse(data.get("updated_at")),
            history=list(data.get("history") or []),
        )

    def public_dict(self, device_id: str | None = None) -> dict[str, Any]:
        """Return the session for actions and attributes: no VIN."""
        plan = self.plan
        return {
            "session_id": self.id,
            "vehicle": self.vehicle_name,
            "device_id": device_id,
            "state": str(self.state),
            "reason": self.reason,
            "source": self.source,
            "target_soc": self.target_soc,
            "ready_by": self.ready_by.isoformat(),
            "send_at": _iso(plan.send_at),
            "start": _iso(plan.start),
            "end": _iso(plan.end),
            "cleanup_at": _iso(plan.cleanup_at),
            "expected_cost": plan.expected_cost,
            "expected_soc": plan.expected_soc,
            "soc_seen": plan.soc_seen,
            "soc_used": plan.soc_used,
            "soc_as_of": _iso(plan.soc_as_of),
            "soc_age_hours": self.soc_age_hours,
            "reachable": plan.reachable,
            "mode": plan.mode,
            "original_limit": self.original_limit,
            "legacy_schedule": self.legacy,
            "created_at": self.created_at.isoformat(),
            "sent_at": _iso(self.sent_at),
            "finished_at": _iso(self.finished_at),
        }


class SessionStore:
    """Sessions, the queue and planned needs of one config entry on disk."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Initialize the store (key ``tesla_scout_worker.sessions.<entry>``)."""
        self._store = Store[dict[str, Any]](
            hass, STORAGE_VERSION, f"{DOMAIN}.sessions.{entry_id}"
        )
        self.sessions: dict[str, ChargingSession] = {}
        self.queue: list[ChargingNeed] = []
        self.planned_needs: list[str] = []

    async def async_load(self) -> None:
        """Load what was saved; unreadable sessions are dropped."""
        data = await self._store.async_load() or {}
        self.sessions = {}
        for raw in data.get("sessions") or []:
            try:
                session = ChargingSession.from_dict(raw)
            except KeyError, TypeError, ValueError:
                continue
            self.sessions[session.id] = session
        self.queue = []
        for raw in data.get("queue") or []:
            try:
                self.queue.append(ChargingNeed.from_dict(raw))
            except KeyError, TypeError, ValueError:
                continue
        self.planned_needs = [str(key) for key in data.get("planned_needs") or []]

    async def async_save(self) -> None:
        """Write everything now (not delayed): a transition guards a side effect."""
        self._prune()
        await self._store.async_save(
            {
                "sessions": [s.as_dict() for s in self.sessions.values()],
                "queue": [need.as_dict() for need in self.queue],
                "planned_needs": list(self.planned_needs),
            }
        )

    async def async_remove(self) -> None:
        """Delete the stored data."""
        await self._store.async_remove()

    def _prune(self) -> None:
        """Keep all open sessions and the most recent finished ones."""
        finished = sorted(
            (s for s in self.sessions.values() if not s.is_open),
            key=lambda s: s.finished_at or s.created_at,
            reverse=True,
        )
        for session in finished[MAX_FINISHED_SESSIONS:]:
            del self.sessions[session.id]
        del self.planned_needs[:-MAX_PLANNED_NEEDS]
