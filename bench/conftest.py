"""Fixtures and helpers of the benchmarks: Home Assistant in the car's world."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
import logging
import random
import time
from typing import Any
from unittest.mock import patch

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
from custom_components.tesla_scout_worker.keys import async_get_signing_key
from custom_components.tesla_scout_worker.usage import ApiCategory, ApiUsage
from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import Simulator
from tesla_fleet_sim.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

from .harness import HOME, TIME_ZONE, Clock

APP_DOMAIN = "my-tesla-app.example.com"
"""The app's registered domain (where Tesla fetches its public key)."""


def pytest_configure(config: pytest.Config) -> None:
    """Give the clock pytest-timeout's per-test limit as its wall-time limit."""
    timeout = config.getoption("timeout", None) or config.getini("timeout")
    Clock.wall_limit = float(timeout) if timeout else None


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load integrations from custom_components."""


@pytest.fixture(autouse=True)
async def enable_event_loop_debug() -> None:
    """Run the loop without debug mode (the test plugin's default turns it on).

    Debug mode records a traceback for every callback and future; over a
    simulated month that is most of the run time.
    """
    asyncio.get_running_loop().set_debug(False)


@pytest.fixture(autouse=True)
def seeded_random() -> None:
    """Seed the global random generator (the coordinators' timer offsets use it).

    Repeated runs then give the same numbers.
    """
    random.seed(20250602)


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    """Keep the log quiet: a simulated month logs a lot at INFO.

    asyncio's slow-callback warnings only measure the frozen clock's jumps.
    """
    names = ("asyncio", "custom_components.tesla_scout_worker", "tesla_fleet_sim")
    with log_levels(names, logging.ERROR):
        yield


@contextmanager
def log_levels(names: Iterable[str], level: int) -> Iterator[None]:
    """Set these loggers to ``level``, and back to their own levels after."""
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, before, strict=True):
            logger.setLevel(old)


@pytest.fixture(autouse=True)
def signing_key_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the installation's signing key out of the shared test config folder.

    Cars that allow or require signed commands make the integration create
    its key; without this it would land in the test plugin's config folder
    (inside the virtual environment) and outlive the run.
    """
    folder = tmp_path_factory.mktemp("keys")
    monkeypatch.setattr(
        keys, "default_key_path", lambda hass: str(folder / keys.KEY_FILE)
    )


@pytest.fixture
def fast_wake_wait(freezer: FrozenDateTimeFactory) -> Iterator[None]:
    """Make waits between wake-up checks move the frozen clock, not sleep."""

    async def wait(seconds: float) -> None:
        freezer.tick(timedelta(seconds=seconds))

    with patch.object(charge_control, "async_wait", wait):
        yield


async def prepare_hass(hass: HomeAssistant) -> None:
    """Put Home Assistant in the car's time zone with zone.home at its home."""
    await hass.config.async_set_time_zone(TIME_ZONE)
    hass.config.latitude = HOME.lat
    hass.config.longitude = HOME.lon
    assert await async_setup_component(hass, "zone", {})  # zone.home, 100 m
    assert await async_setup_component(hass, "application_credentials", {})
    await async_import_client_credential(
        hass, DOMAIN, ClientCredential(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET), DOMAIN
    )


def add_entry(
    hass: HomeAssistant,
    sim: Simulator,
    url: str,
    *,
    sub: str | None = None,
    options: dict[str, Any] | None = None,
    polling: bool = True,
) -> MockConfigEntry:
    """Add (not set up) an entry for an account of the simulator."""
    token = sim.issue_tokens(sub)
    token["expires_at"] = time.time() + int(token["expires_in"])
    account = sim.config.account(sub) if sub else sim.config.accounts[0]
    assert account is not None
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=account.email,
        unique_id=account.sub,
        pref_disable_polling=not polling,
        options=options or {},
        data={
            "auth_implementation": DOMAIN,
            CONF_TOKEN: token,
            CONF_REGION: account.region,
            CONF_SERVER_URL: url,
        },
    )
    entry.add_to_hass(hass)
    return entry


async def pair_signing_key(hass: HomeAssistant, sim: Simulator) -> None:
    """Register the app with the installation's key and pair it with every car.

    What the owner does once (the app's domain serves the public key, the car
    gets the virtual key in the Tesla app); a car that requires signed
    commands takes none without it.
    """
    key = await async_get_signing_key(hass)
    for region in sorted({account.region for account in sim.config.accounts}):
        sim.partners.register(
            DEFAULT_CLIENT_ID,
            region,
            APP_DOMAIN,
            key.public_pem,
            dt_util.utcnow(),
        )
    for car in sim.vehicles:
        car.pair_key(key.public_point)


@contextmanager
def usage_counts() -> Iterator[Counter[ApiCategory]]:
    """Count what the integration records as billed, over months and restarts.

    Its own usage counters start over every calendar month and per config
    entry; this sums every ``ApiUsage.record`` call while the block runs.
    """
    counts: Counter[ApiCategory] = Counter()
    record = ApiUsage.record

    def counted(usage: ApiUsage, category: ApiCategory) -> None:
        counts[category] += 1
        record(usage, category)

    with patch.object(ApiUsage, "record", counted):
        yield counts


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set the entry up and wait for everything it started."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


def device_id(hass: HomeAssistant, vin: str) -> str:
    """Return the device id of a car (exactly one device carries its VIN).

    Device identifiers are unique per config entry only since HA 2026.x, and
    ``async_get_device`` is deprecated (an error outside integrations).
    """
    devices = dr.async_get(hass).async_get_devices(identifiers={(DOMAIN, vin)})
    assert len(devices) == 1, devices
    return devices[0].id


async def plan_session(
    hass: HomeAssistant, vin: str, target_soc: int, ready_by: datetime, **extra: Any
) -> dict[str, Any]:
    """Call plan_special_charging for a car; returns the response."""
    response = await hass.services.async_call(
        DOMAIN,
        "plan_special_charging",
        {
            "device_id": device_id(hass, vin),
            "target_soc": target_soc,
            "ready_by": ready_by,
            **extra,
        },
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)
