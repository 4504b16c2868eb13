"""OAuth: authorize, code exchange, rotating refresh tokens, revocation."""

from __future__ import annotations

import base64
from datetime import timedelta
import hashlib
from typing import Any

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet
from yarl import URL

from homeassistant.core import HomeAssistant
from tesla_fleet_sim import (
    ALL_SCOPES,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    AccountConfig,
    ClientConfig,
    RunningSimulator,
    SimClock,
    SimConfig,
    Simulator,
    running_simulator,
)
from tesla_fleet_sim.jwt import decode, decode_unverified

from .conftest import START

REDIRECT = "https://my.home-assistant.io/redirect/oauth"


async def refresh(
    session: aiohttp.ClientSession, server: RunningSimulator, token: str, **extra: str
) -> tuple[int, dict[str, Any]]:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": token,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        **extra,
    }
    async with session.post(server.token_url, data=data) as resp:
        return resp.status, await resp.json()


async def authorize(
    session: aiohttp.ClientSession, server: RunningSimulator, **params: str
) -> aiohttp.ClientResponse:
    query = {
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid offline_access vehicle_device_data vehicle_cmds",
        "state": "xyz",
        **params,
    }
    return await session.get(server.authorize_url, params=query, allow_redirects=False)


async def exchange(
    session: aiohttp.ClientSession, server: RunningSimulator, code: str, **extra: str
) -> tuple[int, dict[str, Any]]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        **extra,
    }
    async with session.post(server.token_url, data=data) as resp:
        return resp.status, await resp.json()


async def code_from(resp: aiohttp.ClientResponse) -> str:
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    resp.release()
    return location.query["code"]


async def test_rotation_and_old_token_rejected(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    tokens: dict[str, Any],
) -> None:
    first = tokens["refresh_token"]
    status, body = await refresh(session, server, first)
    assert status == 200
    second = body["refresh_token"]
    assert second != first
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 8 * 3600
    assert body["id_token"]

    status, _body2 = await refresh(session, server, second)
    assert status == 200
    # `first` is now older than the most recently used token.
    status, err = await refresh(session, server, first)
    assert status == 401
    assert err == {
        "error": "login_required",
        "error_description": "The refresh_token is invalid",
    }
    assert [r.status for r in sim.token_requests("refresh_token")] == [200, 200, 401]
    assert sim.token_requests("authorization_code") == []
    assert sim.tokens.chains()[0].rotations == 2


async def test_grace_replay_returns_same_pair_then_chain_moves_on(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    clock: SimClock,
    tokens: dict[str, Any],
) -> None:
    first = tokens["refresh_token"]
    _, pair = await refresh(session, server, first)
    clock.advance(timedelta(hours=2))
    status, replay = await refresh(session, server, first)
    assert status == 200
    assert replay["access_token"] == pair["access_token"]
    assert replay["refresh_token"] == pair["refresh_token"]
    assert replay["expires_in"] == 6 * 3600  # what is left of the same token
    assert sim.token_requests()[-1].replay is True

    # Using the replayed pair's refresh token rotates normally...
    status, third = await refresh(session, server, replay["refresh_token"])
    assert status == 200
    assert third["refresh_token"] not in (first, pair["refresh_token"])
    # ...and then the first token is no longer the most recently used one.
    status, _ = await refresh(session, server, first)
    assert status == 401
    # The second one is now within its own grace period.
    status, again = await refresh(session, server, pair["refresh_token"])
    assert status == 200
    assert again["refresh_token"] == third["refresh_token"]


async def test_grace_expires(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    clock: SimClock,
    tokens: dict[str, Any],
) -> None:
    first = tokens["refresh_token"]
    await refresh(session, server, first)
    clock.advance(timedelta(hours=24))
    status, body = await refresh(session, server, first)
    assert status == 401
    assert body["error"] == "login_required"


async def test_refresh_token_expires_after_90_days(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    clock: SimClock,
    tokens: dict[str, Any],
) -> None:
    clock.advance(timedelta(days=90))
    status, body = await refresh(session, server, tokens["refresh_token"])
    assert (status, body["error"]) == (401, "login_required")


