"""Commands through the simulated tesla-http-proxy: TLS trust, probe, 5xx mapping."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
import socket
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from tesla_fleet_api.exceptions import (
    InternalServerError,
    ServiceUnavailable,
    TeslaFleetError,
)

from custom_components.tesla_scout_worker.const import (
    CONF_COMMANDS_CA_FILE,
    CONF_COMMANDS_URL,
    CONF_COMMANDS_VERIFY_SSL,
    DOMAIN,
)
from custom_components.tesla_scout_worker.errors import (
    FleetError,
    FleetUnavailableError,
    KeyNotPairedError,
    TransientFleetError,
    VehicleAsleepError,
    translate_error,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_CLOSE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from tesla_fleet_sim import (
    AccountConfig,
    RunningSimulator,
    SimConfig,
    Simulator,
    VehicleConfig,
)
from tesla_fleet_sim.proxy import NOT_AWAKE_ERROR, NOT_PAIRED_ERROR

from .common import command_requests

SIGNED = SimConfig(
    accounts=[
        AccountConfig(
            vehicles=[VehicleConfig(command_signing="required", key_paired=True)]
        )
    ]
)
UNPAIRED = SimConfig(
    accounts=[AccountConfig(vehicles=[VehicleConfig(command_signing="required")])]
)


def _closed_port() -> int:
    """Return a loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _reconfigure(
    hass: HomeAssistant, entry: MockConfigEntry, user_input: dict[str, Any]
) -> dict[str, Any]:
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    await hass.async_block_till_done()
    return dict(result)


def _with_proxy(
    hass: HomeAssistant, entry: MockConfigEntry, proxy: RunningSimulator, **tls: Any
) -> None:
    """Point the (not yet set up) entry's commands at the proxy."""
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_COMMANDS_URL: proxy.proxy_url, **tls}
    )


async def _reconfigure_refused(
    hass: HomeAssistant, entry: MockConfigEntry, user_input: dict[str, Any]
) -> dict[str, Any]:
    """Reconfigure with ``user_input``: the form is shown again, nothing stored."""
    data = dict(entry.data)
    result = await _reconfigure(hass, entry, user_input)
    assert result["type"] is FlowResultType.FORM
    assert dict(entry.data) == data
    return result


# --- the reconfigure form ----------------------------------------------------


@contextmanager
def _refused_handshakes() -> Iterator[list[str]]:
    """Collect what the proxy's side of a refused TLS handshake reports.

    The proxy runs in the test's event loop; a client that does not trust its
    certificate resets the connection, which the server reports to the loop.
    """
    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    refused: list[str] = []
    loop.set_exception_handler(lambda _, context: refused.append(context["message"]))
    try:
        yield refused
    finally:
        loop.set_exception_handler(handler)


