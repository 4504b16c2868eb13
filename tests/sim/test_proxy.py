"""The simulated tesla-http-proxy: HTTPS, signed commands, the proxy's error shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import ssl
from typing import Any

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi

from tesla_fleet_sim import (
    DEFAULT_HOME,
    DEFAULT_VIN,
    AccountConfig,
    RunningSimulator,
    SimClock,
    SimConfig,
    Simulator,
    VehicleConfig,
    running_simulator,
)
from tesla_fleet_sim.proxy import NOT_AWAKE_ERROR, NOT_PAIRED_ERROR

LEGACY_VIN = "5YJSA1E2XHF000002"


@pytest.fixture
def proxy_sim(clock: SimClock) -> Simulator:
    signed = VehicleConfig(command_signing="required", key_paired=True)
    legacy = VehicleConfig(vin=LEGACY_VIN, command_signing="off")
    unpaired = VehicleConfig(vin="7SAYGDEE0PF000003", command_signing="required")
    config = SimConfig(accounts=[AccountConfig(vehicles=[signed, legacy, unpaired])])
    return Simulator(config, clock)


@pytest.fixture
async def proxied(proxy_sim: Simulator) -> AsyncIterator[RunningSimulator]:
    async with running_simulator(proxy_sim, proxy=True) as running:
        yield running


@pytest.fixture
def token(proxy_sim: Simulator) -> str:
    return str(proxy_sim.issue_tokens()["access_token"])


async def send(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    method: str,
    path: str,
    token: str | None,
    **kwargs: Any,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(
        method,
        server.proxy_url + path,
        headers=headers,
        ssl=server.proxy_ssl_context(),
        **kwargs,
    ) as resp:
        text = await resp.text()
        try:
            return resp.status, await resp.json(content_type=None)
        except ValueError:
            return resp.status, text


def command(name: str, vin: str = DEFAULT_VIN) -> str:
    return f"/api/1/vehicles/{vin}/command/{name}"


async def test_https_only_with_the_generated_ca(
    proxied: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    assert proxied.proxy_url.startswith("https://127.0.0.1:")
    assert proxied.proxy_ca_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
    loop = asyncio.get_running_loop()
    handler = loop.get_exception_handler()
    refused: list[str] = []
    # The server side of a refused handshake is reported to the loop.
    loop.set_exception_handler(lambda _, context: refused.append(context["message"]))
    try:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(proxied.proxy_url + "/api/1/vehicles")
        plain = proxied.proxy_url.replace("https://", "http://")
        with pytest.raises(aiohttp.ClientError):
            async with session.get(plain + "/api/1/vehicles") as resp:
                await resp.read()
        await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(handler)


async def test_signed_command_reaches_a_signing_car(
    proxied: RunningSimulator,
    proxy_sim: Simulator,
    session: aiohttp.ClientSession,
    token: str,
) -> None:
    status, body = await send(
        session,
        proxied,
        "POST",
        command("set_charge_limit"),
        token,
        json={"percent": 90},
    )
    assert (status, body) == (200, {"response": {"result": True, "reason": ""}})
    assert proxy_sim.vehicle().charge_limit_soc == 90
    [record] = proxy_sim.api_requests("command")
    assert record.path.endswith("/signed_command")
    assert record.billed
    status, body = await send(
        session, proxied, "POST", command("charge_stop"), token, json={}
    )
    assert body == {
        "response": {"result": False, "reason": "not_charging"},
        "error": "",
        "error_description": "",
    }


async def test_library_through_the_proxy(
    proxied: RunningSimulator, proxy_sim: Simulator, token: str
) -> None:
    context = proxied.proxy_ssl_context()
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(connector=connector) as client:
        api = TeslaFleetApi(client, access_token=token, server=proxied.proxy_url)
        car = api.vehicles.createFleet(DEFAULT_VIN)
        added = await car.add_charge_schedule(
            days_of_week="Thursday",
            enabled=True,
            lat=DEFAULT_HOME.lat,
            lon=DEFAULT_HOME.lon,
            start_time=120,
        )
        assert added["response"]["result"] is True
        data = await car.vehicle_data(["charge_schedule_data"])
    [stored] = data["response"]["charge_schedule_data"]["charge_schedules"]
    assert stored["days_of_week"] == 16


async def test_asleep_and_unpaired_are_500(
    proxied: RunningSimulator,
    proxy_sim: Simulator,
    session: aiohttp.ClientSession,
    token: str,
) -> None:
    proxy_sim.vehicle().fall_asleep()
    status, body = await send(
        session, proxied, "POST", command("charge_start"), token, json={}
    )
    assert (status, body) == (
        500,
        {"response": None, "error": NOT_AWAKE_ERROR, "error_description": ""},
    )
    status, body = await send(
        session,
        proxied,
        "POST",
        command("charge_start", "7SAYGDEE0PF000003"),
        token,
        json={},
    )
    assert (status, body["error"]) == (500, NOT_PAIRED_ERROR)
    assert body["response"] is None


async def test_car_without_the_protocol_gets_rest(
    proxied: RunningSimulator,
    proxy_sim: Simulator,
    session: aiohttp.ClientSession,
    token: str,
) -> None:
    for _ in range(2):  # the second time the proxy already knows
        status, _ = await send(
            session,
            proxied,
            "POST",
            command("set_charge_limit", LEGACY_VIN),
            token,
            json={"percent": 70},
        )
        assert status == 200
    assert proxy_sim.vehicle(LEGACY_VIN).charge_limit_soc == 70
    paths = [r.path for r in proxy_sim.api_requests("command")]
    assert paths == [
        f"/api/1/vehicles/{LEGACY_VIN}/signed_command",
        f"/api/1/vehicles/{LEGACY_VIN}/command/set_charge_limit",
        f"/api/1/vehicles/{LEGACY_VIN}/command/set_charge_limit",
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        (
            "POST",
            command("add_charge_schedule"),
            {"days_of_week": 127},
            400,
            {"response": {"result": False, "reason": "missing lat param"}},
        ),
        (
            "POST",
            command("add_charge_schedule"),
            {
                "days_of_week": 127,
                "lat": 1,
                "lon": 2,
                "start_enabled": True,
                "end_enabled": False,
                "enabled": True,
            },
            400,
            {"response": {"result": False, "reason": "invalid days_of_week param"}},
        ),
        (
            "POST",
            command("add_charge_schedule"),
            {
                "days_of_week": "tue",
                "lat": 1,
                "lon": 2,
                "start_enabled": True,
                "end_enabled": False,
                "enabled": True,
            },
            400,
            {"response": None, "error": "unrecognized day name: tue"},
        ),
        ("POST", command("remote_boombox"), {}, 400, {"error": "invalid_command"}),
        ("GET", command("charge_start"), None, 405, {"error": "Method Not Allowed"}),
        (
            "POST",
            "/api/1/vehicles/123/command/charge_start",
            {},
            404,
            {"error": "expected 17-character VIN in path (do not user Fleet API ID)"},
        ),
    ],
)
async def test_proxy_refusals(
    proxied: RunningSimulator,
    session: aiohttp.ClientSession,
    token: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    expected: dict[str, Any],
) -> None:
    got, answer = await send(session, proxied, method, path, token, json=body)
    assert got == status
    assert answer.items() >= expected.items()


async def test_unparsable_body(
    proxied: RunningSimulator, session: aiohttp.ClientSession, token: str
) -> None:
    for data in (b"{nope", b"[1]"):
        status, answer = await send(
            session, proxied, "POST", command("charge_start"), token, data=data
        )
        assert (status, answer) == (
            400,
            "error occurred while parsing request parameters",
        )


async def test_tokens_at_the_proxy(
    proxied: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    status, body = await send(session, proxied, "GET", "/api/1/vehicles", None)
    assert (status, body["error"]) == (403, "client did not provide an OAuth token")
    status, body = await send(session, proxied, "GET", "/api/1/vehicles", "garbage")
    assert (status, body["error"]) == (403, "invalid OAuth token")
    expired = "e30.eyJvdV9jb2RlIjoiRVUifQ.x"  # {"ou_code": "EU"}, not signed by Tesla
    status, body = await send(
        session, proxied, "POST", command("charge_start"), expired, json={}
    )
    assert (status, body) == (401, {"error": "invalid_token"})


async def test_forwarded_requests(
    proxied: RunningSimulator,
    proxy_sim: Simulator,
    session: aiohttp.ClientSession,
    token: str,
) -> None:
    status, body = await send(session, proxied, "GET", "/api/1/vehicles", token)
    assert status == 200
    assert body["count"] == 3
    proxy_sim.vehicle().fall_asleep()
    status, body = await send(
        session, proxied, "GET", f"/api/1/vehicles/{DEFAULT_VIN}/vehicle_data", token
    )
    # The proxy does not pass an upstream error body on, only its status.
    assert (status, body) == (
        408,
        {"response": None, "error": "Request Timeout", "error_description": ""},
    )


async def test_proxy_needs_to_be_asked_for(server: RunningSimulator) -> None:
    for name in ("proxy_url", "proxy_ca_path"):
        with pytest.raises(RuntimeError):
            getattr(server, name)
    with pytest.raises(RuntimeError):
        server.proxy_ssl_context()
    assert isinstance(ssl.create_default_context(), ssl.SSLContext)
