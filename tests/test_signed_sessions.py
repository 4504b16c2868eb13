"""Commands signed in process, on a car that needs signing and no proxy.

The integration signs with the installation's key (tesla-fleet-api's
VehicleSigned); the simulator verifies every message for real (session
handshake, HMAC tags, epoch and counter) and carries the decoded actions out
with the same handlers as REST commands. Tesla's answer about the pairing
(fleet_status) decides the path; a car without the key gets a fixable repair
with the pairing link and its QR code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
import logging
from pathlib import Path
from typing import Any
from unittest.mock import patch

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from tesla_fleet_api.exceptions import SigningDisabled
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet
from tesla_protocol.command.universal_message_pb2 import MessageFault_E

from custom_components.tesla_scout_worker import config_flow, repairs
from custom_components.tesla_scout_worker.const import (
    CONF_BATTERY_CAPACITY,
    CONF_DOMAIN,
    CONF_KEY_FILE,
    CONF_OFF_PEAK_ACTION,
    CONF_OFF_PEAK_LIMIT,
    DOMAIN,
)
from custom_components.tesla_scout_worker.errors import (
    FleetUnavailableError,
    KeyNotPairedError,
    RemoteAccessDisabledError,
    SigningFaultError,
    VehicleBusyError,
)
from custom_components.tesla_scout_worker.keys import (
    KeyCheck,
    SigningKey,
    async_get_signing_key,
)
from custom_components.tesla_scout_worker.sessions import (
    REASON_KEY_NOT_PAIRED,
    SessionState,
)
from custom_components.tesla_scout_worker.signing import CommandPath
from custom_components.tesla_scout_worker.usage import ApiCategory
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from tesla_fleet_sim import (
    DEFAULT_CLIENT_ID,
    Simulator,
)
from tesla_fleet_sim.config import DEFAULT_WORK
from tesla_fleet_sim.partners import new_key_pair

from .common import (
    advance,
    advance_to,
    billed,
    command_requests,
    device_id,
    form_schema,
    placeholders,
    state,
    stored_state,
)
from .session_common import (
    CAPACITY,
    CAR,
    CHARGE_START,
    CLEANUP_AT,
    COMMANDS_SENSOR,
    SEND_AT,
    VIN,
    local,
    manager,
    plan,
    plan_and_send,
    session_sim,
    set_up_entry,
)

HANDSHAKES_SENSOR = "sensor.driver_example_com_signing_handshakes_this_month"
APP_DOMAIN = "my-tesla-app.example.com"
REGION = "eu"

pytestmark = pytest.mark.usefixtures("fast_wait")


@pytest.fixture
def car() -> dict[str, Any]:
    """Extra settings of the car (tests override)."""
    return {}


@pytest.fixture
def sim(freezer: FrozenDateTimeFactory, warsaw: None, car: dict[str, Any]) -> Simulator:
    """A car that needs signing, at 41 % with a 50 % limit; 74.3 kWh, 11 kW."""
    return session_sim(freezer, **{"command_signing": "required", **car})


@pytest.fixture
def key_paired() -> bool:
    """Whether the installation's key is on the car (parametrize to change)."""
    return True


@pytest.fixture
async def key(hass: HomeAssistant, sim: Simulator, key_paired: bool) -> SigningKey:
    """The installation's key, registered for the app (and paired with the car)."""
    signing_key = await async_get_signing_key(hass)
    sim.partners.register(
        DEFAULT_CLIENT_ID, REGION, APP_DOMAIN, signing_key.public_pem, dt_util.utcnow()
    )
    if key_paired:
        sim.vehicle().pair_key(signing_key.public_point)
    return signing_key


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """The entry's options (tests override)."""
    return {CONF_BATTERY_CAPACITY: CAPACITY}


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    key: SigningKey,
    entry_options: dict[str, Any],
) -> MockConfigEntry:
    """The entry, set up after the app registered the installation's key."""
    return await set_up_entry(hass, config_entry, setup_entry, options=entry_options)


def fleet_status_calls(sim: Simulator) -> int:
    return sum(1 for r in sim.api_requests() if r.path.endswith("/fleet_status"))


def pairing_issue(hass: HomeAssistant) -> ir.IssueEntry | None:
    issue_id = f"key_not_paired_{device_id(hass, VIN)}"
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


