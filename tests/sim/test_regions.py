"""Regions (421), partner registration (412, partner_accounts) and refused scopes."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.exceptions import Forbidden

from tesla_fleet_sim import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_VIN,
    AccountConfig,
    ClientConfig,
    RunningSimulator,
    SimClock,
    SimConfig,
    Simulator,
    running_simulator,
)
from tesla_fleet_sim.jwt import decode
from tesla_fleet_sim.partners import (
    new_key_pair,
    normalize_domain,
    public_key_hex,
    public_key_url,
)
from tesla_fleet_sim.regions import audience_region, split_region

DOMAIN = "app.example.org"


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str | None = None,
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, headers=headers, **kwargs) as resp:
        return resp.status, await resp.json()


async def partner_token(
    session: aiohttp.ClientSession, token_url: str, audience: str
) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "audience": audience,
        "scope": "openid vehicle_device_data vehicle_cmds offline_access",
    }
    status, body = await call(session, "POST", token_url, data=form)
    assert status == 200, body
    assert set(body) == {"access_token", "expires_in", "token_type"}
    return str(body["access_token"])


def unregistered(region: str = "eu") -> SimConfig:
    return SimConfig(
        clients=[ClientConfig(registered_regions=())],
        accounts=[AccountConfig(region=region)],
    )


async def test_every_region_is_served(
    server: RunningSimulator,
    tokens: dict[str, Any],
    session: aiohttp.ClientSession,
    sim: Simulator,
) -> None:
    token = tokens["access_token"]
    status, _ = await call(
        session, "GET", server.region_url("eu") + "/api/1/vehicles", token
    )
    assert status == 200
    status, body = await call(
        session, "GET", server.region_url("na") + "/api/1/vehicles", token
    )
    assert status == 421
    assert body == {
        "response": None,
        "error": f"user out of region, use base URL: {server.url}/eu",
        "error_description": "",
    }
    assert sim.api_requests()[-1].region == "na"
    for region in ("na", "eu", "cn"):
        status, body = await call(
            session, "GET", server.region_url(region) + "/api/1/users/region", token
        )
        assert (status, body["response"]["fleet_api_base_url"]) == (
            200,
            f"{server.url}/eu",
        )


async def test_root_is_the_server_region(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    sim = Simulator(SimConfig(server_region="na"), clock)
    token = sim.issue_tokens()["access_token"]
    async with running_simulator(sim) as server:
        status, _ = await call(session, "GET", server.url + "/api/1/products", token)
        assert status == 421
        api = TeslaFleetApi(session, access_token=token, server=server.region_url("eu"))
        assert (await api.products())["count"] == 1


async def test_unregistered_app_gets_412(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    sim = Simulator(unregistered(), clock)
    token = sim.issue_tokens()["access_token"]
    async with running_simulator(sim) as server:
        for path in ("/api/1/vehicles", "/api/1/users/me", "/api/1/users/region"):
            status, body = await call(session, "GET", server.url + path, token)
            assert status == 412
            assert body == {
                "response": None,
                "error": (
                    f"Account must be registered in the current region {server.url}/eu"
                ),
                "error_description": "",
            }


async def test_partner_registration_flow(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    sim = Simulator(unregistered(), clock)
    _, public_pem = new_key_pair()
    sim.partners.host_public_key(DOMAIN, public_pem)
    user = sim.issue_tokens()["access_token"]
    async with running_simulator(sim) as server:
        eu = server.region_url("eu")
        token = await partner_token(session, f"{eu}/oauth2/v3/token", eu)
        claims = decode(token, sim.tokens.secret)
        assert claims["aud"] == [eu]
        assert "offline_access" not in claims["scp"]
        # A partner token is not a user token, and the other way round.
        status, _ = await call(session, "GET", eu + "/api/1/vehicles", token)
        assert status == 403
        status, _ = await call(
            session,
            "POST",
            eu + "/api/1/partner_accounts",
            user,
            json={"domain": DOMAIN},
        )
        assert status == 403
        # Another region's partner token is out of region.
        status, _ = await call(
            session,
            "POST",
            server.region_url("na") + "/api/1/partner_accounts",
            token,
            json={"domain": DOMAIN},
        )
        assert status == 421
        status, body = await call(
            session,
            "POST",
            eu + "/api/1/partner_accounts",
            token,
            json={"domain": DOMAIN.upper()},
        )
        assert status == 200, body
        assert body["response"]["domain"] == DOMAIN
        assert body["response"]["public_key"] == public_key_hex(public_pem)
        status, body = await call(
            session,
            "GET",
            eu + f"/api/1/partner_accounts/public_key?domain={DOMAIN}",
            token,
        )
        assert body == {"response": {"public_key": public_key_hex(public_pem)}}
        status, _ = await call(session, "GET", eu + "/api/1/vehicles", user)
        assert status == 200
    assert sim.partners.is_registered(DEFAULT_CLIENT_ID, "eu")
    assert sim.ledger.counts["data"] == 0  # partner calls are not billed
    assert sim.to_dict()["partner_registrations"][0]["domain"] == DOMAIN


@pytest.mark.parametrize(
    ("domain", "status", "error"),
    [
        ("https://app.example.org/", 400, "Invalid domain"),
        ("localhost", 400, "Invalid domain"),
        (None, 400, "Invalid domain"),
        ("other.example.org", 424, "Public key download failed for url https://other"),
        ("rsa.example.org", 400, "must be EC prime256v1"),
        ("junk.example.org", 400, "not a PEM public key"),
    ],
)
async def test_partner_registration_refusals(
    clock: SimClock,
    session: aiohttp.ClientSession,
    domain: str | None,
    status: int,
    error: str,
) -> None:
    sim = Simulator(unregistered(), clock)
    sim.partners.host_public_key("junk.example.org", "hello")
    sim.partners.host_public_key("rsa.example.org", _rsa_public_pem())
    async with running_simulator(sim) as server:
        token = await partner_token(session, server.token_url, server.url)
        got, body = await call(
            session,
            "POST",
            server.url + "/api/1/partner_accounts",
            token,
            json={"domain": domain},
        )
    assert got == status
    assert body["error"].startswith(error) or error in body["error"]
    assert not sim.partners.is_registered(DEFAULT_CLIENT_ID, "eu")


async def test_allowed_origins_and_pluggable_key_check(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    client = ClientConfig(registered_regions=(), allowed_origins=("example.org",))
    sim = Simulator(SimConfig(clients=[client]), clock)
    _, pem = new_key_pair()
    asked: list[str] = []

    async def fetch(domain: str) -> str | None:
        asked.append(public_key_url(domain))
        return pem

    sim.partners.fetch_public_key = fetch
    async with running_simulator(sim) as server:
        token = await partner_token(session, server.token_url, server.url)
        url = server.url + "/api/1/partner_accounts"
        status, body = await call(session, "POST", url, token, json={"domain": "x.org"})
        assert (status, body["error"]) == (
            400,
            "Root domain x.org must match registered allowed origin",
        )
        status, _ = await call(session, "POST", url, token, json={"domain": DOMAIN})
        assert status == 200
        status, body = await call(
            session, "GET", url + "/public_key?domain=unknown.org", token
        )
        assert status == 404
    assert (
        asked[-1]
        == f"https://{DOMAIN}/.well-known/appspecific/com.tesla.3p.public-key.pem"
    )


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"audience": "https://fleet-api.prd.eu.vn.cloud.tesla.com"}, 200, None),
        ({}, 400, "invalid_request"),
        ({"audience": "ftp://x"}, 400, "invalid_request"),
        ({"audience": "http://127.0.0.1:1/moon"}, 400, "invalid_request"),
        ({"client_secret": None, "audience": "http://h/eu"}, 401, "invalid_client"),
    ],
)
async def test_partner_token_requests(
    server: RunningSimulator,
    session: aiohttp.ClientSession,
    form: dict[str, str | None],
    status: int,
    error: str | None,
) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
    } | form
    data = {k: v for k, v in data.items() if v is not None}
    got, body = await call(session, "POST", server.token_url, data=data)
    assert got == status
    assert body.get("error") == error


def test_audience_and_prefix_parsing() -> None:
    assert audience_region("https://fleet-api.prd.na.vn.cloud.tesla.com/", "eu") == "na"
    assert audience_region("http://127.0.0.1:5/cn", "eu") == "cn"
    assert audience_region("http://127.0.0.1:5", "eu") == "eu"
    assert audience_region("not a url", "eu") is None
    assert split_region("/na/api/1/vehicles") == ("na", "/api/1/vehicles")
    assert split_region("/api/1/vehicles") == (None, "/api/1/vehicles")
    assert normalize_domain(" App.Example.ORG ") == DOMAIN


async def test_refused_location_scope(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    account = AccountConfig(refused_scopes=("vehicle_location",))
    sim = Simulator(SimConfig(accounts=[account]), clock)
    token = sim.issue_tokens()["access_token"]
    assert "vehicle_location" not in decode(token, sim.tokens.secret)["scp"]
    async with running_simulator(sim) as server:
        car = TeslaFleetApi(session, access_token=token, server=server.url)
        car_api = car.vehicles.createFleet(DEFAULT_VIN)
        with pytest.raises(Forbidden) as err:
            await car_api.vehicle_data(["charge_state", "location_data"])
        refusal = err.value.data
        assert isinstance(refusal, dict)
        assert refusal["error"] == "Unauthorized missing scopes"
        data = (await car_api.vehicle_data(["charge_state", "drive_state"]))["response"]
        assert "latitude" not in data["drive_state"]
        assert "longitude" not in data["drive_state"]
        # The authorize page honours the refusal unless every scope is required.
        for required, granted in (("false", False), ("true", True)):
            status, scopes = await _authorize_scopes(session, server, sim, required)
            assert status == 200
            assert ("vehicle_location" in scopes) is granted


async def _authorize_scopes(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    required: str,
) -> tuple[int, list[str]]:
    params = {
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": "https://example.org/cb",
        "response_type": "code",
        "scope": "openid offline_access vehicle_device_data vehicle_location",
        "require_requested_scopes": required,
    }
    async with session.get(
        server.authorize_url, params=params, allow_redirects=False
    ) as resp:
        code = resp.headers["Location"].split("code=")[1].split("&")[0]
    form = {
        "grant_type": "authorization_code",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "code": code,
        "redirect_uri": "https://example.org/cb",
    }
    status, body = await call(session, "POST", server.token_url, data=form)
    return status, list(decode(body["access_token"], sim.tokens.secret)["scp"])


def _rsa_public_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode()
    )
