"""Clock, configuration and JWT helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import time

import pytest

from tesla_fleet_sim import (
    AccountConfig,
    ClientConfig,
    Location,
    Prices,
    RateLimits,
    SimClock,
    SimConfig,
    SimulationError,
    Simulator,
    VehicleConfig,
    jwt,
)
from tesla_fleet_sim.clock import ensure_utc

T0 = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)


def test_manual_clock() -> None:
    clock = SimClock.manual(T0)
    assert clock.now() == T0
    assert clock.advance(timedelta(seconds=5)) == T0 + timedelta(seconds=5)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="backwards"):
        clock.set(T0)
    assert clock.as_dict()["kind"] == "manual"


def test_follow_clock_converts_to_utc() -> None:
    from zoneinfo import ZoneInfo

    clock = SimClock.follow(
        lambda: datetime(2025, 3, 3, 13, 0, tzinfo=ZoneInfo("Europe/Warsaw"))
    )
    assert clock.now() == T0
    assert clock.now().tzinfo is UTC
    assert not clock.is_manual
    with pytest.raises(SimulationError):
        clock.advance(timedelta(seconds=1))
    naive = SimClock.follow(lambda: datetime(2025, 3, 3))  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        naive.now()


def test_real_clock() -> None:
    fast = SimClock.real(speed=1000, start=T0)
    time.sleep(0.01)
    assert fast.now() >= T0 + timedelta(seconds=9)
    wall = SimClock.real()
    assert abs((wall.now() - datetime.now(UTC)).total_seconds()) < 1
    with pytest.raises(ValueError, match="positive"):
        SimClock.real(speed=0)
    with pytest.raises(SimulationError):
        wall.set(T0)


def test_ensure_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ensure_utc(datetime(2025, 1, 1))  # noqa: DTZ001


def test_config_from_dict_and_file(tmp_path: Path) -> None:
    data = {
        "server_region": "na",
        "sleep_after": 600,
        "schedule_radius_m": None,
        "bill_state_checks": False,
        "rate_limits": {"data": 10, "window": 30},
        "prices": {"wake": 0.05},
        "clients": [{"client_id": "c", "client_secret": "s", "scopes": ["openid"]}],
        "accounts": [
            {
                "sub": "a",
                "region": "na",
                "vehicles": [{"vin": "X" * 17, "home": {"lat": 1, "lon": 2}, "id": 5}],
            }
        ],
    }
    config = SimConfig.from_dict(data)
    assert config.sleep_after == timedelta(minutes=10)
    assert config.rate_limits == RateLimits(data=10, window=timedelta(seconds=30))
    assert config.prices == Prices(wake=0.05)
    assert config.clients[0].scopes == ("openid",)
    vehicle = config.accounts[0].vehicles[0]
    assert vehicle.home == Location(1.0, 2.0)
    assert vehicle.api_id == 5
    assert config.schedule_radius_m is None
    path = tmp_path / "sim.json"
    path.write_text(json.dumps(data))
    assert SimConfig.from_file(path) == config
    with pytest.raises(ValueError, match="unknown SimConfig fields"):
        SimConfig.from_dict({"nope": 1})


def test_config_helpers() -> None:
    config = SimConfig()
    assert config.client("sim-client-id") is config.clients[0]
    assert config.client("x") is None
    assert config.account("sim-account-1") is config.accounts[0]
    assert config.account("x") is None
    vehicle = VehicleConfig()
    assert 10**15 <= vehicle.api_id < 10**16
    assert 10**9 <= vehicle.api_vehicle_id < 10**10
    assert VehicleConfig(vehicle_id=7).api_vehicle_id == 7
    assert AccountConfig().ou_code == "EU"
    assert RateLimits().limit_for("state_check") is None
    assert Prices().price_of("wake") == 0.02
    assert ClientConfig().redirect_uris == []


def test_duplicate_vins_rejected() -> None:
    config = SimConfig(
        accounts=[AccountConfig(vehicles=[VehicleConfig(), VehicleConfig()])]
    )
    with pytest.raises(ValueError, match="duplicate VIN"):
        Simulator(config, SimClock.manual(T0))


def test_jwt_round_trip_and_errors() -> None:
    token = jwt.encode({"a": 1}, b"k", kid="kid-1")
    assert jwt.decode(token, b"k") == {"a": 1}
    assert jwt.decode_unverified(token) == {"a": 1}
    assert jwt.decode(jwt.encode({"b": 2}, b"k"), b"k") == {"b": 2}
    header, payload, signature = token.split(".")
    bad = [
        "only.two",
        f"{header}.{payload}.{signature}x",
        f"{jwt.b64url_encode(b'{"alg":"none"}')}.{payload}.{signature}",
        f"{header}.@@@.{signature}",
        "é.b.c",
    ]
    for candidate in bad:
        with pytest.raises(jwt.InvalidJWTError):
            jwt.decode(candidate, b"k")
    for payload_segment in (b"[1]", b"not json"):
        with pytest.raises(jwt.InvalidJWTError):
            jwt.decode_unverified(f"{header}.{jwt.b64url_encode(payload_segment)}.x")
    with pytest.raises(jwt.InvalidJWTError):
        jwt.decode(token, b"other")
    with pytest.raises(jwt.InvalidJWTError):
        jwt.decode_unverified("x")
    with pytest.raises(jwt.InvalidJWTError):
        jwt.b64url_decode("é")


def test_standalone_vehicle_engine() -> None:
    from tesla_fleet_sim import SimVehicle

    car = SimVehicle(VehicleConfig(state="asleep"), SimConfig(), T0)
    assert car.state == "asleep"
    car.plug_in()
    assert car.state == "online"
    car.advance_to(T0 + timedelta(hours=1))
    assert car.battery_level == pytest.approx(63.2)