async def reload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Restart the integration (what a Home Assistant restart does to it)."""
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_session_signed_in_process_with_restarts(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    carried_out: list[str],
) -> None:
    """Sent, charged and cleaned up with signed commands, restarted at every step."""
    car = sim.vehicle()
    assert state(hass, COMMANDS_SENSOR) == "signed"
    assert fleet_status_calls(sim) == 1  # asked once at the first setup
    sim.schedule_event(local(14, 1), "plug_in")
    assert (await plan(hass))["state"] == "scheduled"

    await reload(hass, entry)  # scheduled
    await advance_to(hass, freezer, SEND_AT)
    (session,) = entry.runtime_data.sessions.sessions.values()
    assert session.state is SessionState.ACTIVE
    assert car.charge_limit_soc == 90
    [schedule] = car.charge_schedules
    assert schedule["one_time"] is True
    assert session.schedule_id == schedule["id"]

    await reload(hass, entry)  # active
    await advance_to(hass, freezer, CHARGE_START + timedelta(minutes=1))
    assert car.charging_state == "Charging"
    await reload(hass, entry)  # charging
    await advance_to(hass, freezer, CLEANUP_AT)
    (session,) = entry.runtime_data.sessions.sessions.values()
    assert session.state is SessionState.COMPLETED
    assert stored_state(hass_storage, entry) == "completed"
    assert car.charge_limit_soc == 50
    assert car.charge_schedules == []
    # Exactly one schedule added; every command signed and verified by the car.
    assert carried_out == [
        "set_charge_limit",
        "add_charge_schedule",
        "set_charge_limit",
    ]
    requests = command_requests(sim)
    assert {r.path.rsplit("/", 1)[-1] for r in requests} == {"signed_command"}
    assert all(r.status == 200 and r.billed for r in requests)
    # A handshake per session with the car (a restart starts a new one); each
    # is billed as a command and counted on its own.
    usage = entry.runtime_data.usage
    assert usage.counts[ApiCategory.HANDSHAKE] == car.verifier.handshakes == 2
    assert usage.counts[ApiCategory.COMMAND] == 3
    assert billed(usage.counts)["command"] == sim.ledger.counts["command"] == 5
    assert state(hass, HANDSHAKES_SENSOR) == "2"
    # Restarts within a day reuse Tesla's answer about the key.
    assert fleet_status_calls(sim) == 1
    assert not ir.async_get(hass).issues


async def test_cancel_removes_the_schedule_signed(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    carried_out: list[str],
) -> None:
    """Cancelled while active: limit and schedule put back, one session reused."""
    session = await plan_and_send(hass, freezer, entry)
    sessions = manager(entry)
    await sessions.async_cancel(session.id)
    assert session.state is SessionState.CANCELLED
    assert sim.vehicle().charge_schedules == []
    assert sim.vehicle().charge_limit_soc == 50
    assert carried_out == [
        "set_charge_limit",
        "add_charge_schedule",
        "set_charge_limit",
        "remove_charge_schedule",
    ]
    assert sim.vehicle().verifier.handshakes == 1


@pytest.mark.usefixtures("scout")
@pytest.mark.parametrize("car", [{"location": DEFAULT_WORK}])
@pytest.mark.parametrize(
    "entry_options", [{CONF_OFF_PEAK_ACTION: True, CONF_OFF_PEAK_LIMIT: 70}]
)
async def test_off_peak_action_signed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    entry: MockConfigEntry,
    carried_out: list[str],
) -> None:
    """Arriving home plugged in: the off-peak limit and schedule, signed."""
    sim.vehicle().drive_home(timedelta(minutes=30), plug_in_on_arrival=True)
    await advance(hass, freezer, timedelta(hours=3), step=timedelta(minutes=1))
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "on"
    assert sim.vehicle().charge_limit_soc == 70
    assert carried_out == ["set_charge_limit", "add_charge_schedule"]
    assert {r.path.rsplit("/", 1)[-1] for r in command_requests(sim)} == {
        "signed_command"
    }


@pytest.mark.parametrize("key_paired", [False])
async def test_unpaired_car_gets_the_pairing_repair(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    key: SigningKey,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """No wake-up, no command; the repair shows the link and checks with Tesla."""
    assert state(hass, COMMANDS_SENSOR) == "key_not_paired"
    issue = pairing_issue(hass)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "key_not_paired"
    assert VIN not in issue.issue_id

    session = await plan_and_send(hass, freezer, entry)
    assert session.state is SessionState.FAILED
    assert session.reason == REASON_KEY_NOT_PAIRED
    assert sim.api_requests("wake") == []
    assert command_requests(sim) == []

    # The fix flow: the domain first (not known yet), then the link and QR code.
    await async_setup_component(hass, "repairs", {})
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = await manager.async_init(DOMAIN, data={"issue_id": issue.issue_id})
    assert result["step_id"] == "domain"
    result = await manager.async_configure(
        result["flow_id"], {CONF_DOMAIN: "not a domain"}
    )
    assert result["errors"] == {CONF_DOMAIN: "invalid_domain"}
    result = await manager.async_configure(
        result["flow_id"], {CONF_DOMAIN: f"https://{APP_DOMAIN}/"}
    )
    assert result["step_id"] == "pair"
    link = f"https://tesla.com/_ak/{APP_DOMAIN}"
    assert placeholders(result)["link"] == link
    qr = form_schema(result).schema["qr_code"]
    assert qr.config["data"] == link
    assert entry.data[CONF_DOMAIN] == APP_DOMAIN

    asked = fleet_status_calls(sim)
    result = await manager.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "still_not_paired"}
    assert fleet_status_calls(sim) == asked + 1

    sim.vehicle().pair_key(key.public_point)  # the owner adds the key
    result = await manager.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert pairing_issue(hass) is None
    assert state(hass, COMMANDS_SENSOR) == "signed"

    # Now commands go out signed.
    control = entry.runtime_data.control
    await control.async_wake(VIN)
    assert await control.async_set_limit(VIN, {}, 80)
    assert sim.vehicle().charge_limit_soc == 80


@pytest.mark.parametrize("car", [{"key_paired": True}])
async def test_car_refusing_a_listed_key(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    sim: Simulator,
) -> None:
    """Tesla lists the app's key, the car refuses ours: the domain serves another."""
    other_private, other_public = new_key_pair()
    del other_private
    sim.partners.register(
        DEFAULT_CLIENT_ID, REGION, APP_DOMAIN, other_public, dt_util.utcnow()
    )
    hass.config_entries.async_update_entry(
        config_entry, data={**config_entry.data, CONF_DOMAIN: APP_DOMAIN}
    )
    entry = await setup_entry()
    assert state(hass, COMMANDS_SENSOR) == "signed"  # Tesla lists the key

    control = entry.runtime_data.control
    await control.async_wake(VIN)
    with pytest.raises(KeyNotPairedError):
        await control.async_set_limit(VIN, {}, 80)
    assert state(hass, COMMANDS_SENSOR) == "key_not_paired"
    issue = pairing_issue(hass)
    assert issue is not None
    assert issue.translation_key == "key_not_accepted"
    # No retry loop: the next command is refused before any request.
    sent = len(command_requests(sim))
    with pytest.raises(KeyNotPairedError):
        await control.async_set_limit(VIN, {}, 80)
    assert len(command_requests(sim)) == sent
    # Kept across a restart (no new question to Tesla within the day).
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert state(hass, COMMANDS_SENSOR) == "key_not_paired"

    await async_setup_component(hass, "repairs", {})
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = await manager.async_init(DOMAIN, data={"issue_id": issue.issue_id})
    assert result["step_id"] == "pair"  # the domain is known
    assert "BEGIN PUBLIC KEY" in placeholders(result)["public_key"]
    with patch.object(
        repairs, "async_check_hosted_key", return_value=KeyCheck.DIFFERS
    ) as check:
        result = await manager.async_configure(result["flow_id"], {})
    assert result["errors"] == {"base": "public_key_differs"}
    assert check.call_args.args[1] == APP_DOMAIN
    with patch.object(repairs, "async_check_hosted_key", return_value=KeyCheck.MATCHES):
        result = await manager.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert state(hass, COMMANDS_SENSOR) == "signed"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (MessageFault_E.MESSAGEFAULT_ERROR_BUSY, VehicleBusyError),
        (
            MessageFault_E.MESSAGEFAULT_ERROR_REMOTE_ACCESS_DISABLED,
            RemoteAccessDisabledError,
        ),
        (MessageFault_E.MESSAGEFAULT_ERROR_INSUFFICIENT_PRIVILEGES, SigningFaultError),
    ],
)
async def test_message_faults(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    fault: int,
    error: type[Exception],
) -> None:
    """The car's faults become errors that say what to do; the path stays signed."""
    control = entry.runtime_data.control
    await control.async_wake(VIN)
    sim.vehicle().verifier.refuse_next(fault)
    with pytest.raises(error):
        await control.async_set_limit(VIN, {}, 80)
    assert sim.vehicle().charge_limit_soc == 50
    assert state(hass, COMMANDS_SENSOR) == "signed"
    assert await control.async_set_limit(VIN, {}, 80)
    assert sim.vehicle().charge_limit_soc == 80


