"""Cars that need signed commands while nothing here can sign them.

The entry points at a key file that cannot be used (and no Commands URL is
set), so commands cannot be signed. No unsigned command ever goes to a car
that Tesla lists as needing signing then: it is refused before any request, a special charging session fails at its send without waking the
car, and a repair issue per car says what to do. Tesla's own refusals of an
unsigned command (403, or unsigned_cmds_hardlocked) end the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
import json
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.tesla_scout_worker.const import (
    CONF_BATTERY_CAPACITY,
    CONF_COMMANDS_URL,
    CONF_KEY_FILE,
    CONF_OFF_PEAK_ACTION,
    CONF_OFF_PEAK_LIMIT,
    DOMAIN,
)
from custom_components.tesla_scout_worker.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.tesla_scout_worker.errors import SigningRequiredError
from custom_components.tesla_scout_worker.roster import VehicleRoster
from custom_components.tesla_scout_worker.sessions import SessionState
from custom_components.tesla_scout_worker.signing import (
    CommandPath,
    SigningPolicy,
    command_path,
)
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from tesla_fleet_sim import Simulator
from tesla_fleet_sim.config import DEFAULT_WORK

from .common import (
    advance,
    advance_to,
    command_requests,
    device_id,
    state,
    stored_sessions,
)
from .session_common import (
    CAPACITY,
    CAR,
    CLEANUP_AT,
    COMMANDS_SENSOR,
    SEND_AT,
    VIN,
    manager,
    plan,
    plan_and_send,
    session_sim,
    set_up_entry,
    state_of,
)

VEHICLE_NAME = "Sim Model 3"
PROXY_URL = "https://tesla-http-proxy.local:4443"

pytestmark = pytest.mark.usefixtures("warsaw", "fast_wait")


@pytest.fixture
def car() -> dict[str, Any]:
    """The car's signing settings (tests override)."""
    return {"command_signing": "required"}


@pytest.fixture
def sim(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, car: dict[str, Any]
) -> Simulator:
    """A car at 41 % with a 50 % limit; 74.3 kWh, 11 kW (02:19-06:00 for 90 %)."""
    return session_sim(freezer, **car)


@pytest.fixture
def entry_data() -> dict[str, Any]:
    """Extra config entry data (tests override, e.g. a Commands URL)."""
    return {}


@pytest.fixture
def config_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry, tmp_path: Path
) -> MockConfigEntry:
    """The account's entry with a signing key file that cannot be read."""
    data = {**config_entry.data, CONF_KEY_FILE: str(tmp_path / "missing.pem")}
    hass.config_entries.async_update_entry(config_entry, data=data)
    return config_entry


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    entry_data: dict[str, Any],
) -> MockConfigEntry:
    """The entry, set up with the car's capacity in the options."""
    return await set_up_entry(
        hass,
        config_entry,
        setup_entry,
        data={**config_entry.data, **entry_data},
        options={CONF_BATTERY_CAPACITY: CAPACITY},
    )


def signing(entry: MockConfigEntry) -> SigningPolicy:
    policy: SigningPolicy = entry.runtime_data.control.signing
    return policy


def signing_issue_id(hass: HomeAssistant) -> str:
    return f"signing_required_{device_id(hass, VIN)}"


def signing_issue(hass: HomeAssistant) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, signing_issue_id(hass))


def assert_signing_issue(hass: HomeAssistant) -> None:
    """The car's signing repair is there; it names the car, never its VIN."""
    issue = signing_issue(hass)
    assert issue is not None
    assert issue.translation_key == "signing_required"
    assert issue.translation_placeholders == {"vehicle": VEHICLE_NAME}
    assert not issue.is_fixable
    assert issue.is_persistent
    assert issue.severity is ir.IssueSeverity.ERROR
    assert VIN not in issue.issue_id
    assert VIN not in json.dumps(issue.to_json(), default=str)


