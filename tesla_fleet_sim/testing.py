"""Run a simulator on a loopback port for tests, benchmarks and demos."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from .server import STATE_KEY, build_app
from .simulator import Simulator

DEFAULT_HOST = "127.0.0.1"
SHUTDOWN_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator served over HTTP."""

    sim: Simulator
    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL for auth, Fleet API and admin, e.g. "http://127.0.0.1:8123"."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def authorize_url(self) -> str:
        """The OAuth authorize URL."""
        return f"{self.url}/oauth2/v3/authorize"

    @property
    def token_url(self) -> str:
        """The OAuth token URL."""
        return f"{self.url}/oauth2/v3/token"


@asynccontextmanager
async def running_simulator(
    sim: Simulator | None = None, host: str = DEFAULT_HOST, port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Serve ``sim`` (default: a new one) on ``host``:``port`` (0 = a free port)."""
    sim = sim if sim is not None else Simulator()
    app = build_app(sim)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        handler_cancellation=True,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        yield RunningSimulator(sim, host, bound_port)
    finally:
        app[STATE_KEY].closing = True
        sim.faults.release_waiters()
        await runner.cleanup()
