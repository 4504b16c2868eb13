"""Signed commands (Vehicle Command Protocol) against the simulator's verifier.

The app side is tesla-fleet-api's ``VehicleSigned`` with a real EC P-256 key,
exactly as the integration will use it; the car side is ``tesla_fleet_sim.vcp``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
import pytest
from tesla_fleet_api import TeslaFleetApi
from tesla_fleet_api.exceptions import (
    Forbidden,
    InvalidResource,
    NotOnWhitelistFault,
    TeslaFleetMessageFaultInvalidSignature,
    TeslaFleetMessageFaultTimeExpired,
    TeslaFleetMessageFaultUnknownKeyId,
    VehicleOffline,
)
from tesla_fleet_api.tesla.vehicle.commands import Session
from tesla_fleet_api.tesla.vehicle.signed import VehicleSigned
from tesla_protocol.command.car_server_pb2 import (
    Action,
    VehicleAction,
)
from tesla_protocol.command.signatures_pb2 import (
    HMAC_Personalized_Signature_Data,
    SessionInfo,
    SignatureData,
)
from tesla_protocol.command.universal_message_pb2 import (
    Destination,
    Domain,
    MessageFault_E,
    RoutableMessage,
    SessionInfoRequest,
)
from tesla_protocol.command.vcsec_pb2 import UnsignedMessage

from tesla_fleet_sim import (
    DEFAULT_CLIENT_ID,
    DEFAULT_HOME,
    DEFAULT_VIN,
    AccountConfig,
    ClientConfig,
    RequestRecord,
    RunningSimulator,
    SimClock,
    SimConfig,
    Simulator,
    VehicleConfig,
    running_simulator,
)
from tesla_fleet_sim.partners import new_key_pair
from tesla_fleet_sim.vcp import (
    FaultError,
    Keychain,
    SlidingWindow,
    fault_name,
    public_key_bytes,
    request_hash,
    tlv,
)
from tesla_fleet_sim.vcp_actions import day_names

LEGACY_VIN = "5YJSA1E2XHF000002"
INFOTAINMENT = Domain.DOMAIN_INFOTAINMENT


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@pytest.fixture
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def signing_sim(clock: SimClock, private_key: ec.EllipticCurvePrivateKey) -> Simulator:
    car = VehicleConfig(command_signing="required", plugged_in=True)
    legacy = VehicleConfig(vin=LEGACY_VIN, command_signing="off")
    config = SimConfig(accounts=[AccountConfig(vehicles=[car, legacy])])
    sim = Simulator(config, clock)
    sim.vehicle().pair_key(_point(private_key))
    return sim


@pytest.fixture
async def signing_server(signing_sim: Simulator) -> AsyncIterator[RunningSimulator]:
    async with running_simulator(signing_sim) as running:
        yield running


def _api(
    session: aiohttp.ClientSession,
    server: RunningSimulator,
    sim: Simulator,
    key: ec.EllipticCurvePrivateKey,
) -> TeslaFleetApi:
    api = TeslaFleetApi(
        session, access_token=sim.issue_tokens()["access_token"], server=server.url
    )
    api.private_key = key
    return api


@pytest.fixture
def signed(
    session: aiohttp.ClientSession,
    signing_server: RunningSimulator,
    signing_sim: Simulator,
    private_key: ec.EllipticCurvePrivateKey,
) -> VehicleSigned[TeslaFleetApi]:
    return VehicleSigned(
        _api(session, signing_server, signing_sim, private_key), DEFAULT_VIN
    )


def _signed_requests(sim: Simulator) -> list[RequestRecord]:
    return [r for r in sim.api_requests("command") if r.path.endswith("signed_command")]


async def _post_raw(
    vehicle: VehicleSigned[TeslaFleetApi], message: RoutableMessage
) -> RoutableMessage:
    """Send a message without the client's checks; return the car's answer."""
    body = await vehicle.signed_command(
        base64.b64encode(message.SerializeToString()).decode()
    )
    reply: RoutableMessage = RoutableMessage.FromString(
        base64.b64decode(body["response"])
    )
    return reply


async def _signed_message(
    vehicle: VehicleSigned[TeslaFleetApi], action: Action
) -> RoutableMessage:
    session = vehicle._sessions[INFOTAINMENT]
    if not session.ready:
        await vehicle._handshake(INFOTAINMENT)
    return await vehicle._commandHmac(session, action.SerializeToString())


def _limit(percent: int) -> Action:
    return Action(
        vehicleAction=VehicleAction(
            chargingSetLimitAction={"percent": percent},
        )
    )


def _fault(reply: RoutableMessage) -> str:
    return fault_name(reply.signedMessageStatus.signed_message_fault)


# --- the happy path --------------------------------------------------------------


async def test_handshake_and_set_charge_limit(
    signed: VehicleSigned[TeslaFleetApi], signing_sim: Simulator
) -> None:
    result = await signed.set_charge_limit(90)
    assert result == {"response": {"result": True, "reason": ""}}
    assert signing_sim.vehicle().charge_limit_soc == 90
    # The handshake is a billed command of its own.
    requests = _signed_requests(signing_sim)
    assert [r.status for r in requests] == [200, 200]
    assert signing_sim.ledger.counts["command"] == 2
    # The session is kept: the next command needs no handshake.
    assert await signed.set_charge_limit(90) == {
        "response": {"result": False, "reason": "already_set"}
    }
    assert len(_signed_requests(signing_sim)) == 3


async def test_charging_commands_change_the_car_like_rest(
    signed: VehicleSigned[TeslaFleetApi], signing_sim: Simulator
) -> None:
    car = signing_sim.vehicle()
    assert (await signed.set_charging_amps(10))["response"]["result"] is True
    assert car.charge_amps == 10
    assert car.charging_state == "Charging"  # plugged in below the limit
    assert (await signed.charge_stop())["response"]["result"] is True
    assert car.charging_state == "Stopped"
    assert (await signed.charge_start())["response"]["result"] is True
    assert car.charging_state == "Charging"
    assert (await signed.charge_stop())["response"]["result"] is True
    stopped = await signed.charge_stop()
    assert stopped == {"response": {"result": False, "reason": "not_charging"}}
    assert (await signed.set_scheduled_charging(True, 23 * 60))["response"][
        "result"
    ] is True
    assert car.scheduled_charging == {"enabled": True, "time": 23 * 60}
    assert (await signed.charge_max_range())["response"]["result"] is True
    assert car.charge_limit_soc == 100
    assert (await signed.charge_standard())["response"]["result"] is True
    assert car.charge_limit_soc == 90
    assert (await signed.set_sentry_mode(True))["response"]["result"] is True
    assert (await signed.auto_conditioning_start())["response"]["result"] is True
    assert (await signed.auto_conditioning_stop())["response"]["result"] is True
    assert (await signed.flash_lights())["response"]["result"] is True
    assert (await signed.honk_horn())["response"]["result"] is True
    departure = await signed.set_scheduled_departure(True, departure_time=7 * 60)
    assert departure["response"]["result"] is True
    assert car.scheduled_departure["departure_time"] == 7 * 60


async def test_charge_schedules_as_with_rest(
    signed: VehicleSigned[TeslaFleetApi],
    signing_sim: Simulator,
    session: aiohttp.ClientSession,
    signing_server: RunningSimulator,
) -> None:
    added = await signed.add_charge_schedule(
        days_of_week="Monday,Wednesday",
        enabled=True,
        lat=DEFAULT_HOME.lat,
        lon=DEFAULT_HOME.lon,
        start_time=22 * 60,
        end_time=6 * 60,
        name="night",
    )
    assert added == {"response": {"result": True, "reason": ""}}
    [stored] = signing_sim.vehicle().charge_schedules
    assert stored["days_of_week"] == 2 | 8
    assert stored["start_time"] == 22 * 60
    assert stored["end_time"] == 6 * 60
    assert stored["start_enabled"] is stored["end_enabled"] is True
    assert stored["name"] == "night"
    # Replacing by id, then removing, as with REST.
    replaced = await signed.add_charge_schedule(
        days_of_week="All",
        enabled=False,
        lat=DEFAULT_HOME.lat,
        lon=DEFAULT_HOME.lon,
        end_time=7 * 60,
        id=stored["id"],
    )
    assert replaced["response"]["result"] is True
    [again] = signing_sim.vehicle().charge_schedules
    assert (again["id"], again["days_of_week"], again["enabled"]) == (
        stored["id"],
        127,
        False,
    )
    assert again["start_enabled"] is False
    removed = await signed.remove_charge_schedule(stored["id"])
    assert removed == {"response": {"result": True, "reason": ""}}
    assert signing_sim.vehicle().charge_schedules == []
    missing = await signed.remove_charge_schedule(stored["id"])
    assert missing == {"response": {"result": False, "reason": "schedule not found"}}
    empty_days = await signed.add_charge_schedule(
        days_of_week=0, enabled=True, lat=1.0, lon=2.0, start_time=60
    )
    assert empty_days == {
        "response": {"result": False, "reason": "unrecognized day name: "}
    }


async def test_ping_and_unsupported_actions(
    signed: VehicleSigned[TeslaFleetApi],
) -> None:
    ping = await signed.ping()
    assert ping["response"]["result"] is True
    renamed = await signed.set_vehicle_name("Blue")
    assert renamed == {
        "response": {
            "result": False,
            "reason": "action not supported by the simulator",
        }
    }
    empty = await signed._sendInfotainment(Action(vehicleAction=VehicleAction()))
    assert empty["response"]["result"] is False


async def test_vehicle_security_domain(
    signed: VehicleSigned[TeslaFleetApi], signing_sim: Simulator
) -> None:
    car = signing_sim.vehicle()
    assert await signed.door_unlock() == {"response": {"result": True, "reason": ""}}
    assert car.snapshot().locked is False
    assert (await signed.door_lock())["response"]["result"] is True
    assert car.snapshot().locked is True
    assert (await signed.charge_port_door_open())["response"]["result"] is True
    assert (await signed.charge_port_door_close())["response"]["result"] is True
    unknown = await signed._sendVehicleSecurity(UnsignedMessage())
    assert unknown["response"]["reason"] == "GENERICERROR_NOT_SUPPORTED"
    trunk = await signed.actuate_trunk("rear")
    assert trunk == {
        "response": {"result": False, "reason": "GENERICERROR_NOT_SUPPORTED"}
    }
    # One handshake with VCSEC, then one request per command.
    assert len(_signed_requests(signing_sim)) == 7


class _AesSigned(VehicleSigned[TeslaFleetApi]):
    """The client's AES-GCM mode (encrypted requests and responses)."""

    _auth_method: ClassVar[Any] = "aes"


