"""Shared fixtures: a real Fleet API simulator on loopback and a configured entry."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from datetime import UTC, timedelta
import logging
from pathlib import Path
import re
import time
from typing import Any
from unittest.mock import patch

import freezegun.api
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

# Import our package before HA's harness mounts its own custom_components.
import custom_components.tesla_scout_worker  # noqa: F401
from custom_components.tesla_scout_worker import charge_control, keys
from custom_components.tesla_scout_worker.const import (
    CONF_REGION,
    CONF_SERVER_URL,
    CONF_TOKEN,
    DOMAIN,
)
from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import (
    RunningSimulator,
    SimClock,
    SimConfig,
    Simulator,
    commands as sim_commands,
    running_simulator,
    testing as sim_testing,
    tls as sim_tls,
)
from tesla_fleet_sim.config import (
    DEFAULT_ACCOUNT_SUB,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
)
from tesla_fleet_sim.tls import CertificateFiles

from .scout_common import prepare_home
from .session_common import TZ

CLIENT_ID = DEFAULT_CLIENT_ID
CLIENT_SECRET = DEFAULT_CLIENT_SECRET
ACCOUNT = DEFAULT_ACCOUNT_SUB
AUTH_DOMAIN = DOMAIN


# What Home Assistant logs when an integration uses an API it deprecated:
# report_usage/frame reports and helpers.deprecation's warnings.
HA_DEPRECATION = re.compile(
    r"deprecated|will stop working|Detected that custom integration|Detected code that",
    re.IGNORECASE,
)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load integrations from custom_components."""


@pytest.fixture(autouse=True)
def signing_key_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the installation's signing key out of the shared test config folder."""
    folder = tmp_path_factory.mktemp("keys")
    monkeypatch.setattr(
        keys, "default_key_path", lambda hass: str(folder / keys.KEY_FILE)
    )


@pytest.fixture(autouse=True)
def fail_on_ha_deprecation(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test during which Home Assistant reports a deprecated API use."""
    yield
    reports = [
        record.getMessage()
        for record in caplog.get_records("call") + caplog.get_records("setup")
        if record.levelno >= logging.WARNING
        and record.name.startswith("homeassistant")
        and HA_DEPRECATION.search(record.getMessage())
    ]
    if reports:
        pytest.fail(
            "Home Assistant reported deprecated API use:\n" + "\n".join(reports)
        )


@pytest.fixture
def sim_config() -> SimConfig | None:
    """Return the simulator's accounts and cars; None is one car at home.

    Override it in a module, or per test with
    ``@pytest.mark.parametrize("sim_config", [...])``.
    """
    return None


@pytest.fixture
def sim(sim_config: SimConfig | None) -> Simulator:
    """Return a simulator whose clock follows Home Assistant's (frozen) time."""
    return Simulator(sim_config, clock=SimClock.follow(dt_util.utcnow))


@pytest.fixture
async def sim_url(sim: Simulator, socket_enabled: None) -> AsyncGenerator[str]:
    """Serve the simulator on a free loopback port (HA's plugin blocks sockets)."""
    async with running_simulator(sim) as server:
        yield server.url


@pytest.fixture
async def credentials(hass: HomeAssistant) -> None:
    """Register the simulator's client as application credentials."""
    assert await async_setup_component(hass, "application_credentials", {})
    await async_import_client_credential(
        hass, DOMAIN, ClientCredential(CLIENT_ID, CLIENT_SECRET), AUTH_DOMAIN
    )


def entry_token(sim: Simulator) -> dict[str, Any]:
    """Issue a token pair as the config flow would store it."""
    token = sim.issue_tokens()
    token["expires_at"] = time.time() + int(token["expires_in"])
    return token


@pytest.fixture
async def scout(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """The scout's world: local midnight, zone.home at the car's home, polling on.

    Scout modules use it with ``pytestmark = pytest.mark.usefixtures("scout")``.
    """
    await prepare_home(hass, freezer)


@pytest.fixture
def scout_polling(request: pytest.FixtureRequest) -> bool:
    """Whether the vehicle scout polls on its own: only in tests using ``scout``.

    Off otherwise (the entry's "disable polling" preference), so tests of
    other parts that move the clock by hours see no vehicle checks in between.
    """
    return "scout" in request.fixturenames


@pytest.fixture
def config_entry(
    hass: HomeAssistant, sim: Simulator, sim_url: str, scout_polling: bool
) -> MockConfigEntry:
    """Return an entry for the simulator's account (not yet set up)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="driver@example.com",
        unique_id=ACCOUNT,
        pref_disable_polling=not scout_polling,
        data={
            "auth_implementation": AUTH_DOMAIN,
            CONF_TOKEN: entry_token(sim),
            CONF_REGION: "eu",
            CONF_SERVER_URL: sim_url,
        },
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def setup_entry(
    hass: HomeAssistant, credentials: None, config_entry: MockConfigEntry
) -> Callable[[], Awaitable[MockConfigEntry]]:
    """Return a coroutine function that sets the entry up."""

    async def _setup() -> MockConfigEntry:
        await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
        return config_entry

    return _setup


@pytest.fixture
async def loaded_entry(
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
) -> MockConfigEntry:
    """Return the entry, set up against the simulator."""
    return await setup_entry()


@pytest.fixture
async def sim_proxy(
    sim: Simulator, socket_enabled: None
) -> AsyncGenerator[RunningSimulator]:
    """Serve the simulator with its HTTPS tesla-http-proxy in front (own CA).

    The certificates are dated by the wall clock even while the test's clock
    is frozen elsewhere: TLS checks them against the real time.
    """

    def wall_clock_certificates(folder: Path) -> CertificateFiles:
        # freezegun leaves clock_gettime alone. Its datetime class (a subclass
        # of the real one) is accepted by cryptography whether or not that
        # first met datetimes while the clock was frozen.
        wall_clock = time.clock_gettime(time.CLOCK_REALTIME)
        now = freezegun.api.FakeDatetime.fromtimestamp(wall_clock, UTC)
        return sim_tls.generate_certificates(folder, now=now)

    with patch.object(sim_testing, "generate_certificates", wall_clock_certificates):
        async with running_simulator(sim, proxy=True) as server:
            yield server


# --- special charging sessions (see session_common.py) ----------------------


@pytest.fixture
async def warsaw(hass: HomeAssistant) -> None:
    """Run Home Assistant in the simulated car's time zone."""
    await hass.config.async_set_time_zone(TZ)


@pytest.fixture
def fast_wait(freezer: FrozenDateTimeFactory) -> Iterator[None]:
    """Waits between wake-up checks move the frozen clock instead of sleeping.

    Session modules use it with ``pytestmark = pytest.mark.usefixtures("fast_wait")``.
    """

    async def wait(seconds: float) -> None:
        freezer.tick(timedelta(seconds=seconds))

    with patch.object(charge_control, "async_wait", wait):
        yield


@pytest.fixture
def carried_out() -> Iterator[list[str]]:
    """Record the names of the commands the simulated car carries out."""
    run = sim_commands.run_command
    names: list[str] = []

    def spy(car: Any, name: str, body: Any) -> Any:
        names.append(name)
        return run(car, name, body)

    with patch.object(sim_commands, "run_command", spy):
        yield names