async def test_reboot_and_sleep_resync(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    key: SigningKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One handshake serves many commands; a rebooted car is resynced on its own."""
    caplog.set_level(logging.DEBUG)
    control = entry.runtime_data.control
    car = sim.vehicle()
    await control.async_wake(VIN)
    assert await control.async_set_limit(VIN, {}, 60)
    assert await control.async_set_limit(VIN, {}, 70)
    assert car.verifier.handshakes == 1
    car.reboot()
    assert await control.async_set_limit(VIN, {}, 80)
    assert car.charge_limit_soc == 80
    usage = entry.runtime_data.usage
    assert billed(usage.counts)["command"] == sim.ledger.counts["command"]
    assert usage.counts[ApiCategory.HANDSHAKE] == car.verifier.handshakes
    # Neither the library's debug log nor ours names the car or shows the key.
    ours = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(("tesla_fleet_api", "custom_components"))
    ]
    assert any("signed_command" in message for message in ours)
    private_pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    for message in ours:
        assert VIN not in message
        assert private_pem.splitlines()[1] not in message


@pytest.mark.parametrize("scout_polling", [True])
@pytest.mark.parametrize("key_paired", [False])
async def test_daily_pairing_check(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    key: SigningKey,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Tesla is asked again a day later; a key added meanwhile clears the repair.

    Only while polling is on: with it off the question waits for a restart a
    day later, a refused command or the repair.
    """
    assert pairing_issue(hass) is not None
    sim.vehicle().pair_key(key.public_point)
    await advance(hass, freezer, timedelta(hours=23), step=timedelta(hours=1))
    assert fleet_status_calls(sim) == 1
    assert pairing_issue(hass) is not None
    await advance(hass, freezer, timedelta(hours=2), step=timedelta(hours=1))
    assert fleet_status_calls(sim) == 2
    assert pairing_issue(hass) is None
    assert entry.runtime_data.control.signing.path(VIN) is CommandPath.SIGNED


@pytest.mark.usefixtures("current_request_with_host")
@pytest.mark.parametrize("key_paired", [False])
async def test_own_key_file_through_reconfigure(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    tmp_path: Path,
) -> None:
    """A user's own key is checked before it is stored, then signs the commands."""
    assert state(hass, COMMANDS_SENSOR) == "key_not_paired"
    own_private, own_public = new_key_pair()
    wrong_curve = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    files = {
        "missing.pem": None,
        "garbage.pem": b"not a key",
        "p384.pem": wrong_curve,
        "own.pem": own_private.encode(),
    }
    for name, content in files.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)

    for name, reason in (
        ("missing.pem", "key_file_unreadable"),
        ("garbage.pem", "key_file_invalid"),
        ("p384.pem", "key_wrong_curve"),
    ):
        result = await entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_KEY_FILE: str(tmp_path / name)}
        )
        assert result["errors"] == {CONF_KEY_FILE: reason}
        assert CONF_KEY_FILE not in entry.data

    # The app registered the user's key; the car has it.
    sim.partners.register(
        DEFAULT_CLIENT_ID, REGION, APP_DOMAIN, own_public, dt_util.utcnow()
    )
    sim.vehicle().pair_key(own_public)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_KEY_FILE: str(tmp_path / "own.pem")}
    )
    assert result["type"] is FlowResultType.ABORT
    await hass.async_block_till_done()
    assert entry.data[CONF_KEY_FILE] == str(tmp_path / "own.pem")
    policy = entry.runtime_data.control.signing
    await policy.async_key_added(VIN)  # ask Tesla now rather than tomorrow
    assert state(hass, COMMANDS_SENSOR) == "signed"
    control = entry.runtime_data.control
    await control.async_wake(VIN)
    assert await control.async_set_limit(VIN, {}, 75)
    assert sim.vehicle().charge_limit_soc == 75
    # The form shows the public key of the key in use.
    result = await entry.start_reconfigure_flow(hass)
    assert result["description_placeholders"]["public_key"] == own_public.strip()