def test_command_path() -> None:
    """A proxy wins; signed where a key is paired; REST only where allowed."""
    assert command_path("required", proxy=True) is CommandPath.PROXY
    assert command_path("required", proxy=False) is CommandPath.SIGNING_REQUIRED
    assert command_path("allowed", proxy=False) is CommandPath.UNSIGNED
    assert command_path("off", proxy=False) is CommandPath.UNSIGNED
    assert command_path(None, proxy=False) is CommandPath.UNSIGNED
    # With a key to sign with: what Tesla says of the pairing decides.
    signer = {"proxy": False, "can_sign": True}
    assert command_path("required", **signer) is CommandPath.SIGNED
    assert command_path("required", **signer, paired=True) is CommandPath.SIGNED
    assert (
        command_path("required", **signer, paired=False) is CommandPath.KEY_NOT_PAIRED
    )
    assert command_path("allowed", **signer, paired=True) is CommandPath.SIGNED
    assert command_path("allowed", **signer, paired=False) is CommandPath.UNSIGNED
    assert command_path("allowed", **signer) is CommandPath.UNSIGNED
    assert command_path("off", **signer, paired=True) is CommandPath.UNSIGNED
    assert command_path(None, **signer, paired=True) is CommandPath.UNSIGNED
    assert command_path("required", proxy=True, can_sign=True) is CommandPath.PROXY


@pytest.mark.parametrize(
    ("car", "entry_data", "path"),
    [
        ({"command_signing": "required"}, {}, "signing_required"),
        ({"command_signing": "allowed"}, {}, "unsigned"),
        ({"command_signing": "off"}, {}, "unsigned"),
        ({"command_signing": "required"}, {CONF_COMMANDS_URL: PROXY_URL}, "proxy"),
        ({"command_signing": "off"}, {CONF_COMMANDS_URL: PROXY_URL}, "proxy"),
    ],
)
async def test_commands_sensor_and_diagnostics(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    car: dict[str, Any],
    path: str,
) -> None:
    """The record keeps the listed signing; the sensor and diagnostics say the path."""
    signing_listed = sim.vehicle().config.command_signing
    assert entry.runtime_data.vehicles[VIN].command_signing == signing_listed
    assert state(hass, COMMANDS_SENSOR) == path
    diag = await async_get_config_entry_diagnostics(hass, entry)
    assert diag["vehicles"][0]["commands"] == {
        "signing": signing_listed,
        "path": path,
        "key_paired": None,  # nothing here can sign: Tesla is not asked
    }
    # Knowing it costs nothing: no issue yet, nothing sent.
    assert signing_issue(hass) is None
    assert command_requests(sim) == []


