"""Strict command rules: day names, parameters, scopes and command signing."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.tesla.vehicle.fleet import VehicleFleet

from tesla_fleet_sim import (
    DEFAULT_HOME,
    DEFAULT_VIN,
    AccountConfig,
    ClientConfig,
    RunningSimulator,
    SimClock,
    SimConfig,
    Simulator,
    VehicleConfig,
    running_simulator,
)
from tesla_fleet_sim.endpoints import VCP_REQUIRED_ERROR

SCHEDULE = {
    "enabled": True,
    "start_enabled": True,
    "start_time": 22 * 60,
    "end_enabled": True,
    "end_time": 6 * 60,
    "lat": DEFAULT_HOME.lat,
    "lon": DEFAULT_HOME.lon,
    "one_time": False,
}


async def post(
    session: aiohttp.ClientSession, url: str, token: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


def command_url(server: RunningSimulator, name: str, vin: str = DEFAULT_VIN) -> str:
    return f"{server.url}/api/1/vehicles/{vin}/command/{name}"


@pytest.mark.parametrize("days", [127, 16, "tue", "Thu", "daily", None])
async def test_days_of_week_must_be_day_names(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    tokens: dict[str, Any],
    sim: Simulator,
    days: int | str | None,
) -> None:
    status, body = await post(
        session,
        command_url(server, "add_charge_schedule"),
        tokens["access_token"],
        SCHEDULE | {"days_of_week": days},
    )
    assert status == 400
    if isinstance(days, str):
        assert body == {
            "response": None,
            "error": f"unrecognized day name: {days}",
            "error_description": "",
        }
    else:
        assert body == {
            "response": {"result": False, "reason": "invalid days_of_week param"}
        }
    assert sim.vehicle().charge_schedules == []
    assert sim.ledger.counts["command"] == 1  # a 400 is billed too


@pytest.mark.parametrize(
    ("days", "mask"),
    [("Thursday", 16), ("All", 127), ("Weekdays", 62), ("sun,TUES,thurs", 21)],
)
async def test_day_names_read_back_as_bitmask(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator, days: str, mask: int
) -> None:
    added = await car_api.add_charge_schedule(
        days_of_week=days,
        enabled=True,
        lat=DEFAULT_HOME.lat,
        lon=DEFAULT_HOME.lon,
        start_time=60,
    )
    assert added["response"] == {"result": True, "reason": ""}
    data = await car_api.vehicle_data(["charge_schedule_data"])
    [stored] = data["response"]["charge_schedule_data"]["charge_schedules"]
    assert stored["days_of_week"] == mask


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lat": None}, "invalid lat param"),
        ({"lon": "21"}, "invalid lon param"),
        ({"enabled": 1}, "invalid enabled param"),
        ({"start_time": "60"}, "invalid start_time param"),
        ({"one_time": "no"}, "invalid one_time param"),
        ({"id": True}, "invalid id param"),
    ],
)
async def test_schedule_parameter_types(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    tokens: dict[str, Any],
    change: dict[str, Any],
    reason: str,
) -> None:
    body = SCHEDULE | {"days_of_week": "All"} | change
    status, answer = await post(
        session,
        command_url(server, "add_charge_schedule"),
        tokens["access_token"],
        body,
    )
    assert (status, answer) == (400, {"response": {"result": False, "reason": reason}})


async def test_required_schedule_parameters(
    session: aiohttp.ClientSession, server: RunningSimulator, tokens: dict[str, Any]
) -> None:
    for key in ("lat", "lon", "start_enabled", "end_enabled", "enabled"):
        body = {k: v for k, v in SCHEDULE.items() if k != key}
        status, answer = await post(
            session,
            command_url(server, "add_charge_schedule"),
            tokens["access_token"],
            body | {"days_of_week": "All"},
        )
        assert status == 400
        assert answer["response"]["reason"] == f"missing {key} param"


async def test_parameters_are_checked_before_the_car_is_asked(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    tokens: dict[str, Any],
    sim: Simulator,
) -> None:
    sim.vehicle().fall_asleep()
    status, _ = await post(
        session,
        command_url(server, "set_charging_amps"),
        tokens["access_token"],
        {"charging_amps": "16"},
    )
    assert status == 400
    status, _ = await post(
        session,
        command_url(server, "set_charging_amps"),
        tokens["access_token"],
        {"charging_amps": 16},
    )
    assert status == 408


async def test_charging_commands_need_a_command_scope(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    client = ClientConfig(scopes=("openid", "vehicle_device_data"))
    sim = Simulator(SimConfig(clients=[client]), clock)
    token = sim.issue_tokens()["access_token"]
    async with running_simulator(sim) as server:
        status, body = await post(
            session, command_url(server, "charge_start"), token, {}
        )
    assert status == 403
    assert body == {
        "response": None,
        "error": "Unauthorized missing scopes",
        "error_description": "",
    }


def _signing_sim(clock: SimClock, **car: Any) -> Simulator:
    config = SimConfig(accounts=[AccountConfig(vehicles=[VehicleConfig(**car)])])
    return Simulator(config, clock)


async def test_unsigned_command_to_a_signing_car_is_403(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    sim = _signing_sim(clock, command_signing="required")
    token = sim.issue_tokens()["access_token"]
    async with running_simulator(sim) as server:
        status, body = await post(
            session, command_url(server, "set_charge_limit"), token, {"percent": 90}
        )
        listing = await _get(session, f"{server.url}/api/1/vehicles", token)
    assert status == 403
    assert body == {
        "response": None,
        "error": VCP_REQUIRED_ERROR,
        "error_description": "",
    }
    assert VCP_REQUIRED_ERROR.startswith(
        "Tesla Vehicle Command Protocol required, please refer to the documentation"
    )
    assert sim.vehicle().charge_limit_soc == 80
    assert listing["response"][0]["command_signing"] == "required"
    assert sim.ledger.counts["command"] == 1


async def test_hardlocked_variant(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    sim = _signing_sim(
        clock, command_signing="required", unsigned_rejection="hardlocked"
    )
    token = sim.issue_tokens()["access_token"]
    async with running_simulator(sim) as server:
        status, body = await post(
            session, command_url(server, "charge_start"), token, {}
        )
        sim.vehicle().fall_asleep()
        asleep, _ = await post(session, command_url(server, "charge_start"), token, {})
    assert (status, body) == (
        200,
        {"response": {"result": False, "reason": "unsigned_cmds_hardlocked"}},
    )
    assert asleep == 408  # the car itself answers, so it must be awake


@pytest.mark.parametrize("signing", ["allowed", "off"])
async def test_rest_commands_work_without_signing_requirement(
    clock: SimClock, session: aiohttp.ClientSession, signing: str
) -> None:
    sim = _signing_sim(clock, command_signing=signing)
    token = sim.issue_tokens()["access_token"]
    async with running_simulator(sim) as server:
        status, body = await post(
            session, command_url(server, "set_charge_limit"), token, {"percent": 90}
        )
    assert (status, body["response"]["result"]) == (200, True)


async def test_command_signing_in_every_listing(
    fleet: TeslaFleetApi, car_api: VehicleFleet[TeslaFleetApi]
) -> None:
    assert (await car_api.vehicle())["response"]["command_signing"] == "allowed"
    assert (await car_api.list())["response"][0]["command_signing"] == "allowed"
    assert (await fleet.products())["response"][0]["command_signing"] == "allowed"


async def test_fleet_status(clock: SimClock, session: aiohttp.ClientSession) -> None:
    paired = VehicleConfig(command_signing="required", key_paired=True)
    legacy = VehicleConfig(
        vin="5YJSA1E2XHF000002", command_signing="off", car_version="2024.8.9 abc"
    )
    config = SimConfig(accounts=[AccountConfig(vehicles=[paired, legacy])])
    sim = Simulator(config, clock)
    token = sim.issue_tokens()["access_token"]
    async with running_simulator(sim) as server:
        url = f"{server.url}/api/1/vehicles/fleet_status"
        vins = [paired.vin, legacy.vin, "5YJ3E7EB0KF999999", paired.vin]
        status, body = await post(session, url, token, {"vins": vins})
        bad, _ = await post(session, url, token, {"vins": "nope"})
    assert status == 200
    response = body["response"]
    assert response["key_paired_vins"] == [paired.vin]
    assert response["unpaired_vins"] == [legacy.vin]
    info = response["vehicle_info"]
    assert set(info) == {paired.vin, legacy.vin}
    assert info[paired.vin]["vehicle_command_protocol_required"] is True
    assert info[paired.vin]["firmware_version"] == "2025.14.3"
    assert info[paired.vin]["total_number_of_keys"] == 4
    assert info[legacy.vin]["vehicle_command_protocol_required"] is False
    assert info[legacy.vin]["firmware_version"] == "2024.8.9"
    assert bad == 400


def test_signing_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="command_signing"):
        VehicleConfig(command_signing="maybe")
    with pytest.raises(ValueError, match="unsigned_rejection"):
        VehicleConfig(unsigned_rejection="silent")


async def _get(session: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    async with session.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        result: dict[str, Any] = await resp.json()
        return result
