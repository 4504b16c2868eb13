"""Run a simulator on a loopback port for tests, benchmarks and demos."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
import ssl
import tempfile

from aiohttp import web

from .proxy import build_proxy_app
from .regions import regional_url
from .server import STATE_KEY, build_app
from .simulator import Simulator
from .tls import CertificateFiles, generate_certificates

DEFAULT_HOST = "127.0.0.1"
SHUTDOWN_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator served over HTTP."""

    sim: Simulator
    host: str
    port: int
    proxy_port: int | None = None
    certificates: CertificateFiles | None = None

    def _origin(self, scheme: str, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{port}"

    @property
    def url(self) -> str:
        """Base URL for auth, Fleet API and admin, e.g. "http://127.0.0.1:8123".

        The Fleet API here is the region of ``SimConfig.server_region``.
        """
        return self._origin("http", self.port)

    def region_url(self, region: str) -> str:
        """Return the Fleet API (and auth) base URL of one region, e.g. ".../na"."""
        return regional_url(self.url, region)

    @property
    def proxy_url(self) -> str:
        """Base URL of the simulated tesla-http-proxy (HTTPS)."""
        if self.proxy_port is None:
            raise RuntimeError("started without proxy=True")
        return self._origin("https", self.proxy_port)

    @property
    def proxy_ca_path(self) -> Path:
        """The CA certificate (PEM) that signed the proxy's certificate."""
        if self.certificates is None:
            raise RuntimeError("started without proxy=True")
        return self.certificates.ca_path

    def proxy_ssl_context(self) -> ssl.SSLContext:
        """Return a client TLS context trusting the proxy's generated CA."""
        if self.certificates is None:
            raise RuntimeError("started without proxy=True")
        return self.certificates.client_context()

    @property
    def authorize_url(self) -> str:
        """The OAuth authorize URL."""
        return f"{self.url}/oauth2/v3/authorize"

    @property
    def token_url(self) -> str:
        """The OAuth token URL."""
        return f"{self.url}/oauth2/v3/token"


async def _serve(
    stack: AsyncExitStack,
    app: web.Application,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        handler_cancellation=True,
    )
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    return int(runner.addresses[0][1])


@asynccontextmanager
async def running_simulator(
    sim: Simulator | None = None,
    host: str = DEFAULT_HOST,
    port: int = 0,
    proxy: bool = False,
    proxy_port: int = 0,
) -> AsyncIterator[RunningSimulator]:
    """Serve ``sim`` (default: a new one) on ``host``:``port`` (0 = a free port).

    ``proxy``: also serve a simulated tesla-http-proxy over HTTPS on
    ``proxy_port``, with a CA and certificate generated for this run.
    """
    sim = sim if sim is not None else Simulator()
    app = build_app(sim)
    async with AsyncExitStack() as stack:

        def _closing() -> None:
            app[STATE_KEY].closing = True
            sim.faults.release_waiters()

        bound = await _serve(stack, app, host, port)
        stack.callback(_closing)
        running = RunningSimulator(sim, host, bound)
        if proxy:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            # Real time, not simulated: TLS peers check the wall clock.
            files = generate_certificates(folder)
            proxy_app = build_proxy_app(sim, running.url)
            bound_proxy = await _serve(
                stack, proxy_app, host, proxy_port, files.server_context()
            )
            running = RunningSimulator(sim, host, bound, bound_proxy, files)
        yield running