async def test_expired_message_starts_a_new_session(
    hass: HomeAssistant, entry: MockConfigEntry, sim: Simulator
) -> None:
    """A fault the library does not resync itself: one new handshake, sent again."""
    control = entry.runtime_data.control
    car = sim.vehicle()
    await control.async_wake(VIN)
    assert await control.async_set_limit(VIN, {}, 60)
    car.verifier.refuse_next(MessageFault_E.MESSAGEFAULT_ERROR_TIME_EXPIRED)
    assert await control.async_set_limit(VIN, {}, 70)
    assert car.charge_limit_soc == 70
    assert car.verifier.handshakes == 2
    # Twice in a row: given up, a later try may do better.
    car.verifier.refuse_next(MessageFault_E.MESSAGEFAULT_ERROR_TIME_EXPIRED)
    car.verifier.refuse_next(MessageFault_E.MESSAGEFAULT_ERROR_TIME_EXPIRED)
    with pytest.raises(VehicleBusyError):
        await control.async_set_limit(VIN, {}, 80)
    assert car.charge_limit_soc == 70


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ({"response": "not base64 at all!"}, FleetUnavailableError),
        ({"response": None}, FleetUnavailableError),
        ({}, FleetUnavailableError),
        (SigningDisabled(), SigningFaultError),
    ],
)
async def test_unreadable_replies(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    reply: Any,
    error: type[Exception],
) -> None:
    """A reply that is no car's message is an outage, never an unhandled error."""
    control = entry.runtime_data.control
    await control.async_wake(VIN)

    async def answer(self: Any, routable_message: str) -> Any:
        if isinstance(reply, Exception):
            raise reply
        return reply

    with (
        patch.object(VehicleFleet, "signed_command", answer),
        pytest.raises(error),
    ):
        await control.async_set_limit(VIN, {}, 80)
    assert sim.vehicle().charge_limit_soc == 50