@pytest.mark.usefixtures("current_request_with_host")
@pytest.mark.parametrize("sim_config", [SIGNED])
async def test_reconfigure_with_ca_file(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
    sim_proxy: RunningSimulator,
) -> None:
    """With the proxy's CA the URL is stored and commands go through the proxy."""
    before = len(sim.requests)
    result = await _reconfigure(
        hass,
        loaded_entry,
        {
            CONF_COMMANDS_URL: sim_proxy.proxy_url,
            CONF_COMMANDS_VERIFY_SSL: True,
            CONF_COMMANDS_CA_FILE: f" {sim_proxy.proxy_ca_path} ",
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert loaded_entry.data[CONF_COMMANDS_URL] == sim_proxy.proxy_url
    assert loaded_entry.data[CONF_COMMANDS_VERIFY_SSL] is True
    assert loaded_entry.data[CONF_COMMANDS_CA_FILE] == str(sim_proxy.proxy_ca_path)
    # The probe is answered by the proxy itself: only the reload's own
    # requests (the vehicle list and one vehicle_data) reached the Fleet API.
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in sim.requests[before:]] == [
        ("GET", "vehicles"),
        ("GET", "vehicle_data"),
    ]

    assert loaded_entry.state is ConfigEntryState.LOADED
    client = loaded_entry.runtime_data.client
    vin = sim.vehicle().vin
    await client.async_command(vin, "set_charge_limit", percent=70)
    [record] = command_requests(sim)
    assert record.path.endswith("/signed_command")  # signed by the proxy
    assert record.status == 200
    assert sim.vehicle().charge_limit_soc == 70
    # Fleet API requests keep Home Assistant's shared session.
    commands_session = client._commands_session
    assert commands_session is not async_get_clientsession(hass)
    assert client._session is async_get_clientsession(hass)
    await client.async_vehicle_data(vin)
    assert sim.api_requests("data")[-1].path.endswith("/vehicle_data")

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert commands_session.closed


@pytest.mark.usefixtures("current_request_with_host")
async def test_reconfigure_certificate_not_trusted(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim_proxy: RunningSimulator
) -> None:
    """Verify on and no CA file: proxy_certificate, nothing stored; off: stored."""
    data = dict(loaded_entry.data)
    with _refused_handshakes():
        result = await _reconfigure(
            hass,
            loaded_entry,
            {CONF_COMMANDS_URL: sim_proxy.proxy_url, CONF_COMMANDS_VERIFY_SSL: True},
        )
        await asyncio.sleep(0.05)  # the proxy's side of the refused handshake
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_COMMANDS_URL: "proxy_certificate"}
    assert dict(loaded_entry.data) == data

    saved = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_COMMANDS_URL: sim_proxy.proxy_url,
            CONF_COMMANDS_VERIFY_SSL: False,
            # Not used without verification, so not stored.
            CONF_COMMANDS_CA_FILE: "/nonexistent/ca.pem",
        },
    )
    await hass.async_block_till_done()
    assert saved["reason"] == "reconfigure_successful"
    assert loaded_entry.data[CONF_COMMANDS_VERIFY_SSL] is False
    assert CONF_COMMANDS_CA_FILE not in loaded_entry.data
    assert loaded_entry.state is ConfigEntryState.LOADED


def _not_a_certificate(tmp_path: Path, proxy: RunningSimulator) -> str:
    path = tmp_path / "notes.pem"
    path.write_text("just some text\n")
    return str(path)


def _private_key(tmp_path: Path, proxy: RunningSimulator) -> str:
    assert proxy.certificates is not None
    return str(proxy.certificates.key_path)


def _missing(tmp_path: Path, proxy: RunningSimulator) -> str:
    return str(tmp_path / "missing.pem")


def _directory(tmp_path: Path, proxy: RunningSimulator) -> str:
    return str(tmp_path)


@pytest.mark.usefixtures("current_request_with_host")
@pytest.mark.parametrize(
    "ca_file", [_not_a_certificate, _private_key, _missing, _directory]
)
async def test_reconfigure_bad_ca_file(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim_proxy: RunningSimulator,
    tmp_path: Path,
    ca_file: Any,
) -> None:
    """A CA file that is missing or holds no certificate is a form error."""
    result = await _reconfigure_refused(
        hass,
        loaded_entry,
        {
            CONF_COMMANDS_URL: sim_proxy.proxy_url,
            CONF_COMMANDS_CA_FILE: ca_file(tmp_path, sim_proxy),
        },
    )
    assert result["errors"] == {CONF_COMMANDS_CA_FILE: "ca_file_invalid"}


