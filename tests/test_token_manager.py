"""The worker: token manager against the simulator with a controlled clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
import logging
from typing import Any

from aiohttp import ClientSession
from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.tesla_scout_worker import token_manager as tm
from custom_components.tesla_scout_worker.const import CONF_TOKEN, DOMAIN
from custom_components.tesla_scout_worker.token_manager import (
    EVENT_REAUTH_REQUIRED,
    EVENT_REFRESH_FAILED,
    RefreshRateLimitedError,
    TeslaTokenManager,
    TokenStatus,
    TokenUnavailableError,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import issue_registry as ir
from tesla_fleet_sim import Simulator

from .common import reauth_flows, state, tick
from .conftest import CLIENT_ID, CLIENT_SECRET

LIFETIME = timedelta(hours=8)


def manager(entry: MockConfigEntry) -> TeslaTokenManager:
    """Return the entry's token manager."""
    tokens: TeslaTokenManager = entry.runtime_data.tokens
    return tokens


def status_of(tokens: TeslaTokenManager) -> TokenStatus:
    """Return the status now.

    A call rather than ``tokens.status``: mypy keeps what an earlier
    ``assert tokens.status is ...`` narrowed across the ticks that move it on.
    """
    return tokens.status


def refreshes(sim: Simulator) -> int:
    """Count refresh grants the simulator answered."""
    return len(sim.token_requests("refresh_token"))