async def test_unknown_and_missing_refresh_token(
    session: aiohttp.ClientSession, server: RunningSimulator
) -> None:
    status, body = await refresh(session, server, "EU_nope")
    assert (status, body["error"]) == (401, "login_required")
    async with session.post(
        server.token_url,
        data={"grant_type": "refresh_token", "client_id": DEFAULT_CLIENT_ID},
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_request"


async def test_refresh_without_secret_is_accepted(
    session: aiohttp.ClientSession, server: RunningSimulator, tokens: dict[str, Any]
) -> None:
    async with session.post(
        server.token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": DEFAULT_CLIENT_ID,
        },
    ) as resp:
        assert resp.status == 200


async def test_refresh_with_wrong_client(
    session: aiohttp.ClientSession, server: RunningSimulator, tokens: dict[str, Any]
) -> None:
    status, body = await refresh(
        session, server, tokens["refresh_token"], client_secret="x"
    )
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = await refresh(
        session, server, tokens["refresh_token"], client_id="other"
    )
    assert (status, body["error"]) == (401, "invalid_client")


async def test_refresh_token_bound_to_its_client(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    config = SimConfig(clients=[ClientConfig(), ClientConfig("other", "other-secret")])
    sim = Simulator(config, clock)
    tokens = sim.issue_tokens(client_id="other")
    async with running_simulator(sim) as server:
        status, body = await refresh(session, server, tokens["refresh_token"])
    assert (status, body["error"]) == (401, "login_required")


async def test_revoke_account(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    tokens: dict[str, Any],
    car_api: VehicleFleet[TeslaFleetApi],
) -> None:
    from tesla_fleet_api.exceptions import InvalidToken

    sim.revoke_account("sim-account-1")
    status, body = await refresh(session, server, tokens["refresh_token"])
    assert (status, body["error"]) == (401, "login_required")
    # "invalid_token" maps to the library's InvalidToken (InvalidTeslemetryToken).
    with pytest.raises(InvalidToken):
        await car_api.vehicle()
    assert sim.api_requests()[-1].error == "invalid_token"
    # A fresh login after the revocation works again.
    fresh = sim.issue_tokens()
    status, _ = await refresh(session, server, fresh["refresh_token"])
    assert status == 200
    with pytest.raises(KeyError):
        sim.revoke_account("nobody")


async def test_authorize_and_exchange(
    session: aiohttp.ClientSession, server: RunningSimulator, sim: Simulator
) -> None:
    code = await code_from(await authorize(session, server))
    status, body = await exchange(session, server, code)
    assert status == 200
    claims = decode(body["access_token"], sim.tokens.secret)
    assert claims["scp"] == [
        "openid",
        "offline_access",
        "vehicle_device_data",
        "vehicle_cmds",
    ]
    assert claims["sub"] == "sim-account-1"
    assert claims["azp"] == DEFAULT_CLIENT_ID
    assert claims["ou_code"] == "EU"
    assert claims["exp"] - claims["iat"] == 8 * 3600
    assert claims["iat"] == int(START.timestamp())
    assert claims["iss"].startswith("https://")
    assert claims["aud"]
    assert "pwd" in claims["amr"]
    id_claims = decode_unverified(body["id_token"])
    assert id_claims["email"] == "driver@example.com"
    assert id_claims["aud"] == DEFAULT_CLIENT_ID

    # A code is single use.
    status, err = await exchange(session, server, code)
    assert (status, err["error"]) == (400, "invalid_grant")
    assert [r.status for r in sim.token_requests("authorization_code")] == [200, 400]


async def test_authorize_redirect_keeps_state_and_query(
    session: aiohttp.ClientSession, server: RunningSimulator
) -> None:
    resp = await authorize(session, server, redirect_uri=REDIRECT + "?x=1")
    location = URL(resp.headers["Location"])
    resp.release()
    assert location.query["state"] == "xyz"
    assert location.query["x"] == "1"
    assert location.query["code"].startswith("EU_")


async def test_authorize_without_state_and_default_scopes(
    session: aiohttp.ClientSession, server: RunningSimulator, sim: Simulator
) -> None:
    resp = await session.get(
        server.authorize_url,
        params={"client_id": DEFAULT_CLIENT_ID, "redirect_uri": REDIRECT},
        allow_redirects=False,
    )
    location = URL(resp.headers["Location"])
    resp.release()
    assert "state" not in location.query
    _, body = await exchange(session, server, location.query["code"])
    assert tuple(decode(body["access_token"], sim.tokens.secret)["scp"]) == ALL_SCOPES


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"client_id": "unknown"}, "Unknown client_id"),
        ({"redirect_uri": ""}, "Missing redirect_uri"),
        ({"response_type": "token"}, "response_type"),
        ({"login_hint": "stranger@example.com"}, "login_hint"),
    ],
)
async def test_authorize_errors(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    params: dict[str, str],
    message: str,
) -> None:
    resp = await authorize(session, server, **params)
    assert resp.status == 400
    assert resp.content_type == "text/html"
    assert message in await resp.text()