@pytest.mark.parametrize("key_paired", [False])
async def test_pairing_repair_needs_a_loaded_entry(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """The repair aborts while the entry is not loaded or the car is gone."""
    issue = pairing_issue(hass)
    assert issue is not None
    await async_setup_component(hass, "repairs", {})
    manager = repairs_flow_manager(hass)
    assert manager is not None
    flow = repairs.PairKeyFlow(entry.entry_id, "no-such-device")
    flow.hass = hass
    assert (await flow.async_step_init())["reason"] == "entry_not_loaded"
    assert (await flow.async_step_pair())["reason"] == "entry_not_loaded"

    await hass.config_entries.async_unload(entry.entry_id)
    result = await manager.async_init(DOMAIN, data={"issue_id": issue.issue_id})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_not_loaded"
    flow = repairs.PairKeyFlow(entry.entry_id, device_id(hass, VIN))
    flow.hass = hass
    assert (await flow.async_step_domain())["reason"] == "entry_not_loaded"


@pytest.mark.usefixtures("current_request_with_host")
async def test_reconfigure_refuses_a_key_the_domain_does_not_serve(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """With the app's domain known, a key it does not serve is a form error."""
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_DOMAIN: APP_DOMAIN}
    )
    before = dict(entry.data)
    result = await entry.start_reconfigure_flow(hass)
    assert result["description_placeholders"]["domain"] == APP_DOMAIN
    with patch.object(
        config_flow, "async_check_hosted_key", return_value=KeyCheck.DIFFERS
    ) as check:
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["errors"] == {CONF_KEY_FILE: "public_key_differs"}
    assert check.call_args.args[1] == APP_DOMAIN
    assert dict(entry.data) == before
    # Unreachable from here is not held against it (Tesla may reach it).
    with patch.object(
        config_flow, "async_check_hosted_key", return_value=KeyCheck.UNREACHABLE
    ):
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.ABORT


@pytest.mark.parametrize("scout_polling", [True])
@pytest.mark.parametrize("key_paired", [False])
async def test_unanswered_pairing_check_waits_an_hour(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Tesla down at the daily question: asked again hourly, never back to back."""
    assert fleet_status_calls(sim) == 1
    await advance(hass, freezer, timedelta(hours=23), step=timedelta(hours=1))
    sim.faults.api_status = 503
    await advance(hass, freezer, timedelta(hours=3), step=timedelta(minutes=10))
    # The day is up after 24 h: then once an hour while Tesla does not answer.
    assert 2 <= fleet_status_calls(sim) <= 4
    sim.faults.api_status = None
    await advance(hass, freezer, timedelta(hours=2), step=timedelta(minutes=10))
    answered = fleet_status_calls(sim)
    await advance(hass, freezer, timedelta(hours=12), step=timedelta(hours=1))
    assert fleet_status_calls(sim) == answered  # answered: next in a day
    assert pairing_issue(hass) is not None


@pytest.mark.parametrize("scout_polling", [True])
@pytest.mark.parametrize("car", [{"command_signing": "allowed"}])
async def test_cars_that_only_allow_signing_are_asked_about_at_setup(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A car that allows signing: signed once the key is listed; no daily question."""
    assert state(hass, COMMANDS_SENSOR) == "signed"
    await advance(hass, freezer, timedelta(days=2), step=timedelta(hours=1))
    assert fleet_status_calls(sim) == 1