@pytest.mark.usefixtures("current_request_with_host")
async def test_reconfigure_proxy_unreachable(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """Nobody listening at the URL: proxy_unreachable, nothing stored."""
    result = await _reconfigure_refused(
        hass,
        loaded_entry,
        {CONF_COMMANDS_URL: f"https://127.0.0.1:{_closed_port()}"},
    )
    assert result["errors"] == {CONF_COMMANDS_URL: "proxy_unreachable"}


# --- setup and unload --------------------------------------------------------


async def test_setup_without_usable_ca_file(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Any,
    sim_proxy: RunningSimulator,
    tmp_path: Path,
) -> None:
    """A CA file gone since it was set: the entry retries later."""
    _with_proxy(
        hass,
        config_entry,
        sim_proxy,
        **{CONF_COMMANDS_CA_FILE: str(tmp_path / "gone.pem")},
    )
    await setup_entry()
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_default_trust_uses_the_shared_session(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Any,
    sim_proxy: RunningSimulator,
) -> None:
    """Verification on without a CA file needs no session of its own."""
    _with_proxy(hass, config_entry, sim_proxy, **{CONF_COMMANDS_VERIFY_SSL: True})
    await setup_entry()
    client = config_entry.runtime_data.client
    assert client._commands_session is async_get_clientsession(hass)


async def test_session_closed_when_home_assistant_closes(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Any,
    sim_proxy: RunningSimulator,
) -> None:
    """The commands session is closed at shutdown even without an unload."""
    _with_proxy(hass, config_entry, sim_proxy, **{CONF_COMMANDS_VERIFY_SSL: False})
    await setup_entry()
    session = config_entry.runtime_data.client._commands_session
    hass.bus.async_fire(EVENT_HOMEASSISTANT_CLOSE)
    await hass.async_block_till_done()
    assert session.closed
    assert await hass.config_entries.async_unload(config_entry.entry_id)


# --- the proxy's 5xx answers -------------------------------------------------


@pytest.mark.parametrize("sim_config", [UNPAIRED])
async def test_key_not_paired(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Any,
    sim: Simulator,
    sim_proxy: RunningSimulator,
) -> None:
    """The proxy's 500 "public key has not been paired" is KeyNotPairedError."""
    _with_proxy(
        hass,
        config_entry,
        sim_proxy,
        **{CONF_COMMANDS_CA_FILE: str(sim_proxy.proxy_ca_path)},
    )
    await setup_entry()
    client = config_entry.runtime_data.client
    with pytest.raises(KeyNotPairedError) as caught:
        await client.async_command(sim.vehicle().vin, "set_charge_limit", percent=70)
    assert not isinstance(caught.value, FleetUnavailableError)
    assert caught.value.translation_key == "key_not_paired"
    [record] = command_requests(sim)
    assert record.path.endswith("/signed_command")
    assert sim.vehicle().charge_limit_soc != 70


@pytest.mark.parametrize("sim_config", [SIGNED])
async def test_asleep_and_other_server_errors(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Any,
    sim: Simulator,
    sim_proxy: RunningSimulator,
) -> None:
    """An asleep car through the proxy is asleep; other 5xx stay unavailable."""
    _with_proxy(hass, config_entry, sim_proxy, **{CONF_COMMANDS_VERIFY_SSL: False})
    await setup_entry()
    client = config_entry.runtime_data.client
    vin = sim.vehicle().vin
    sim.vehicle().fall_asleep()
    with pytest.raises(VehicleAsleepError):
        await client.async_command(vin, "charge_start")
    sim.faults.fail_next("/signed_command", 500)
    with pytest.raises(FleetUnavailableError):
        await client.async_command(vin, "charge_start")
    assert [r.status for r in command_requests(sim)] == [408, 500]


@pytest.mark.parametrize(
    ("err", "commands", "expected"),
    [
        (InternalServerError({"error": NOT_AWAKE_ERROR}), True, VehicleAsleepError),
        (ServiceUnavailable({"error": "vehicle is offline"}), True, VehicleAsleepError),
        (InternalServerError({"error": NOT_PAIRED_ERROR}), True, KeyNotPairedError),
        (ServiceUnavailable({"error": NOT_PAIRED_ERROR}), True, KeyNotPairedError),
        (
            ServiceUnavailable({"error": "Service Unavailable"}),
            True,
            FleetUnavailableError,
        ),
        (InternalServerError({"error": NOT_AWAKE_ERROR}), False, FleetUnavailableError),
        (InternalServerError("not json"), True, FleetUnavailableError),
    ],
)
def test_proxy_error_mapping(
    err: TeslaFleetError, commands: bool, expected: type[FleetError]
) -> None:
    """Only the commands server's 500/503 are read for the car's faults."""
    assert type(translate_error(err, commands=commands)) is expected


def test_key_not_paired_is_not_transient() -> None:
    """No retry fixes an unpaired key."""
    assert not issubclass(KeyNotPairedError, TransientFleetError)
    assert KeyNotPairedError().translation_domain == DOMAIN