async def test_session_fails_at_send_without_waking(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Listed as required, no proxy: refused before the wake; no retries."""
    await plan(hass)
    reads = len(sim.api_requests("data"))  # the scout's first check
    await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.FAILED
    assert session.reason == "signing_required"
    assert not session.changed_car
    assert sim.api_requests("wake") == []
    assert len(sim.api_requests("data")) == reads
    assert command_requests(sim) == []
    assert sim.vehicle().wake_count == 0
    assert sim.vehicle().charge_limit_soc == 50
    (stored,) = stored_sessions(hass_storage, entry)["sessions"]
    assert (stored["state"], stored["reason"]) == ("failed", "signing_required")
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    assert issue is not None
    assert issue.translation_key == "session_failed_signing_required"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["vehicle"] == VEHICLE_NAME
    assert_signing_issue(hass)
    assert state(hass, f"sensor.{CAR}_special_charging") == "failed"

    # Nothing is tried again later.
    await advance_to(hass, freezer, CLEANUP_AT + timedelta(hours=7))
    assert sim.api_requests("wake") == []
    assert command_requests(sim) == []


@pytest.mark.parametrize(
    ("car", "status"),
    [
        pytest.param({"command_signing": "allowed"}, 403, id="forbidden"),
        pytest.param(
            {"command_signing": "allowed", "unsigned_rejection": "hardlocked"},
            200,
            id="hardlocked",
        ),
        pytest.param(
            {"command_signing": "allowed", "charge_limit_soc": 90},
            403,
            id="limit-already-set",
        ),
    ],
)
async def test_car_refuses_unsigned_command_at_send(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    status: int,
) -> None:
    """Listed as allowed, but the car refuses: one refused command, then FAILED.

    The record turns to required, so nothing else is sent to the car; the
    session knows nothing on the car was changed.
    """
    assert state(hass, COMMANDS_SENSOR) == "unsigned"
    await plan(hass)
    sim.vehicle().config.command_signing = "required"  # changed since the list
    limit_before = sim.vehicle().charge_limit_soc
    await advance_to(hass, freezer, SEND_AT)
    (session,) = manager(entry).sessions.values()
    assert session.state is SessionState.FAILED
    assert session.reason == "signing_required"
    assert not session.changed_car
    assert session.leftovers == ()
    (refused,) = command_requests(sim)
    assert refused.status == status
    assert len(sim.api_requests("wake")) == 1
    assert sim.vehicle().charge_limit_soc == limit_before
    assert sim.vehicle().charge_schedules == []
    assert entry.runtime_data.vehicles[VIN].command_signing == "required"
    assert state(hass, COMMANDS_SENSOR) == "signing_required"
    (stored,) = stored_sessions(hass_storage, entry)["sessions"]
    assert (stored["state"], stored["reason"]) == ("failed", "signing_required")
    assert not stored["limit_set"]
    assert not stored["schedule_pending"]
    assert_signing_issue(hass)

    await advance_to(hass, freezer, CLEANUP_AT + timedelta(hours=7))
    assert len(command_requests(sim)) == 1
    assert len(sim.api_requests("wake")) == 1


async def test_cancel_when_the_car_cannot_be_put_back(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Sent while allowed; the car then needs signing: cancel raises the error.

    The session fails at once (no cleanup retries that would wake the car),
    its restore issue names what is still on the car, and Restore now says
    why it cannot work.
    """
    sim.vehicle().config.command_signing = "allowed"
    signing(entry).vehicles[VIN].command_signing = "allowed"
    session = await plan_and_send(hass, freezer, entry)
    assert session.state is SessionState.ACTIVE
    assert sim.vehicle().charge_limit_soc == 90
    sent = len(command_requests(sim))

    sim.vehicle().config.command_signing = "required"
    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            DOMAIN,
            "cancel_special_charging",
            {"session_id": session.id},
            blocking=True,
        )
    assert raised.value.translation_key == "signing_required"
    assert raised.value.translation_domain == DOMAIN
    assert state_of(session) is SessionState.FAILED
    assert session.reason == "signing_required"
    # One refused limit command; the schedule removal was not even sent.
    refused = command_requests(sim)[sent:]
    assert [(r.path.rsplit("/", 1)[-1], r.status) for r in refused] == [
        ("set_charge_limit", 403)
    ]
    assert sim.vehicle().charge_limit_soc == 90
    assert session.leftovers == ("limit", "schedule")
    issue = ir.async_get(hass).async_get_issue(DOMAIN, f"session_failed_{session.id}")
    assert issue is not None
    assert issue.translation_key == "session_restore_both"
    assert_signing_issue(hass)
    wakes = len(sim.api_requests("wake"))

    await advance(hass, freezer, timedelta(hours=2), step=timedelta(minutes=10))
    assert len(sim.api_requests("wake")) == wakes

    # Restore now is refused before waking the car.
    assert await async_setup_component(hass, "repairs", {})
    flows = repairs_flow_manager(hass)
    assert flows is not None
    flow = await flows.async_init(DOMAIN, data={"issue_id": issue.issue_id})
    result = await flows.async_configure(flow["flow_id"], {})
    assert result["type"] == "abort"
    assert result["reason"] == "restore_failed"
    assert len(sim.api_requests("wake")) == wakes
    assert len(command_requests(sim)) == sent + 1


