"""Start the simulator and a real Home Assistant for the demo and the browser test.

``scripts/develop`` runs this module; the browser test (``tests_e2e``) uses
:class:`Demo` to start the same thing on free ports.

Home Assistant gets a fresh configuration folder every run (``.demo/config``,
from ``demo/config``), with this integration linked from the working tree.
Its HTTP server (loopback, the chosen port) is written to storage as a
confirmed configuration: since 2026.11 an ``http:`` block in
configuration.yaml is only a trial that Home Assistant reverts after five
minutes (to port 8123 on all interfaces) unless someone confirms it.
Onboarding is finished through Home Assistant's own onboarding API (the owner
account is created exactly as the onboarding page creates it); the steps that
would set up unrelated integrations (weather, radio) are marked done
beforehand. Through the websocket API application credentials for the
simulator's client are added.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
from types import FrameType, TracebackType
from typing import Any, Self
import urllib.error
import urllib.request

import aiohttp

from demo.simulator import DEFAULT_PROFILE, Profile

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = REPO / "demo" / "config"
INTEGRATION_DIR = REPO / "custom_components" / "tesla_scout_worker"
DOMAIN = "tesla_scout_worker"

USERNAME = "demo"
PASSWORD = "demo"  # the demo listens on loopback only
USER_NAME = "Demo User"
CREDENTIAL_NAME = "Fleet API simulator"
DASHBOARD_PATH = "/tesla-demo/tesla"

# Onboarding steps marked done before the start. "core_config" would set up
# met, radio_browser, google_translate and shopping_list (network, extra
# packages), "analytics" and "integration" only matter on the onboarding page.
# The remaining "user" step is done through the API after the start.
PRESET_ONBOARDING_STEPS = ("core_config", "analytics", "integration")
ONBOARDING_STORE_VERSION = 4

# Home Assistant's HTTP configuration store (homeassistant/components/http/
# config.py, version 3.1): a confirmed ("stable") configuration, nothing on
# trial, and the YAML migration marked done so configuration.yaml needs no
# `http:` block. Later versions of the store are migrated by Home Assistant.
HTTP_STORE_VERSION = (3, 1)
HTTP_HOST = "127.0.0.1"

START_TIMEOUT = 300.0
STOP_TIMEOUT = 60.0


class DemoError(RuntimeError):
    """The demo could not be started."""


@dataclass(slots=True)
class DemoSettings:
    """Where and how to run the demo."""

    state_dir: Path = REPO / ".demo"
    ha_port: int = 8123
    sim_port: int = 8765
    profile: Path = DEFAULT_PROFILE
    with_day: bool = True
    python: str = sys.executable
    extra_env: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Demo:
    """The simulator and Home Assistant as child processes on loopback."""

    def __init__(self, settings: DemoSettings | None = None) -> None:
        """Prepare; nothing runs before :meth:`start`."""
        self.settings = settings or DemoSettings()
        self.profile = Profile.load(self.settings.profile)
        self.config_dir = self.settings.state_dir / "config"
        self.sim_log = self.settings.state_dir / "simulator.log"
        self.ha_log = self.settings.state_dir / "home-assistant.out"
        self.token: str | None = None  # a long-lived access token of the owner
        self._sim: subprocess.Popen[bytes] | None = None
        self._ha: subprocess.Popen[bytes] | None = None

    # --- addresses ----------------------------------------------------------

    @property
    def ha_url(self) -> str:
        """Home Assistant's base URL."""
        return f"http://127.0.0.1:{self.settings.ha_port}"

    @property
    def sim_url(self) -> str:
        """The simulator's base URL: the server URL to enter in the config flow."""
        return f"http://127.0.0.1:{self.settings.sim_port}"

    @property
    def client(self) -> tuple[str, str]:
        """The simulator's client id and secret (the first registered client)."""
        client = self.profile.config.clients[0]
        return client.client_id, client.client_secret

    # --- lifecycle ------------------------------------------------------------

    def __enter__(self) -> Self:
        """Start everything."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop everything."""
        self.stop()

    def start(self) -> None:
        """Write the config, start both servers and prepare Home Assistant."""
        for name, port in (
            ("Home Assistant", self.settings.ha_port),
            ("simulator", self.settings.sim_port),
        ):
            if _port_in_use(port):
                raise DemoError(
                    f"port {port} for the {name} is in use (another demo still"
                    " running?); choose another with --port / --sim-port"
                )
        self.write_config()
        try:
            self._start_simulator()
            self._start_home_assistant()
            # In a thread of its own: the caller may run an event loop (the
            # browser test's Playwright does).
            with ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, self._prepare_home_assistant()).result()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop Home Assistant (gracefully) and the simulator."""
        for proc in (self._ha, self._sim):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._ha = self._sim = None

    def exited(self) -> Iterator[str]:
        """Yield the names of child processes that have exited."""
        for name, proc in (("Home Assistant", self._ha), ("simulator", self._sim)):
            if proc is not None and proc.poll() is not None:
                yield name

    # --- configuration ----------------------------------------------------------

    def write_config(self) -> None:
        """Write a fresh Home Assistant configuration folder from the template."""
        state_dir = self.settings.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        if self.config_dir.exists():
            shutil.rmtree(self.config_dir)
        shutil.copytree(TEMPLATE_DIR, self.config_dir)
        vehicle = self.profile.config.accounts[0].vehicles[0]
        config_file = self.config_dir / "configuration.yaml"
        config_file.write_text(
            string.Template(config_file.read_text(encoding="utf-8")).substitute(
                ha_port=self.settings.ha_port,
                latitude=vehicle.home.lat,
                longitude=vehicle.home.lon,
                time_zone=vehicle.timezone,
            ),
            encoding="utf-8",
        )
        custom = self.config_dir / "custom_components"
        custom.mkdir()
        (custom / DOMAIN).symlink_to(INTEGRATION_DIR, target_is_directory=True)
        storage = self.config_dir / ".storage"
        storage.mkdir()
        onboarding = {
            "version": ONBOARDING_STORE_VERSION,
            "minor_version": 1,
            "key": "onboarding",
            "data": {"done": list(PRESET_ONBOARDING_STEPS)},
        }
        (storage / "onboarding").write_text(json.dumps(onboarding), encoding="utf-8")
        (storage / "http").write_text(
            json.dumps(http_store(self.settings.ha_port)), encoding="utf-8"
        )

    # --- processes --------------------------------------------------------------

    def _spawn(self, args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.settings.extra_env, "PYTHONUNBUFFERED": "1"}
        with log.open("wb") as out:
            return subprocess.Popen(
                args,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the launcher, which stops them
            )

    def _start_simulator(self) -> None:
        args = [
            self.settings.python,
            "-m",
            "demo.simulator",
            "--port",
            str(self.settings.sim_port),
            "--profile",
            str(self.settings.profile),
        ]
        if not self.settings.with_day:
            args.append("--no-day")
        self._sim = self._spawn(args, REPO, self.sim_log)
        self._wait_http(f"{self.sim_url}/_sim/state", self._sim, self.sim_log, 30)

    def _start_home_assistant(self) -> None:
        args = [
            self.settings.python,
            "-m",
            "homeassistant",
            "--config",
            str(self.config_dir),
            # Everything it needs is installed by scripts/setup; never pip here.
            "--skip-pip",
        ]
        # The working directory keeps the repository's own custom_components
        # package off sys.path: Home Assistant finds the integration through
        # the config folder's link, as it would in a user's installation.
        self._ha = self._spawn(args, self.config_dir, self.ha_log)
        # The onboarding status answers as soon as the frontend is served, and
        # only until onboarding is done (404 after that): with the fresh
        # configuration the owner is still to be created.
        url = f"{self.ha_url}/api/onboarding"
        status = self._wait_http(url, self._ha, self.ha_log, START_TIMEOUT)
        if status != 200:
            raise DemoError(
                f"{url} answered {status}: onboarding is not pending in the"
                f" fresh configuration {self.config_dir}:\n{_tail(self.ha_log)}"
            )

    @staticmethod
    def _wait_http(
        url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float
    ) -> int:
        """Wait until ``url`` answers; return its HTTP status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise DemoError(
                    f"{proc.args!r} exited with {proc.returncode}:\n{_tail(log)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
                    return int(resp.status)
            except urllib.error.HTTPError as err:
                return err.code
            except urllib.error.URLError, ConnectionError, TimeoutError:
                pass
            time.sleep(0.5)
        raise DemoError(f"{url} did not answer within {timeout:g} s:\n{_tail(log)}")

    # --- Home Assistant APIs ------------------------------------------------------

    async def _prepare_home_assistant(self) -> None:
        """Create the owner, check the HTTP setup, add the simulator's credentials."""
        client_id = f"{self.ha_url}/"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.ha_url}/api/onboarding/users",
                json={
                    "client_id": client_id,
                    "name": USER_NAME,
                    "username": USERNAME,
                    "password": PASSWORD,
                    "language": "en",
                },
            ) as resp:
                if resp.status != 200:
                    raise DemoError(
                        f"onboarding failed: {resp.status} {await resp.text()}"
                    )
                auth_code = (await resp.json())["auth_code"]
            async with session.post(
                f"{self.ha_url}/auth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": auth_code,
                    "client_id": client_id,
                },
            ) as resp:
                resp.raise_for_status()
                access_token = (await resp.json())["access_token"]
            async with session.ws_connect(f"{self.ha_url}/api/websocket") as ws:
                conn = _WebSocket(ws)
                await conn.authenticate(access_token)
                await self._wait_running(conn)
                await self._check_http_config(conn)
                client_id_sim, secret = self.client
                try:
                    await conn.call(
                        "application_credentials/create",
                        domain=DOMAIN,
                        client_id=client_id_sim,
                        client_secret=secret,
                        name=CREDENTIAL_NAME,
                    )
                except DemoError as err:
                    # Home Assistant says "No application_credentials platform"
                    # without logging why: most often the integration does not
                    # import.
                    raise DemoError(f"{err}\n{self._import_problem()}") from err
                # Home Assistant's backup integration creates its entry with a
                # "system" flow at the first start, which counts as a discovery
                # and leaves a "New devices discovered" notification behind
                # that points at nothing.
                await conn.call(
                    "call_service",
                    domain="persistent_notification",
                    service="dismiss",
                    service_data={"notification_id": "config_entry_discovery"},
                )
                self.token = str(
                    await conn.call(
                        "auth/long_lived_access_token",
                        client_name="Tesla Scout demo launcher",
                        lifespan=30,
                    )
                )

    def _import_problem(self) -> str:
        """Import the integration's credentials platform as Home Assistant does."""
        module = f"custom_components.{DOMAIN}.application_credentials"
        result = subprocess.run(
            [self.settings.python, "-c", f"import {module}"],
            cwd=self.config_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0:
            return f"({module} imports fine; see {self.ha_log})"
        return f"import {module} fails:\n{result.stderr.strip()}"

    async def _wait_running(self, conn: _WebSocket) -> None:
        """Wait until Home Assistant has set up everything and runs.

        The frontend (and so the API) is served early in the start; the
        integrations of the last stage, application_credentials among them,
        register their websocket commands later.
        """
        deadline = time.monotonic() + START_TIMEOUT
        while (state := (await conn.call("get_config"))["state"]) != "RUNNING":
            if time.monotonic() > deadline:
                raise DemoError(
                    f"Home Assistant is still {state} after {START_TIMEOUT:g} s:"
                    f"\n{_tail(self.ha_log)}"
                )
            await asyncio.sleep(0.5)

    async def _check_http_config(self, conn: _WebSocket) -> None:
        """Make sure Home Assistant runs the stored HTTP config, with no trial.

        A pending (unconfirmed) configuration would be reverted after five
        minutes, moving Home Assistant to port 8123 on all interfaces.
        """
        config = await conn.call("http/config")
        stable = config.get("stable") or {}
        problems = []
        if config.get("active_config_type") != "stable":
            problems.append(f"runs the {config.get('active_config_type')} config")
        if config.get("pending") is not None or config.get("revert_at") is not None:
            problems.append(f"has a pending config {config.get('pending')}")
        if (stable.get("server_host"), stable.get("server_port")) != (
            [HTTP_HOST],
            self.settings.ha_port,
        ):
            problems.append(f"stores another address {stable}")
        if problems:
            raise DemoError(f"Home Assistant's HTTP server {'; '.join(problems)}")


def http_store(port: int) -> dict[str, Any]:
    """Home Assistant's HTTP store with loopback:``port`` confirmed."""
    version, minor_version = HTTP_STORE_VERSION
    stable = {
        "server_host": [HTTP_HOST],
        "server_port": port,
        # The defaults of Home Assistant's HTTP_STORAGE_SCHEMA: the store
        # holds every key.
        "cors_allowed_origins": ["https://cast.home-assistant.io"],
        "login_attempts_threshold": -1,
        "ip_ban_enabled": True,
        "ssl_profile": "intermediate_v6",
        "use_x_frame_options": True,
        "created_at": datetime.now(UTC).isoformat(),
        "error": None,
        "error_message": None,
    }
    return {
        "version": version,
        "minor_version": minor_version,
        "key": "http",
        "data": {"stable": stable, "pending": None, "yaml_migration_done": True},
    }


class _WebSocket:
    """A minimal client of Home Assistant's websocket API."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._id = 0

    async def authenticate(self, access_token: str) -> None:
        hello = await self._ws.receive_json()
        if hello.get("type") != "auth_required":
            raise DemoError(f"unexpected websocket greeting {hello}")
        await self._ws.send_json({"type": "auth", "access_token": access_token})
        answer = await self._ws.receive_json()
        if answer.get("type") != "auth_ok":
            raise DemoError(f"websocket authentication failed: {answer}")

    async def call(self, message_type: str, **data: Any) -> Any:
        self._id += 1
        await self._ws.send_json({"id": self._id, "type": message_type, **data})
        while True:
            answer = await self._ws.receive_json()
            if answer.get("id") == self._id and answer.get("type") == "result":
                break
        if not answer.get("success"):
            raise DemoError(f"{message_type} failed: {answer.get('error')}")
        return answer.get("result")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/develop",
        description="Run the simulator and Home Assistant with this integration.",
    )
    parser.add_argument("--port", type=int, default=8123, help="Home Assistant port")
    parser.add_argument("--sim-port", type=int, default=8765, help="simulator port")
    parser.add_argument("--state-dir", type=Path, default=REPO / ".demo")
    parser.add_argument("--profile", type=Path, default=DEFAULT_PROFILE)
    parser.add_argument(
        "--no-day", action="store_true", help="keep the car parked at home"
    )
    return parser.parse_args(argv)


def describe(demo: Demo) -> str:
    """Tell the user what runs where and how to click through the demo."""
    day = demo.profile.day
    if demo.settings.with_day and day is not None:
        car = (
            f"The car lives a compressed day every {day.cycle_minutes:g} minutes,"
            " on the real clock (demo/sim_profile.json)."
        )
    else:
        car = "The car stays parked."
    return f"""
Tesla Scout & Worker demo is running.

  Home Assistant  {demo.ha_url}   login: {USERNAME} / {PASSWORD}
  Simulator       {demo.sim_url}   (Fleet API, auto-approving sign-in)

Add the integration: Settings > Devices & services > Add integration >
"Tesla Scout & Worker". In the first step open the advanced section and enter
the server URL {demo.sim_url}
The application credentials for the simulator are already there; the sign-in
window approves by itself.

Then open the dashboard: {demo.ha_url}{DASHBOARD_PATH}
{car}
The scout looks at a parked car every 30 minutes: press "Force update" to look
now, or lower the check intervals in the integration's options.

Logs: {demo.ha_log}, {demo.config_dir / "home-assistant.log"}, {demo.sim_log}
Press Ctrl-C to stop.
"""


def main(argv: list[str] | None = None) -> int:
    """Run the demo until Ctrl-C."""
    args = parse_args(argv)
    settings = DemoSettings(
        state_dir=args.state_dir.resolve(),
        ha_port=args.port,
        sim_port=args.sim_port,
        profile=args.profile.resolve(),
        with_day=not args.no_day,
    )

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    demo = Demo(settings)
    print(f"Starting the simulator and Home Assistant (state in {settings.state_dir})")
    try:
        demo.start()
    except DemoError as err:
        print(f"develop: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(describe(demo), flush=True)
    try:
        while not (gone := list(demo.exited())):
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
        return 0
    else:
        print(f"develop: {', '.join(gone)} stopped; see the logs", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            demo.stop()


if __name__ == "__main__":
    sys.exit(main())