async def test_single_flight(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """100 concurrent callers at expiry cause exactly one token request."""
    tokens = manager(loaded_entry)
    old = tokens.access_token
    freezer.tick(LIFETIME - timedelta(seconds=30))  # timers not run: no proactive

    results = await asyncio.gather(
        *(tokens.async_get_access_token() for _ in range(100))
    )

    assert refreshes(sim) == 1
    assert set(results) == {tokens.access_token}
    assert tokens.access_token != old
    assert tokens.stats.refresh_count == 1
    assert tokens.status is TokenStatus.VALID


async def test_concurrent_failures_share_one_request(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """Waiters reuse a failed attempt's outcome instead of storming the server."""
    tokens = manager(loaded_entry)
    freezer.tick(LIFETIME + timedelta(minutes=1))  # expired
    sim.faults.token_endpoint_status = 503

    results = await asyncio.gather(
        *(tokens.async_get_access_token() for _ in range(50)),
        return_exceptions=True,
    )

    assert all(isinstance(r, TokenUnavailableError) for r in results)
    assert refreshes(sim) == 1
    assert tokens.status is TokenStatus.EXPIRED
    assert not reauth_flows(hass)


async def test_deadlock_scenario_recovers_in_one_call(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """Replay of the seed: < 5 min left, limiter active, callers every 15 s.

    The old design blocked every retry for a minute while the token expired.
    Here a reactive caller keeps the still-valid token, and the first caller
    under a minute bypasses the limiter and gets a fresh token.
    """
    tokens = manager(loaded_entry)
    client = loaded_entry.runtime_data.client
    first = tokens.access_token
    freezer.tick(LIFETIME - timedelta(minutes=4, seconds=50))
    sim.faults.token_endpoint_status = 503  # Tesla's token endpoint is struggling

    # Reactive attempt fails: the caller still gets the valid token.
    assert await tokens.async_get_access_token() == first
    assert refreshes(sim) == 1

    # Callers every 15 s while the limiter is active cause no token requests;
    # only the manager's own backoff retries (30 s, then 60 s) reach Tesla.
    for _ in range(3):
        freezer.tick(timedelta(seconds=15))
        assert await tokens.async_get_access_token() == first
    assert tokens.stats.rate_limited_count >= 2
    assert refreshes(sim) <= 2

    # Tesla recovers; under one minute left the next caller bypasses the limiter.
    sim.faults.token_endpoint_status = None
    freezer.tick(timedelta(minutes=3, seconds=15))
    assert tokens.remaining < tm.EMERGENCY_WINDOW
    before = refreshes(sim)
    vehicles = await client.async_list_vehicles()
    assert vehicles
    assert refreshes(sim) == before + 1
    assert tokens.access_token != first
    assert not any(r.expired for r in sim.api_requests())


async def test_proactive_refresh_once_per_lifetime(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """The scheduled tier refreshes 30 min before expiry, and not more often."""
    tokens = manager(loaded_entry)
    await tick(hass, freezer, LIFETIME - timedelta(minutes=31))
    assert refreshes(sim) == 0
    await tick(hass, freezer, timedelta(minutes=1, seconds=1))
    assert refreshes(sim) == 1
    assert tokens.stats.last_tier == "proactive"
    assert tokens.remaining > LIFETIME - timedelta(minutes=1)

    # A day in 10-minute steps: one refresh per 7.5 h.
    for _ in range(6 * 24):
        await tick(hass, freezer, timedelta(minutes=10))
    assert refreshes(sim) == 4


async def test_rotated_token_persisted_before_use(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
) -> None:
    """The new refresh token is on disk when the new access token is handed out."""
    tokens = manager(loaded_entry)
    key = f"{DOMAIN}.tokens.{loaded_entry.entry_id}"
    seen: list[str] = []
    original = tokens._async_persist

    async def spy(new: dict[str, Any], parent: str) -> None:
        await original(new, parent)
        seen.append(hass_storage[key]["data"]["token"]["refresh_token"])

    tokens._async_persist = spy  # type: ignore[method-assign]
    used = tokens._token["refresh_token"]
    freezer.tick(LIFETIME - timedelta(seconds=20))
    await tokens.async_get_access_token()
    assert seen == [tokens._token["refresh_token"]]
    assert loaded_entry.data[CONF_TOKEN]["refresh_token"] == seen[0]
    assert hass_storage[key]["data"]["parent"] == tm.fingerprint(used)
    assert used not in str(hass_storage[key])


async def test_crash_before_persist_recovers_through_grace(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """HA dies after Tesla rotated the token but before we saved it."""
    tokens = manager(loaded_entry)
    used_refresh = loaded_entry.data[CONF_TOKEN]["refresh_token"]

    async def crash(new: dict[str, Any], parent: str) -> None:
        raise asyncio.CancelledError  # the process dies here

    tokens._async_persist = crash  # type: ignore[method-assign]
    freezer.tick(LIFETIME - timedelta(seconds=20))
    with pytest.raises(asyncio.CancelledError):
        await tokens.async_get_access_token()
    assert refreshes(sim) == 1
    assert loaded_entry.data[CONF_TOKEN]["refresh_token"] == used_refresh

    # Restart: the entry still holds the used token; Tesla's grace replays it.
    await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert refreshes(sim) == 2
    assert not reauth_flows(hass)
    new_tokens = manager(loaded_entry)
    assert new_tokens.status is TokenStatus.VALID
    assert loaded_entry.data[CONF_TOKEN]["refresh_token"] != used_refresh
    # The chain goes on normally from the replayed pair.
    freezer.tick(LIFETIME - timedelta(seconds=20))
    await new_tokens.async_get_access_token()
    assert refreshes(sim) == 3
    assert not reauth_flows(hass)


async def test_crash_before_entry_save_recovers_from_store(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """The rotated token reached our store but not the config entry."""
    tokens = manager(loaded_entry)
    used_refresh = loaded_entry.data[CONF_TOKEN]["refresh_token"]
    tokens._update_entry = lambda: None  # type: ignore[method-assign]
    freezer.tick(LIFETIME - timedelta(seconds=20))
    await tokens.async_get_access_token()
    rotated = tokens._token["refresh_token"]
    assert loaded_entry.data[CONF_TOKEN]["refresh_token"] == used_refresh

    await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.data[CONF_TOKEN]["refresh_token"] == rotated
    assert refreshes(sim) == 1  # nothing was replayed
    assert manager(loaded_entry).status is TokenStatus.VALID


def token_endpoint_down(sim: Simulator, entry: MockConfigEntry) -> None:
    """Tesla's token endpoint answers 503."""
    sim.faults.token_endpoint_status = 503


def account_revoked(sim: Simulator, entry: MockConfigEntry) -> None:
    """The account's refresh chain was revoked (login_required)."""
    sim.revoke_account(entry.unique_id)


@pytest.mark.parametrize(
    ("fault", "http_status", "status", "reauth_error"),
    [
        pytest.param(
            token_endpoint_down,
            503,
            TokenStatus.EXPIRING,
            None,
            id="token_endpoint_503-keeps_token",
        ),
        pytest.param(
            account_revoked,
            401,
            TokenStatus.REAUTH_REQUIRED,
            "login_required",
            id="revoked-reauth",
        ),
    ],
)
async def test_failed_proactive_refresh(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
    issue_registry: ir.IssueRegistry,
    fault: Callable[[Simulator, MockConfigEntry], None],
    http_status: int,
    status: TokenStatus,
    reauth_error: str | None,
) -> None:
    """The scheduled refresh fails: its final status, reauth only if the chain died.

    Listeners hear the final status of a failed refresh, not "refreshing".
    A transient failure keeps the still-valid token and starts no reauth;
    invalid_grant/login_required → reauth flow, repair issue and events.
    """
    transient = reauth_error is None
    reauth_events = async_capture_events(hass, EVENT_REAUTH_REQUIRED)
    failed_events = async_capture_events(hass, EVENT_REFRESH_FAILED)
    tokens = manager(loaded_entry)
    old = tokens.access_token
    heard: list[TokenStatus] = []
    tokens.async_add_listener(lambda: heard.append(tokens.status))
    fault(sim, loaded_entry)
    await tick(hass, freezer, LIFETIME - timedelta(minutes=29))

    assert [r.status for r in sim.token_requests("refresh_token")] == [http_status]
    assert tokens.status is status
    assert heard[0] is TokenStatus.REFRESHING
    assert heard[-1] is status
    assert state(hass, "sensor.driver_example_com_token_status") == str(status)
    assert len(reauth_flows(hass)) == (0 if transient else 1)
    issue = issue_registry.async_get_issue(
        DOMAIN, f"reauth_required_{loaded_entry.entry_id}"
    )
    if transient:
        assert issue is None
    else:
        assert issue is not None
        assert issue.translation_placeholders == {
            "title": loaded_entry.title,
            "error": reauth_error,
        }
    assert (
        issue_registry.async_get_issue(
            DOMAIN, f"refresh_chain_conflict_{loaded_entry.entry_id}"
        )
        is None
    )
    assert [e.data["error"] for e in reauth_events] == (
        [] if transient else [reauth_error]
    )
    assert failed_events[0].data["transient"] is transient
    if transient:
        assert await tokens.async_get_access_token() == old
        return
    with pytest.raises(ConfigEntryAuthFailed):
        await tokens.async_get_access_token()
    # No more token requests after the chain is known dead.
    await tick(hass, freezer, timedelta(hours=3))
    assert refreshes(sim) == 1


async def test_transient_failures_never_reauth(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """A 2 h token endpoint outage: backoff, no reauth, recovery after."""
    tokens = manager(loaded_entry)
    failed_events = async_capture_events(hass, EVENT_REFRESH_FAILED)
    sim.faults.token_endpoint_status = 503
    await tick(hass, freezer, LIFETIME - timedelta(minutes=29))
    assert refreshes(sim) == 1
    assert tokens.status is TokenStatus.EXPIRING

    for _ in range(24):  # two hours in 5-minute steps
        await tick(hass, freezer, timedelta(minutes=5))
    attempts = refreshes(sim)
    # Backoff: 30 s, 1, 2, 5 min, then every 10 min; far fewer than one a minute.
    assert 8 <= attempts <= 16
    assert status_of(tokens) is TokenStatus.EXPIRED
    assert not reauth_flows(hass)
    assert all(e.data["transient"] for e in failed_events)
    assert tokens.stats.failed_count == attempts

    sim.faults.token_endpoint_status = None
    await tick(hass, freezer, timedelta(minutes=10))
    assert status_of(tokens) is TokenStatus.VALID
    assert refreshes(sim) == attempts + 1
    assert not reauth_flows(hass)


async def test_token_endpoint_timeout(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
) -> None:
    """A hanging token endpoint counts as transient and keeps the token."""
    tokens = manager(loaded_entry)
    old = tokens.access_token
    sim.faults.token_endpoint_hang = True
    freezer.tick(LIFETIME - timedelta(minutes=4))
    caller = hass.async_create_task(tokens.async_get_access_token())
    while not sim.token_requests("refresh_token"):  # noqa: ASYNC110 (plain log)
        await asyncio.sleep(0)  # the request reaches the hanging endpoint
    freezer.tick(timedelta(seconds=tm.REFRESH_TIMEOUT + 1))
    async_fire_time_changed(hass)  # the refresh timeout fires
    assert await caller == old
    assert tokens.stats.last_error == "TimeoutError"
    assert tokens.status is TokenStatus.EXPIRING
    assert not reauth_flows(hass)

    # The endpoint answers again: the scheduled retry gets a new token.
    sim.faults.token_endpoint_hang = False
    await tick(hass, freezer, timedelta(seconds=tm.RETRY_DELAYS[0] + 1))
    assert tokens.access_token != old
    assert not reauth_flows(hass)


async def test_401_refreshes_and_retries_once(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """An API 401 forces one refresh, then the call succeeds."""
    client = loaded_entry.runtime_data.client
    before = len(sim.api_requests("state_check"))
    sim.faults.fail_next("/api/1/vehicles", 401)
    assert await client.async_list_vehicles()
    assert refreshes(sim) == 1
    assert len(sim.api_requests("state_check")) == before + 2
    assert manager(loaded_entry).stats.last_tier == "unauthorized"


async def test_conflict_after_our_refresh(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim_url: str,
    sim: Simulator,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Another client spends our fresh refresh token: conflict issue + reauth."""
    tokens = manager(loaded_entry)
    await tokens.async_refresh(emergency=True)
    # A second program holding a copy of our token refreshes twice.
    second = await refresh_as_other_client(sim_url, tokens._token["refresh_token"])
    await refresh_as_other_client(sim_url, second)
    freezer.tick(timedelta(minutes=2))
    with pytest.raises(ConfigEntryAuthFailed):
        await tokens.async_refresh(emergency=True)
    assert issue_registry.async_get_issue(
        DOMAIN, f"refresh_chain_conflict_{loaded_entry.entry_id}"
    )
    await hass.async_block_till_done()
    assert len(reauth_flows(hass)) == 1


async def refresh_as_other_client(sim_url: str, refresh_token: str) -> str:
    """Use a refresh token the way a second program would; return the new one."""
    form = {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
    }
    async with (
        ClientSession() as session,
        session.post(f"{sim_url}/oauth2/v3/token", data=form) as resp,
    ):
        assert resp.status == 200
        return str((await resp.json())["refresh_token"])


async def test_outside_change_detected(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A token written into the entry by something else raises a repair issue."""
    tokens = manager(loaded_entry)
    other = dict(loaded_entry.data[CONF_TOKEN])
    other.update(sim.issue_tokens())
    hass.config_entries.async_update_entry(
        loaded_entry, data={**loaded_entry.data, CONF_TOKEN: other}
    )
    assert await tokens.async_get_access_token() == other["access_token"]
    assert issue_registry.async_get_issue(
        DOMAIN, f"refresh_chain_conflict_{loaded_entry.entry_id}"
    )


async def test_manual_refresh_rate_limited(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim: Simulator
) -> None:
    """A manual refresh is limited to one a minute; emergency bypasses it."""
    tokens = manager(loaded_entry)
    await tokens.async_refresh()
    with pytest.raises(RefreshRateLimitedError):
        await tokens.async_refresh()
    await tokens.async_refresh(emergency=True)
    assert refreshes(sim) == 2
    assert tokens.stats.rate_limited_count == 1


async def test_no_secrets_in_logs(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    loaded_entry: MockConfigEntry,
    sim: Simulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refreshes, failures and API calls never log a token or a VIN."""
    caplog.set_level(logging.DEBUG)
    tokens = manager(loaded_entry)
    secrets = {tokens.access_token, tokens._token["refresh_token"]}
    sim.faults.fail_next("/oauth2/v3/token", 503)
    await tick(hass, freezer, LIFETIME - timedelta(minutes=29))
    await tick(hass, freezer, timedelta(minutes=1))
    await loaded_entry.runtime_data.client.async_list_vehicles()
    secrets |= {tokens.access_token, tokens._token["refresh_token"]}
    vin = sim.vehicle().vin
    assert refreshes(sim) == 2
    assert caplog.records
    for record in caplog.records:
        if record.name.startswith("pytest_homeassistant_custom_component"):
            continue  # the test harness's own storage mock dumps what it saves
        text = record.getMessage()
        for secret in secrets:
            assert secret not in text
        assert vin not in text