async def test_authorize_registered_redirects_only(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    config = SimConfig(clients=[ClientConfig(redirect_uris=["https://ok.example/cb"])])
    async with running_simulator(Simulator(config, clock)) as server:
        resp = await authorize(session, server)
        assert resp.status == 400
        resp = await authorize(session, server, redirect_uri="https://ok.example/cb")
        assert resp.status == 302


async def test_authorize_picks_account(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    config = SimConfig(
        accounts=[
            AccountConfig(),
            AccountConfig(sub="acct-2", email="two@example.com", vehicles=[]),
        ]
    )
    sim = Simulator(config, clock)
    async with running_simulator(sim) as server:
        code = await code_from(
            await authorize(session, server, login_hint="two@example.com")
        )
        _, body = await exchange(session, server, code)
        assert decode_unverified(body["access_token"])["sub"] == "acct-2"

        sim.authorize_account = "acct-2"
        code = await code_from(await authorize(session, server))
        _, body = await exchange(session, server, code)
        assert decode_unverified(body["access_token"])["sub"] == "acct-2"

        sim.authorize_account = "ghost"
        resp = await authorize(session, server)
        assert resp.status == 400


async def test_code_errors(
    session: aiohttp.ClientSession, server: RunningSimulator, clock: SimClock
) -> None:
    code = await code_from(await authorize(session, server))
    status, err = await exchange(
        session, server, code, redirect_uri="https://evil.example"
    )
    assert (status, err["error"]) == (400, "invalid_grant")
    status, err = await exchange(session, server, code, client_secret="wrong")
    assert (status, err["error"]) == (401, "invalid_client")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": DEFAULT_CLIENT_ID,
    }
    async with session.post(server.token_url, data=data) as resp:
        assert resp.status == 401  # the secret is required without PKCE
    clock.advance(timedelta(minutes=10))
    status, err = await exchange(session, server, code)
    assert (status, err["error"]) == (400, "invalid_grant")


async def test_code_issued_to_other_client(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    config = SimConfig(clients=[ClientConfig(), ClientConfig("other", "other-secret")])
    async with running_simulator(Simulator(config, clock)) as server:
        code = await code_from(await authorize(session, server))
        status, err = await exchange(
            session, server, code, client_id="other", client_secret="other-secret"
        )
    assert (status, err["error"]) == (400, "invalid_grant")


async def test_pkce(session: aiohttp.ClientSession, server: RunningSimulator) -> None:
    verifier = "v" * 64
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    params = {"code_challenge": challenge, "code_challenge_method": "S256"}
    code = await code_from(await authorize(session, server, **params))
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": DEFAULT_CLIENT_ID,
    }
    async with session.post(server.token_url, data=data) as resp:
        assert (resp.status, (await resp.json())["error"]) == (400, "invalid_grant")
    async with session.post(
        server.token_url, data=data | {"code_verifier": "bad"}
    ) as resp:
        assert resp.status == 400
    async with session.post(
        server.token_url, data=data | {"code_verifier": verifier}
    ) as resp:
        assert resp.status == 200

    code = await code_from(
        await authorize(session, server, code_challenge="plain-verifier")
    )
    async with session.post(
        server.token_url, data=data | {"code": code, "code_verifier": "plain-verifier"}
    ) as resp:
        assert resp.status == 200


async def test_json_token_request_and_unsupported_grant(
    session: aiohttp.ClientSession, server: RunningSimulator, tokens: dict[str, Any]
) -> None:
    async with session.post(
        server.token_url,
        json={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": DEFAULT_CLIENT_ID,
        },
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
    async with session.post(server.token_url, data={"grant_type": "password"}) as resp:
        assert (resp.status, (await resp.json())["error"]) == (
            400,
            "unsupported_grant_type",
        )


async def test_without_offline_access_no_refresh_token(
    session: aiohttp.ClientSession, server: RunningSimulator
) -> None:
    code = await code_from(
        await authorize(session, server, scope="openid vehicle_device_data")
    )
    status, body = await exchange(session, server, code)
    assert status == 200
    assert "refresh_token" not in body


async def test_issue_tokens_validation(sim: Simulator) -> None:
    with pytest.raises(KeyError):
        sim.issue_tokens(sub="nobody")
    with pytest.raises(KeyError):
        sim.issue_tokens(client_id="nobody")
    body = sim.issue_tokens(sub="sim-account-1", client_id=DEFAULT_CLIENT_ID)
    assert body["refresh_token"].startswith("EU_")
    state = sim.tokens.as_dict()
    assert state["chains"][0]["current"] == body["refresh_token"]
    assert state["access_tokens_issued"] == 1


async def test_with_home_assistant_oauth_implementation(
    hass: HomeAssistant, server: RunningSimulator, sim: Simulator
) -> None:
    """HA's LocalOAuth2Implementation talks to the simulator unmodified."""
    from homeassistant.helpers.config_entry_oauth2_flow import LocalOAuth2Implementation

    impl = LocalOAuth2Implementation(
        hass,
        "tesla_fleet",
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        server.authorize_url,
        server.token_url,
    )
    token = sim.issue_tokens()
    new = await impl.async_refresh_token(token)
    assert new["refresh_token"] != token["refresh_token"]
    assert new["expires_in"] == 8 * 3600
    with pytest.raises(aiohttp.ClientResponseError) as err:
        await impl.async_refresh_token(token | {"refresh_token": "EU_unknown"})
    assert err.value.status == 401


async def test_ha_code_exchange(
    hass: HomeAssistant, server: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    from homeassistant.helpers.config_entry_oauth2_flow import LocalOAuth2Implementation

    impl = LocalOAuth2Implementation(
        hass,
        "tesla_fleet",
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        server.authorize_url,
        server.token_url,
    )
    code = await code_from(await authorize(session, server))
    token = await impl.async_resolve_external_data(
        {"code": code, "state": {"redirect_uri": REDIRECT}}
    )
    assert token["token_type"] == "Bearer"


def test_manual_clock_fixture_is_manual(clock: SimClock) -> None:
    assert clock.is_manual


async def test_token_signed_with_our_key_but_never_issued(
    session: aiohttp.ClientSession, server: RunningSimulator, sim: Simulator
) -> None:
    from tesla_fleet_sim import jwt

    forged = jwt.encode({"sub": "sim-account-1", "exp": 2**40}, sim.tokens.secret)
    async with session.get(
        f"{server.url}/api/1/vehicles", headers={"Authorization": f"Bearer {forged}"}
    ) as resp:
        assert (resp.status, await resp.json()) == (401, {"error": "invalid_token"})


async def test_revoke_only_touches_that_account(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    config = SimConfig(
        accounts=[AccountConfig(), AccountConfig(sub="acct-2", vehicles=[])]
    )
    sim = Simulator(config, clock)
    mine = sim.issue_tokens("sim-account-1")
    theirs = sim.issue_tokens("acct-2")
    sim.revoke_account("acct-2")
    async with running_simulator(sim) as server:
        status, _ = await refresh(session, server, mine["refresh_token"])
        assert status == 200
        status, _ = await refresh(session, server, theirs["refresh_token"])
        assert status == 401
        headers = {"Authorization": f"Bearer {mine['access_token']}"}
        async with session.get(f"{server.url}/api/1/vehicles", headers=headers) as resp:
            assert resp.status == 200