async def test_repair_goes_away_with_a_proxy(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """A Commands URL set in the reconfigure step reloads: the repair is gone."""
    with pytest.raises(SigningRequiredError):
        await entry.runtime_data.control.async_set_limit(VIN, {}, 90)
    assert command_requests(sim) == []
    assert_signing_issue(hass)

    # The issue outlives a restart (it is persistent) while it still applies.
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert_signing_issue(hass)

    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_COMMANDS_URL: PROXY_URL}
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert signing_issue(hass) is None
    assert state(hass, COMMANDS_SENSOR) == "proxy"


@pytest.mark.parametrize("scout_polling", [True])
async def test_repair_goes_away_when_the_car_no_longer_requires(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """The vehicle list read again says allowed: record, sensor and repair follow."""
    with pytest.raises(SigningRequiredError):
        await entry.runtime_data.control.async_ensure_off_peak(
            VIN, {}, limit=80, start=0, end=0, home=(0.0, 0.0, 0.1)
        )
    assert command_requests(sim) == []
    assert_signing_issue(hass)

    sim.vehicle().config.command_signing = "allowed"
    await VehicleRoster(hass, entry)._async_relist()
    await hass.async_block_till_done()
    assert entry.runtime_data.vehicles[VIN].command_signing == "allowed"
    assert state(hass, COMMANDS_SENSOR) == "unsigned"
    assert signing_issue(hass) is None

    # Listed as required again: the sensor follows, the repair waits for a command.
    sim.vehicle().config.command_signing = "required"
    await VehicleRoster(hass, entry)._async_relist()
    await hass.async_block_till_done()
    assert state(hass, COMMANDS_SENSOR) == "signing_required"
    assert signing_issue(hass) is None


async def test_removing_the_entry_removes_its_repairs(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """Deleting the account deletes the signing repairs of its cars."""
    with pytest.raises(SigningRequiredError):
        await entry.runtime_data.control.async_set_limit(VIN, {}, 90)
    issue_id = signing_issue_id(hass)
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_refusal_for_an_unknown_car_or_through_a_proxy(
    hass: HomeAssistant, entry: MockConfigEntry
) -> None:
    """Refusals for cars not on the account change nothing; a proxy gets no repair."""
    policy = signing(entry)
    policy.async_refused("5YJ3E7EB0KF999999")
    policy.async_check("5YJ3E7EB0KF999999")  # unknown: plain REST is tried
    policy.proxy = True
    policy.vehicles[VIN].command_signing = "allowed"
    policy.async_refused(VIN)
    assert policy.vehicles[VIN].command_signing == "required"
    assert policy.path(VIN) is CommandPath.PROXY
    assert signing_issue(hass) is None


@pytest.mark.usefixtures("scout")
@pytest.mark.parametrize(
    "car", [{"command_signing": "required", "location": DEFAULT_WORK}]
)
async def test_off_peak_action_is_not_sent_or_retried(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: Simulator,
    config_entry: MockConfigEntry,
    setup_entry: Callable[[], Awaitable[MockConfigEntry]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Arriving home plugged in: no command, the repair, no retry at later checks."""
    hass.config_entries.async_update_entry(
        config_entry, options={CONF_OFF_PEAK_ACTION: True, CONF_OFF_PEAK_LIMIT: 70}
    )
    await setup_entry()
    assert state(hass, COMMANDS_SENSOR) == "signing_required"
    sim.vehicle().drive_home(timedelta(minutes=30), plug_in_on_arrival=True)
    await advance(hass, freezer, timedelta(hours=3), step=timedelta(minutes=1))
    assert sim.vehicle().arrivals
    assert state(hass, f"binary_sensor.{CAR}_at_home") == "on"
    assert state(hass, f"binary_sensor.{CAR}_plugged_in") == "on"
    assert command_requests(sim) == []
    assert sim.vehicle().charge_limit_soc == 50
    assert_signing_issue(hass)
    refused = [r for r in caplog.records if "off-peak action" in r.getMessage().lower()]
    assert len(refused) == 1
    assert "signed commands" in refused[0].getMessage()
    assert VIN not in caplog.text
