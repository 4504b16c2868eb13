"""The Fleet API through the unmodified tesla-fleet-api library."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.exceptions import (
    Forbidden,
    InvalidCommand,
    InvalidRegion,
    InvalidRequest,
    NotFound,
    OAuthExpired,
    RateLimited,
    VehicleOffline,
)
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

ENDPOINTS = [
    "charge_state",
    "drive_state",
    "location_data",
    "vehicle_state",
    "charge_schedule_data",
]


async def test_vehicle_list_and_summary(
    car_api: VehicleFleet[TeslaFleetApi], fleet: TeslaFleetApi
) -> None:
    listing = await car_api.list()
    assert listing["count"] == 1
    [summary] = listing["response"]
    assert summary["vin"] == DEFAULT_VIN
    assert summary["display_name"] == "Sim Model 3"
    assert summary["state"] == "online"
    assert summary["access_type"] == "OWNER"
    assert summary["id_s"] == str(summary["id"])
    assert isinstance(summary["vehicle_id"], int)
    for key in (
        "in_service",
        "calendar_enabled",
        "api_version",
        "granular_access",
        "tokens",
    ):
        assert key in summary
    assert summary["option_codes"] is None
    assert summary["backseat_token"] is None
    single = await car_api.vehicle()
    assert single["response"] == summary
    products = await fleet.products()
    assert products["response"] == [summary]


async def test_vehicle_data_payload(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator
) -> None:
    data = (await car_api.vehicle_data(ENDPOINTS))["response"]
    assert data["vin"] == DEFAULT_VIN
    assert data["state"] == "online"
    assert isinstance(data["user_id"], int)
    charge = data["charge_state"]
    assert charge["battery_level"] == 50
    assert charge["charge_limit_soc"] == 80
    assert charge["charge_limit_soc_min"] == 50
    assert charge["charge_limit_soc_max"] == 100
    assert charge["charge_limit_soc_std"] == 90
    assert charge["charging_state"] == "Disconnected"
    assert charge["conn_charge_cable"] == "<invalid>"
    assert charge["charge_port_latch"] == "Disengaged"
    assert charge["scheduled_charging_mode"] == "Off"
    assert charge["scheduled_charging_start_time"] is None
    assert charge["battery_range"] == pytest.approx(
        0.5 * 75 / 0.16 / 1.609344, abs=0.01
    )
    drive = data["drive_state"]
    assert drive["latitude"] == DEFAULT_HOME.lat
    assert drive["longitude"] == DEFAULT_HOME.lon
    assert drive["native_latitude"] == DEFAULT_HOME.lat
    assert drive["speed"] is None
    assert drive["shift_state"] is None
    vstate = data["vehicle_state"]
    assert vstate["odometer"] == pytest.approx(12345 / 1.609344)
    assert vstate["car_version"].startswith("2025.")
    assert data["charge_schedule_data"]["charge_schedules"] == []
    assert data["charge_schedule_data"]["max_num_charge_schedules"] == 10
    assert "climate_state" not in data


async def test_vehicle_data_sections(car_api: VehicleFleet[TeslaFleetApi]) -> None:
    data = (await car_api.vehicle_data())["response"]
    assert {
        "charge_state",
        "climate_state",
        "drive_state",
        "gui_settings",
        "vehicle_config",
        "vehicle_state",
    } <= set(data)
    assert "latitude" not in data["drive_state"]
    assert "charge_schedule_data" not in data
    data = (await car_api.vehicle_data(["charge_state", "bogus"]))["response"]
    assert "charge_state" in data
    assert "drive_state" not in data
    data = (await car_api.vehicle_data(["location_data"]))["response"]
    assert data["drive_state"]["latitude"] == DEFAULT_HOME.lat


async def test_charging_payload(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator, clock: SimClock
) -> None:
    car = sim.vehicle()
    car.plug_in()
    clock.advance(timedelta(minutes=30))
    charge = (await car_api.vehicle_data(["charge_state"]))["response"]["charge_state"]
    assert charge["charging_state"] == "Charging"
    assert charge["charger_power"] == 11
    assert charge["charger_voltage"] == 230
    assert charge["charger_phases"] == 3
    assert charge["charger_actual_current"] == 16
    assert charge["conn_charge_cable"] == "IEC"
    assert charge["charge_port_latch"] == "Engaged"
    assert charge["battery_level"] == 57  # 50 + 6.6
    assert charge["charge_energy_added"] == pytest.approx(4.95, abs=0.01)
    assert charge["time_to_full_charge"] == pytest.approx((80 - 56.6) / 13.2, abs=0.01)
    car.stop_charging()
    charge = (await car_api.vehicle_data(["charge_state"]))["response"]["charge_state"]
    assert charge["charging_state"] == "Stopped"
    assert charge["charger_voltage"] == 2
    assert charge["time_to_full_charge"] == 0


async def test_drive_payload(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator, clock: SimClock
) -> None:
    sim.vehicle().drive_to_work(timedelta(minutes=20))
    clock.advance(timedelta(minutes=5))
    data = (await car_api.vehicle_data(["drive_state", "vehicle_state"]))["response"]
    assert data["drive_state"]["shift_state"] == "D"
    assert data["drive_state"]["speed"] > 20
    assert data["drive_state"]["power"] > 0
    assert data["vehicle_state"]["is_user_present"] is True


async def test_asleep_gives_408_and_polling_keeps_awake(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator, clock: SimClock
) -> None:
    for _ in range(6):
        clock.advance(timedelta(minutes=10))
        await car_api.vehicle_data(["charge_state"])
    assert sim.vehicle().state == "online"
    # State checks do not count as activity.
    for _ in range(2):
        clock.advance(timedelta(minutes=10))
        assert (await car_api.vehicle())["response"]["state"] in ("online", "asleep")
    assert sim.vehicle().state == "asleep"
    with pytest.raises(VehicleOffline) as err:
        await car_api.vehicle_data(["charge_state"])
    assert err.value.data == {
        "response": None,
        "error": "vehicle unavailable: vehicle is offline or asleep",
        "error_description": "",
    }
    assert sim.api_requests("data")[-1].status == 408


async def test_polling_lets_the_car_sleep_when_reads_do_not_keep_it_awake(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator, clock: SimClock
) -> None:
    """With data_keeps_awake off a read answers but the sleep timer runs on."""
    sim.config.data_keeps_awake = False
    clock.advance(timedelta(minutes=10))
    data = (await car_api.vehicle_data(["charge_state"]))["response"]
    assert data["state"] == "online"
    clock.advance(timedelta(minutes=6))
    assert sim.vehicle().state == "asleep"  # 15 min after its last activity
    with pytest.raises(VehicleOffline):
        await car_api.vehicle_data(["charge_state"])
    assert sim.api_requests("data")[-1].status == 408


async def test_wake_up(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator, clock: SimClock
) -> None:
    sim.vehicle().fall_asleep()
    delay = sim.config.wake_delay_for(DEFAULT_VIN, 1)
    assert timedelta(seconds=10) <= delay <= timedelta(seconds=30)
    woke = await car_api.wake_up()
    assert woke["response"]["state"] == "asleep"
    clock.advance(delay - timedelta(seconds=1))
    assert (await car_api.vehicle())["response"]["state"] == "asleep"
    with pytest.raises(VehicleOffline):
        await car_api.vehicle_data(["charge_state"])
    clock.advance(timedelta(seconds=1))
    assert (await car_api.vehicle())["response"]["state"] == "online"
    assert (await car_api.wake_up())["response"]["state"] == "online"
    assert sim.vehicle().wake_count == 1
    assert sim.ledger.counts["wake"] == 2


async def test_commands_need_an_online_car(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator
) -> None:
    sim.vehicle().fall_asleep()
    with pytest.raises(VehicleOffline):
        await car_api.set_charge_limit(70)
    assert sim.ledger.counts["command"] == 1


async def test_set_charge_limit_and_amps(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator
) -> None:
    assert await car_api.set_charge_limit(90) == {
        "response": {"result": True, "reason": ""}
    }
    assert sim.vehicle().charge_limit_soc == 90
    again = await car_api.set_charge_limit(90)
    assert again["response"] == {"result": False, "reason": "already_set"}
    low = await car_api.set_charge_limit(10)
    assert low["response"]["result"] is False
    assert (await car_api.set_charging_amps(8))["response"]["result"] is True
    assert sim.vehicle().charge_amps == 8
    assert (await car_api.charge_start())["response"] == {
        "result": False,
        "reason": "not_plugged_in",
    }
    assert (await car_api.charge_stop())["response"] == {
        "result": False,
        "reason": "not_charging",
    }
    assert (await car_api.charge_max_range())["response"]["result"] is True
    assert (await car_api.charge_standard())["response"]["result"] is True
    assert sim.vehicle().charge_limit_soc == 90
    assert (await car_api.door_unlock())["response"]["result"] is True
    assert (await car_api.set_sentry_mode(True))["response"]["result"] is True
    data = (await car_api.vehicle_data(["vehicle_state"]))["response"]["vehicle_state"]
    assert data["locked"] is False
    assert data["sentry_mode"] is True
    assert (await car_api.flash_lights())["response"]["result"] is True


async def test_charge_schedules_round_trip(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator
) -> None:
    added = await car_api.add_charge_schedule(
        days_of_week="Weekdays",
        enabled=True,
        lat=DEFAULT_HOME.lat,
        lon=DEFAULT_HOME.lon,
        start_time=22 * 60,
        end_time=6 * 60,
        one_time=False,
        name="night",
    )
    assert added["response"]["result"] is True
    data = await car_api.vehicle_data(["charge_schedule_data"])
    [stored] = data["response"]["charge_schedule_data"]["charge_schedules"]
    assert stored["days_of_week"] == 0b0111110
    assert stored["start_enabled"]
    assert stored["end_enabled"]
    assert (stored["start_time"], stored["end_time"]) == (1320, 360)
    assert stored["latitude"] == DEFAULT_HOME.lat
    assert data["response"]["charge_schedule_data"]["next_schedule"] is True

    # Same id replaces.
    await car_api.add_charge_schedule(
        days_of_week="All", enabled=False, lat=0, lon=0, start_time=60, id=stored["id"]
    )
    [replaced] = sim.vehicle().charge_schedules
    assert replaced["enabled"] is False
    assert replaced["end_enabled"] is False

    missing = await car_api.remove_charge_schedule(12345)
    assert missing["response"] == {"result": False, "reason": "schedule not found"}
    assert (await car_api.remove_charge_schedule(stored["id"]))["response"][
        "result"
    ] is True
    assert sim.vehicle().charge_schedules == []


async def test_bad_schedule_parameters(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator
) -> None:
    with pytest.raises(InvalidRequest):
        await car_api.add_charge_schedule(
            days_of_week="Someday", enabled=True, lat=0, lon=0, start_time=60
        )
    bad_time = await car_api.add_charge_schedule(
        days_of_week="All", enabled=True, lat=0, lon=0, start_time=1440
    )
    assert bad_time["response"]["result"] is False


async def test_schedule_commands_raw(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    tokens: dict[str, Any],
    sim: Simulator,
) -> None:
    url = f"{server.url}/api/1/vehicles/{DEFAULT_VIN}/command/"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    async def post(name: str, body: Any = None) -> dict[str, Any]:
        async with session.post(url + name, json=body, headers=headers) as resp:
            data: dict[str, Any] = await resp.json()
            return data

    assert (await post("add_charge_schedule", {"enabled": True}))["response"] == {
        "result": False,
        "reason": "missing lat param",
    }
    schedule = {"lat": 0, "lon": 0.0, "enabled": True, "end_enabled": False}
    ok = await post(
        "add_charge_schedule",
        schedule
        | {"start_time": 120, "start_enabled": True, "days_of_week": "Monday,Sat"},
    )
    assert ok["response"]["result"] is True
    assert sim.vehicle().charge_schedules[0]["days_of_week"] == 2 | 64
    assert (await post("set_scheduled_charging", {"enable": True}))["response"][
        "result"
    ] is False
    assert (await post("set_scheduled_charging", {"enable": "yes"}))["response"] == {
        "result": False,
        "reason": "invalid enable param",
    }
    assert (await post("set_scheduled_charging", {"enable": True, "time": 90}))[
        "response"
    ]["result"]
    assert sim.vehicle().scheduled_charging == {"enabled": True, "time": 90}
    assert (await post("set_scheduled_charging", {"enable": False}))["response"][
        "result"
    ]
    assert (await post("set_charge_limit", {"percent": "x"}))["response"] == {
        "result": False,
        "reason": "invalid percent param",
    }
    assert (await post("set_charge_limit", {"percent": True}))["response"][
        "reason"
    ] == "invalid percent param"
    assert (await post("set_charge_limit"))["response"]["result"] is False
    async with session.post(
        url + "set_charge_limit", data=b"{not json", headers=headers
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["response"]["reason"] == "missing percent param"
    # Values the car refuses are a result, not a 400.
    assert (await post("set_charge_limit", {"percent": 10}))["response"] == {
        "result": False,
        "reason": "invalid charge limit",
    }


async def test_scheduled_departure_via_library(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator
) -> None:
    result = await car_api.set_scheduled_departure(
        enable=True,
        departure_time=450,
        off_peak_charging_enabled=True,
        end_off_peak_time=360,
    )
    assert result["response"]["result"] is True
    charge = (await car_api.vehicle_data(["charge_state"]))["response"]["charge_state"]
    assert charge["scheduled_charging_mode"] == "DepartBy"
    assert charge["scheduled_departure_time_minutes"] == 450
    assert charge["off_peak_hours_end_time"] == 360


async def test_legacy_schedule_payload(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator
) -> None:
    await car_api.set_scheduled_charging(enable=True, time=23 * 60)
    sim.vehicle().plug_in()
    charge = (await car_api.vehicle_data(["charge_state"]))["response"]["charge_state"]
    assert charge["scheduled_charging_mode"] == "StartAt"
    assert charge["scheduled_charging_pending"] is True
    assert isinstance(charge["scheduled_charging_start_time"], int)
    assert charge["charging_state"] == "Stopped"


async def test_unknown_command(car_api: VehicleFleet[TeslaFleetApi]) -> None:
    with pytest.raises(InvalidCommand):
        await car_api.remote_boombox(1)


async def test_expired_token_is_401_and_recorded(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator, clock: SimClock
) -> None:
    clock.advance(timedelta(hours=8))
    with pytest.raises(OAuthExpired):
        await car_api.vehicle()
    record = sim.api_requests()[-1]
    assert record.status == 401
    assert record.expired is True
    assert record.error == "token expired (401)"


async def test_invalid_tokens(
    session: aiohttp.ClientSession, server: RunningSimulator, sim: Simulator
) -> None:
    url = f"{server.url}/api/1/vehicles"
    for header in (
        None,
        "Basic abc",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer ä.b.c",
    ):
        headers = {"Authorization": header} if header else {}
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 401
            assert await resp.json() == {"error": "invalid_token"}
    other = Simulator().issue_tokens()["access_token"]  # signed with another secret
    async with session.get(url, headers={"Authorization": f"Bearer {other}"}) as resp:
        assert resp.status == 401
    assert all(not r.expired for r in sim.api_requests())


async def test_wrong_region_is_421(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    config = SimConfig(accounts=[AccountConfig(region="na")])
    sim = Simulator(config, clock)
    tokens = sim.issue_tokens()
    async with running_simulator(sim) as server:
        api = TeslaFleetApi(
            session, access_token=tokens["access_token"], server=server.url
        )
        with pytest.raises(InvalidRegion) as err:
            await api.products()
        assert err.value.data == {
            "response": None,
            "error": f"user out of region, use base URL: {server.url}/na",
            "error_description": "",
        }
        region = await api.user.region()
        assert region["response"] == {
            "region": "na",
            "fleet_api_base_url": f"{server.url}/na",
        }


async def test_user_endpoints(fleet: TeslaFleetApi, server: RunningSimulator) -> None:
    region = await fleet.user.region()
    assert region == {
        "response": {"region": "eu", "fleet_api_base_url": f"{server.url}/eu"}
    }
    me = await fleet.user.me()
    assert me["response"]["email"] == "driver@example.com"
    assert await fleet.status() == "ok"


async def test_find_server_with_library(
    session: aiohttp.ClientSession, server: RunningSimulator, tokens: dict[str, Any]
) -> None:
    api = TeslaFleetApi(session, access_token=tokens["access_token"], server=server.url)
    base = (await api.user.region())["response"]["fleet_api_base_url"]
    assert base == f"{server.url}/eu"
    regional = TeslaFleetApi(session, access_token=tokens["access_token"], server=base)
    assert (await regional.products())["count"] == 1


async def test_unknown_vin_and_endpoint(fleet: TeslaFleetApi, sim: Simulator) -> None:
    with pytest.raises(NotFound):
        await fleet.vehicles.createFleet("5YJ3E7EB0KF999999").vehicle()
    with pytest.raises(NotFound):
        await fleet.user.orders()
    assert sim.api_requests()[-1].category == "data"


async def test_other_accounts_vehicle_is_404(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    second = VehicleConfig(vin="5YJ3E7EB0KF000002")
    config = SimConfig(
        accounts=[AccountConfig(), AccountConfig(sub="acct-2", vehicles=[second])]
    )
    sim = Simulator(config, clock)
    tokens = sim.issue_tokens()
    async with running_simulator(sim) as server:
        api = TeslaFleetApi(
            session, access_token=tokens["access_token"], server=server.url
        )
        with pytest.raises(NotFound):
            await api.vehicles.createFleet(second.vin).vehicle_data()
        assert (
            len((await api.vehicles.createFleet(DEFAULT_VIN).list())["response"]) == 1
        )


async def test_scopes(clock: SimClock, session: aiohttp.ClientSession) -> None:
    client = ClientConfig(scopes=("openid", "offline_access", "vehicle_charging_cmds"))
    sim = Simulator(SimConfig(clients=[client]), clock)
    tokens = sim.issue_tokens()
    async with running_simulator(sim) as server:
        api = TeslaFleetApi(
            session, access_token=tokens["access_token"], server=server.url
        )
        car = api.vehicles.createFleet(DEFAULT_VIN)
        with pytest.raises(Forbidden):
            await car.vehicle_data()
        with pytest.raises(Forbidden):
            await car.door_lock()
        assert (await car.set_charge_limit(70))["response"]["result"] is True
        assert (await car.wake_up())["response"]["state"] == "online"


async def test_location_needs_scope(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    client = ClientConfig(scopes=("openid", "vehicle_device_data"))
    sim = Simulator(SimConfig(clients=[client]), clock)
    tokens = sim.issue_tokens()
    assert "refresh_token" not in tokens
    async with running_simulator(sim) as server:
        api = TeslaFleetApi(
            session, access_token=tokens["access_token"], server=server.url
        )
        car = api.vehicles.createFleet(DEFAULT_VIN)
        with pytest.raises(Forbidden) as err:
            await car.vehicle_data(["location_data"])
        assert err.value.data == {
            "response": None,
            "error": "Unauthorized missing scopes",
            "error_description": "",
        }
        data = await car.vehicle_data(["drive_state"])
        assert "latitude" not in data["response"]["drive_state"]


async def test_wake_needs_a_vehicle_scope(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    client = ClientConfig(scopes=("openid", "user_data"))
    sim = Simulator(SimConfig(clients=[client]), clock)
    tokens = sim.issue_tokens()
    async with running_simulator(sim) as server:
        api = TeslaFleetApi(
            session, access_token=tokens["access_token"], server=server.url
        )
        with pytest.raises(Forbidden):
            await api.vehicles.createFleet(DEFAULT_VIN).wake_up()


async def test_rate_limit_429(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator, clock: SimClock
) -> None:
    for _ in range(60):
        await car_api.vehicle_data(["charge_state"])
        clock.advance(timedelta(milliseconds=500))
    with pytest.raises(RateLimited) as err:
        await car_api.vehicle_data(["charge_state"])
    # The oldest call leaves the 60 s window 30 s from now.
    assert err.value.data == {"reset": "30", "after": "30"}
    record = sim.api_requests()[-1]
    assert (record.status, record.billed) == (429, True)
    assert sim.ledger.counts["data"] == 61
    clock.advance(timedelta(seconds=30))
    await car_api.vehicle_data(["charge_state"])


async def test_wake_rate_limit(
    car_api: VehicleFleet[TeslaFleetApi], sim: Simulator
) -> None:
    for _ in range(3):
        await car_api.wake_up()
    with pytest.raises(RateLimited):
        await car_api.wake_up()
    # State checks are not rate limited.
    for _ in range(70):
        await car_api.vehicle()


async def test_command_rate_limit_headers(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    tokens: dict[str, Any],
    sim: Simulator,
) -> None:
    sim.config.rate_limits.command = 1
    url = f"{server.url}/api/1/vehicles/{DEFAULT_VIN}/command/honk_horn"
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with session.post(url, headers=headers) as resp:
        assert resp.status == 200
    async with session.post(url, headers=headers) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "60"
        assert resp.headers["RateLimit-Limit"] == "1"
        assert resp.headers["RateLimit-Remaining"] == "0"


async def test_post_to_list_is_404(
    session: aiohttp.ClientSession, server: RunningSimulator, tokens: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with session.post(f"{server.url}/api/1/vehicles", headers=headers) as resp:
        assert resp.status == 404


async def test_server_url(server: RunningSimulator) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert server.port > 0
    assert server.token_url == server.url + "/oauth2/v3/token"


async def test_default_simulator_when_none_given(
    session: aiohttp.ClientSession,
) -> None:
    async with running_simulator() as server:
        async with session.get(f"{server.url}/status") as resp:
            assert await resp.text() == "ok"
        assert server.sim.vehicle().vin == DEFAULT_VIN
