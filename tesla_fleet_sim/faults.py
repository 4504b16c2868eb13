"""Faults that tests switch on to see how a client copes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class InjectedFailure:
    """Answer the next ``remaining`` requests whose path contains a substring."""

    path_substring: str
    status: int
    remaining: int
    body: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the failure as JSON-friendly data."""
        return {
            "path_substring": self.path_substring,
            "status": self.status,
            "remaining": self.remaining,
            "body": self.body,
        }


SETTABLE = ("token_endpoint_status", "token_endpoint_hang", "api_status", "latency")


@dataclass(slots=True)
class Faults:
    """Switchable faults; change the fields at any time.

    ``token_endpoint_hang`` makes token requests wait (without a timer, so a
    frozen test clock cannot stall them) until it is cleared or the server stops.
    """

    token_endpoint_status: int | None = None  # every token request gets this status
    api_status: int | None = None  # every /api/1 request gets this status
    latency: float = 0.0  # real seconds added to every response
    injected: list[InjectedFailure] = field(default_factory=list)
    _hang: bool = False
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)

    @property
    def token_endpoint_hang(self) -> bool:
        """Return whether token requests hang."""
        return self._hang

    @token_endpoint_hang.setter
    def token_endpoint_hang(self, value: bool) -> None:
        self._hang = bool(value)
        if not self._hang:
            self.release_waiters()

    async def wait_while_hanging(self) -> None:
        """Return once the hang is cleared (or the waiters are released)."""
        if not self._hang:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def release_waiters(self) -> None:
        """Wake every request waiting on a hang."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def fail_next(
        self,
        path_substring: str,
        status: int,
        count: int = 1,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail with ``status``."""
        if count < 1:
            raise ValueError("count must be at least 1")
        self.injected.append(InjectedFailure(path_substring, status, count, body))

    def take(self, path: str) -> InjectedFailure | None:
        """Consume and return the first injected failure matching ``path``."""
        for failure in self.injected:
            if failure.path_substring in path:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self.injected.remove(failure)
                return failure
        return None

    def clear(self) -> None:
        """Switch every fault off."""
        self.token_endpoint_status = None
        self.token_endpoint_hang = False  # also wakes waiting requests
        self.api_status = None
        self.latency = 0.0
        self.injected.clear()

    def update(self, data: Mapping[str, Any]) -> None:
        """Apply admin input: settable fields, "fail_next" and "clear"."""
        if data.get("clear"):
            self.clear()
        for name in SETTABLE:
            if name in data:
                setattr(self, name, data[name])
        spec = data.get("fail_next")
        if spec:
            self.fail_next(
                str(spec["path"]),
                int(spec["status"]),
                int(spec.get("count", 1)),
                spec.get("body"),
            )

    def as_dict(self) -> dict[str, Any]:
        """Return the faults as JSON-friendly data."""
        return {
            "token_endpoint_status": self.token_endpoint_status,
            "token_endpoint_hang": self.token_endpoint_hang,
            "api_status": self.api_status,
            "latency": self.latency,
            "injected": [f.as_dict() for f in self.injected],
        }