async def test_aes_gcm_requests_get_encrypted_answers(
    session: aiohttp.ClientSession,
    signing_server: RunningSimulator,
    signing_sim: Simulator,
    private_key: ec.EllipticCurvePrivateKey,
) -> None:
    api = _api(session, signing_server, signing_sim, private_key)
    vehicle = _AesSigned(api, DEFAULT_VIN)
    assert await vehicle.set_charge_limit(85) == {
        "response": {"result": True, "reason": ""}
    }
    assert signing_sim.vehicle().charge_limit_soc == 85
    assert (await vehicle.door_unlock())["response"]["result"] is True
    # A tampered ciphertext does not decrypt.
    session_info = vehicle._sessions[INFOTAINMENT]
    message = await vehicle._commandAes(session_info, _limit(70).SerializeToString())
    message.protobuf_message_as_bytes = (
        bytes([message.protobuf_message_as_bytes[0] ^ 1])
        + message.protobuf_message_as_bytes[1:]
    )
    reply = await _post_raw(vehicle, message)
    assert _fault(reply) == "MESSAGEFAULT_ERROR_INVALID_SIGNATURE"
    assert signing_sim.vehicle().charge_limit_soc == 85


# --- keys and pairing -----------------------------------------------------------


async def test_unpaired_key_gets_not_on_whitelist(
    session: aiohttp.ClientSession,
    signing_server: RunningSimulator,
    signing_sim: Simulator,
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    vehicle = VehicleSigned(
        _api(session, signing_server, signing_sim, stranger), DEFAULT_VIN
    )
    with pytest.raises(NotOnWhitelistFault):
        await vehicle.set_charge_limit(90)
    assert signing_sim.vehicle().charge_limit_soc == 80
    reply = await _post_raw(
        vehicle,
        RoutableMessage(
            to_destination=Destination(domain=INFOTAINMENT),
            session_info_request=SessionInfoRequest(public_key=_point(stranger)),
            uuid=b"0123456789abcdef",
        ),
    )
    info = SessionInfo.FromString(reply.session_info)
    assert info.status == 1  # SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST
    assert info.publicKey == b""
    assert not signing_sim.is_key_paired(_point(stranger))
    assert signing_sim.ledger.counts["command"] == 2  # refusals are billed


async def test_key_removed_after_handshake_is_unknown(
    signed: VehicleSigned[TeslaFleetApi],
    signing_sim: Simulator,
    private_key: ec.EllipticCurvePrivateKey,
) -> None:
    assert (await signed.set_charge_limit(90))["response"]["result"] is True
    assert signing_sim.vehicle().unpair_key(_point(private_key)) is True
    assert signing_sim.vehicle().unpair_key(_point(private_key)) is False
    with pytest.raises(TeslaFleetMessageFaultUnknownKeyId):
        await signed.set_charge_limit(70)
    assert signing_sim.vehicle().charge_limit_soc == 90


async def test_registered_app_key_is_paired_by_config(
    clock: SimClock, session: aiohttp.ClientSession
) -> None:
    private_pem, public_pem = new_key_pair()
    key = serialization.load_pem_private_key(private_pem.encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    paired = VehicleConfig(command_signing="required", key_paired=True)
    other = VehicleConfig(vin="7SAYGDEE0PF000003", command_signing="required")
    config = SimConfig(
        clients=[ClientConfig(registered_regions=())],
        accounts=[AccountConfig(vehicles=[paired, other])],
    )
    sim = Simulator(config, clock)
    sim.partners.register(
        DEFAULT_CLIENT_ID, "eu", "app.example.org", public_pem, clock.now()
    )
    async with running_simulator(sim) as server:
        api = _api(session, server, sim, key)
        assert (await VehicleSigned(api, paired.vin).set_charge_limit(70))["response"][
            "result"
        ] is True
        with pytest.raises(NotOnWhitelistFault):
            await VehicleSigned(api, other.vin).set_charge_limit(70)
        fleet = api.vehicles.createFleet(paired.vin)
        status = await fleet.fleet_status([paired.vin, other.vin])
        # The owner pairs the app's key on the second car, too.
        sim.vehicle(other.vin).pair_key(public_pem)
        after = await fleet.fleet_status([other.vin])
        assert (await VehicleSigned(api, other.vin).set_charge_limit(70))["response"][
            "result"
        ] is True
    assert status["response"]["key_paired_vins"] == [paired.vin]
    assert status["response"]["unpaired_vins"] == [other.vin]
    assert status["response"]["vehicle_info"][paired.vin]["total_number_of_keys"] == 4
    assert status["response"]["vehicle_info"][other.vin]["total_number_of_keys"] == 3
    assert after["response"]["key_paired_vins"] == [other.vin]
    assert sim.paired_keys(paired.vin) == [_point(key)]
    assert sim.paired_keys(other.vin) == [_point(key)]
    state = sim.to_dict()["vehicles"][other.vin]["keychain"]
    assert state == {"app_key_paired": False, "keys": [_point(key).hex()]}


# --- refusals a car makes ---------------------------------------------------------


async def test_tampered_messages_are_refused(
    signed: VehicleSigned[TeslaFleetApi],
    signing_sim: Simulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = await _signed_message(signed, _limit(70))
    payload = bytearray(message.protobuf_message_as_bytes)
    payload[-1] ^= 0x01
    message.protobuf_message_as_bytes = bytes(payload)
    reply = await _post_raw(signed, message)
    assert _fault(reply) == "MESSAGEFAULT_ERROR_INVALID_SIGNATURE"
    assert reply.session_info  # fresh session info to resync with
    message = await _signed_message(signed, _limit(70))
    tag = bytearray(message.signature_data.HMAC_Personalized_data.tag)
    tag[0] ^= 0x80
    message.signature_data.HMAC_Personalized_data.tag = bytes(tag)
    reply = await _post_raw(signed, message)
    assert _fault(reply) == "MESSAGEFAULT_ERROR_INVALID_SIGNATURE"
    # Through the client: the fault is an exception, the car is unchanged.
    original = signed._commandHmac

    async def tampering(
        session: Session[TeslaFleetApi], command: bytes, attempt: int = 1
    ) -> RoutableMessage:
        msg = await original(session, command)
        msg.protobuf_message_as_bytes = command + b"\x00"
        return msg

    monkeypatch.setattr(signed, "_commandHmac", tampering)
    with pytest.raises(TeslaFleetMessageFaultInvalidSignature):
        await signed.set_charge_limit(70)
    assert signing_sim.vehicle().charge_limit_soc == 80


async def test_replayed_message_is_refused(
    signed: VehicleSigned[TeslaFleetApi], signing_sim: Simulator
) -> None:
    message = await _signed_message(signed, _limit(70))
    first = await _post_raw(signed, message)
    assert first.signedMessageStatus.signed_message_fault == 0
    assert signing_sim.vehicle().charge_limit_soc == 70
    signing_sim.vehicle().set_charge_limit(80)
    replay = await _post_raw(signed, message)
    assert _fault(replay) == "MESSAGEFAULT_ERROR_INVALID_TOKEN_OR_COUNTER"
    assert replay.session_info
    logged = _signed_requests(signing_sim)[-1]
    assert (logged.status, logged.error) == (
        200,
        "MESSAGEFAULT_ERROR_INVALID_TOKEN_OR_COUNTER",
    )
    assert signing_sim.vehicle().charge_limit_soc == 80
    # An older message, never delivered, still fits the window.
    late = await _signed_message(signed, _limit(75))
    newer = await _signed_message(signed, _limit(76))
    assert (
        await _post_raw(signed, newer)
    ).signedMessageStatus.signed_message_fault == 0
    assert (await _post_raw(signed, late)).signedMessageStatus.signed_message_fault == 0
    assert signing_sim.vehicle().charge_limit_soc == 75
    again = await _post_raw(signed, late)
    assert _fault(again) == "MESSAGEFAULT_ERROR_INVALID_TOKEN_OR_COUNTER"


async def test_expired_message_is_refused_then_resynced(
    signed: VehicleSigned[TeslaFleetApi], signing_sim: Simulator, clock: SimClock
) -> None:
    message = await _signed_message(signed, _limit(70))
    clock.advance(timedelta(seconds=60))
    reply = await _post_raw(signed, message)
    assert _fault(reply) == "MESSAGEFAULT_ERROR_TIME_EXPIRED"
    assert signing_sim.vehicle().charge_limit_soc == 80
    # The client's clock offset is stale now: the car refuses, the client
    # takes the fresh session info, and the next command goes through.
    with pytest.raises(TeslaFleetMessageFaultTimeExpired):
        await signed.set_charge_limit(71)
    assert await signed.set_charge_limit(72) == {
        "response": {"result": True, "reason": ""}
    }
    assert signing_sim.vehicle().charge_limit_soc == 72


async def test_long_lived_message_without_counter_is_refused(
    signed: VehicleSigned[TeslaFleetApi],
) -> None:
    message = await _signed_message(signed, _limit(70))
    data = message.signature_data.HMAC_Personalized_data
    data.counter = 0
    data.expires_at += 60
    reply = await _post_raw(signed, message)
    assert _fault(reply) == "MESSAGEFAULT_ERROR_TIME_TO_LIVE_TOO_LONG"
    data.expires_at = (1 << 30) + 1
    reply = await _post_raw(signed, message)
    assert _fault(reply) == "MESSAGEFAULT_ERROR_BAD_PARAMETER"


async def test_reboot_changes_epoch_and_the_client_resyncs(
    signed: VehicleSigned[TeslaFleetApi], signing_sim: Simulator
) -> None:
    assert (await signed.set_charge_limit(90))["response"]["result"] is True
    old_epoch = signing_sim.vehicle().verifier.epoch(INFOTAINMENT)
    signing_sim.vehicle().reboot()
    assert signing_sim.vehicle().verifier.epoch(INFOTAINMENT) != old_epoch
    stale = await _signed_message(signed, _limit(60))
    reply = await _post_raw(signed, stale)
    assert _fault(reply) == "MESSAGEFAULT_ERROR_INCORRECT_EPOCH"
    assert SessionInfo.FromString(reply.session_info).epoch == (
        signing_sim.vehicle().verifier.epoch(INFOTAINMENT)
    )
    signing_sim.vehicle().reboot()
    before = len(_signed_requests(signing_sim))
    # The client retries after INCORRECT_EPOCH with the session info it got.
    assert (await signed.set_charge_limit(65))["response"]["result"] is True
    assert signing_sim.vehicle().charge_limit_soc == 65
    assert len(_signed_requests(signing_sim)) == before + 2


async def test_malformed_and_misaddressed_messages(
    signed: VehicleSigned[TeslaFleetApi],
) -> None:
    await signed._handshake(INFOTAINMENT)
    unsigned = RoutableMessage(
        to_destination=Destination(domain=INFOTAINMENT),
        protobuf_message_as_bytes=_limit(70).SerializeToString(),
        uuid=b"u" * 16,
    )
    reply = await _post_raw(signed, unsigned)
    assert _fault(reply) == "MESSAGEFAULT_ERROR_BAD_PARAMETER"
    autopilot = RoutableMessage(
        to_destination=Destination(domain=Domain.DOMAIN_AUTOPILOT),
        uuid=b"u" * 16,
    )
    reply = await _post_raw(signed, autopilot)
    assert _fault(reply) == "MESSAGEFAULT_ERROR_INVALID_DOMAINS"
    session = signed._sessions[INFOTAINMENT]
    garbage = await signed._commandHmac(session, b"\xff\xff\xff")
    reply = await _post_raw(signed, garbage)
    assert reply.signedMessageStatus.signed_message_fault == 0
    assert b"could not decode" in reply.protobuf_message_as_bytes
    vcsec = signed._sessions[Domain.DOMAIN_VEHICLE_SECURITY]
    await signed._handshake(Domain.DOMAIN_VEHICLE_SECURITY)
    garbage = await signed._commandHmac(vcsec, b"\xff\xff\xff")
    reply = await _post_raw(signed, garbage)
    assert reply.signedMessageStatus.signed_message_fault == 0


# --- HTTP-level answers -------------------------------------------------------------


async def test_http_level_refusals(
    session: aiohttp.ClientSession,
    signing_server: RunningSimulator,
    signing_sim: Simulator,
    signed: VehicleSigned[TeslaFleetApi],
    private_key: ec.EllipticCurvePrivateKey,
) -> None:
    token = signing_sim.issue_tokens()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{signing_server.url}/api/1/vehicles/{DEFAULT_VIN}/signed_command"
    for body in ({}, {"routable_message": "%%%"}, {"routable_message": "/w=="}):
        async with session.post(url, json=body, headers=headers) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"] == "invalid_request"
    # A car without the protocol: 422, Tesla's "use the REST commands".
    legacy = VehicleSigned(
        _api(session, signing_server, signing_sim, private_key), LEGACY_VIN
    )
    with pytest.raises(InvalidResource):
        await legacy.set_charge_limit(90)
    # An asleep car does not answer: 408, like any live call.
    signing_sim.vehicle().unplug()
    signing_sim.vehicle().fall_asleep()
    with pytest.raises(VehicleOffline):
        await signed.set_charge_limit(90)


async def test_signed_commands_need_a_command_scope(
    clock: SimClock,
    session: aiohttp.ClientSession,
    private_key: ec.EllipticCurvePrivateKey,
) -> None:
    client = ClientConfig(scopes=("openid", "vehicle_device_data"))
    charging = ClientConfig(
        client_id="charging-only", scopes=("openid", "vehicle_charging_cmds")
    )
    config = SimConfig(
        clients=[client, charging],
        accounts=[AccountConfig(vehicles=[VehicleConfig(command_signing="required")])],
    )
    sim = Simulator(config, clock)
    sim.vehicle().pair_key(_point(private_key))
    async with running_simulator(sim) as server:
        api = _api(session, server, sim, private_key)
        with pytest.raises(Forbidden):
            await VehicleSigned(api, DEFAULT_VIN).set_charge_limit(90)
        token = sim.issue_tokens(client_id="charging-only")["access_token"]
        limited = TeslaFleetApi(session, access_token=token, server=server.url)
        limited.private_key = private_key
        vehicle = VehicleSigned(limited, DEFAULT_VIN)
        assert (await vehicle.set_charge_limit(90))["response"]["result"] is True
        sentry = await vehicle.set_sentry_mode(True)
        lock = await vehicle.door_lock()
    assert sentry == {
        "response": {"result": False, "reason": "unauthorized missing scopes"}
    }
    assert lock == {
        "response": {"result": False, "reason": "GENERICERROR_UNAUTHORIZED"}
    }


async def test_admin_pairs_keys_and_reboots(
    signing_server: RunningSimulator,
    signing_sim: Simulator,
    session: aiohttp.ClientSession,
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    pem = (
        stranger.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )
    url = f"{signing_server.url}/_sim/vehicles/{DEFAULT_VIN}"
    async with session.post(url, json={"action": "pair_key", "public_key": pem}) as r:
        assert r.status == 200
        keychain = (await r.json())["vehicle"]["keychain"]
    assert _point(stranger).hex() in keychain["keys"]
    hex_key = _point(stranger).hex()
    async with session.post(
        url, json={"action": "unpair_key", "public_key": hex_key}
    ) as r:
        assert r.status == 200
    async with session.post(url, json={"action": "pair_app_key"}) as r:
        assert (await r.json())["vehicle"]["keychain"]["app_key_paired"] is True
    async with session.post(url, json={"action": "reboot"}) as r:
        assert r.status == 200
    async with session.post(url, json={"action": "pair_key", "public_key": "00"}) as r:
        assert r.status == 400
    assert signing_sim.vehicle().verifier.reboots == 1
    assert not signing_sim.is_key_paired(_point(stranger))


# --- protocol pieces ----------------------------------------------------------------


def test_keychain_and_key_formats(private_key: ec.EllipticCurvePrivateKey) -> None:
    point = _point(private_key)
    assert public_key_bytes(point.hex()) == point
    _, ec_pem = new_key_pair()
    assert len(public_key_bytes(ec_pem)) == 65
    with pytest.raises(ValueError, match="secp256r1"):
        public_key_bytes(_rsa_public_pem())
    keychain = Keychain()
    assert keychain.pair(point) == keychain.pair(point.hex()) == point
    assert keychain.keys == [point]
    assert keychain.count(None) == 1
    assert not keychain.holds_app_key(None)
    assert keychain.holds_app_key(point)
    keychain.app_key_paired = True
    assert keychain.count(point) == 1
    assert keychain.count(None) == 2
    other = b"\x04" + b"\x01" * 64
    assert keychain.entries(frozenset({other, point})) == [point, other]


def test_request_hash_of_hmac_requests() -> None:
    def message(domain: Domain) -> RoutableMessage:
        return RoutableMessage(
            to_destination=Destination(domain=domain),
            signature_data=SignatureData(
                HMAC_Personalized_data=HMAC_Personalized_Signature_Data(tag=b"t" * 32)
            ),
        )

    assert request_hash(message(INFOTAINMENT)) == b"\x08" + b"t" * 32
    vcsec = request_hash(message(Domain.DOMAIN_VEHICLE_SECURITY))
    assert vcsec == b"\x08" + b"t" * 16


def test_sliding_window() -> None:
    window = SlidingWindow()
    assert window.accept(1)
    assert not window.accept(1)
    assert window.accept(40)
    assert not window.accept(7)  # older than the window can tell
    assert window.accept(9)
    assert not window.accept(9)


def test_tlv_and_faults() -> None:
    assert tlv((0, b"\x05"), (2, b"VIN")) == b"\x00\x01\x05\x02\x03VIN\xff"
    with pytest.raises(ValueError, match="tag order"):
        tlv((2, b""), (1, b""))
    error = FaultError(MessageFault_E.MESSAGEFAULT_ERROR_INCORRECT_EPOCH)
    assert str(error) == "MESSAGEFAULT_ERROR_INCORRECT_EPOCH"
    assert error.resync
    assert day_names(1 | 64) == "Sunday,Saturday"


def test_vehicle_keys_are_stable_per_seed_and_vin(clock: SimClock) -> None:
    first = Simulator(clock=clock).vehicle().vehicle_public_key
    assert Simulator(clock=clock).vehicle().vehicle_public_key == first
    reseeded = Simulator(SimConfig(seed=7), clock).vehicle().vehicle_public_key
    assert reseeded != first
    assert len(first) == 65


def _rsa_public_pem() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )
