"""The car's side of Tesla's Vehicle Command Protocol: a verifier as strict as a car.

Why this is written here: tesla-fleet-api, Tesla's vehicle-command (Go) and
every other library implement the *signer* (the app's side). The verifier
lives in the car's firmware; the only public copy is the Go package
``internal/authentication`` of Tesla's vehicle-command repository, which is not
importable from Python. So the simulator carries its own, written from that
package (``verifier.go``, ``peer.go``, ``metadata.go``, ``window.go``) and
from what tesla-fleet-api's ``Commands`` sends and checks.

The protocol, as the simulated car speaks it (``POST
/api/1/vehicles/{vin}/signed_command {"routable_message": <base64>}``,
answered with ``{"response": <base64 RoutableMessage>}``):

* Every car has an EC P-256 key pair and, per domain (VCSEC = vehicle
  security, infotainment), a 16-byte *epoch* and a clock counting seconds
  since the epoch began. A reboot (:meth:`VehicleVerifier.reboot`) starts new
  epochs.
* Handshake: the app sends ``session_info_request {public_key}``. A key that is
  not on the car's keychain gets ``SessionInfo {status:
  KEY_NOT_ON_WHITELIST}`` with no vehicle key and no tag (no session exists for
  it). Otherwise the car answers ``SessionInfo {counter, publicKey, epoch,
  clock_time}`` authenticated by ``session_info_tag = HMAC-SHA256(
  HMAC-SHA256(K, "session info"), TLV(signature type HMAC, personalization
  VIN, challenge = request uuid) || 0xFF || encoded SessionInfo)`` where ``K =
  SHA1(ECDH(app key, car key))[:16]``.
* Commands carry ``signer_identity.public_key`` and either
  ``HMAC_Personalized_data {epoch, counter, expires_at, tag}`` with ``tag =
  HMAC-SHA256(HMAC-SHA256(K, "authenticated command"), TLV || 0xFF ||
  payload)``, or ``AES_GCM_Personalized_data {epoch, nonce, counter,
  expires_at, tag}``: AES-128-GCM under K with AAD ``SHA256(TLV || 0xFF)``.
  The TLV is (tag, length, value) in increasing tag order: signature type,
  domain, personalization (VIN), epoch, expires_at (u32 BE), counter (u32 BE)
  and, only when the message has flags, flags (u32 BE).
* Checks, in the Go verifier's order: signer key on the keychain (else
  ``UNKNOWN_KEY_ID``), domain, epoch (``INCORRECT_EPOCH``), expiry against
  the epoch clock (``TIME_EXPIRED``), expiry beyond the epoch length
  (``BAD_PARAMETER``), a counter of 0 or below the last one with more than
  30 s to live (``TIME_TO_LIVE_TOO_LONG``), the tag (``INVALID_SIGNATURE``)
  and the anti-replay window of 32 counters per key and domain
  (``INVALID_TOKEN_OR_COUNTER``). Every fault after the key check carries
  fresh, authenticated session info so the app can resync.
* A request with ``FLAG_ENCRYPT_RESPONSE`` gets its answer encrypted
  (``AES_GCM_Response_data``, AAD = SHA256 of the response TLV: signature
  type, domain, VIN, counter, flags, request hash, fault); otherwise the
  answer is plain.

What the payload *does* is not decided here: :meth:`VehicleVerifier.answer`
hands the verified plaintext to a callback (see :mod:`.vcp_actions`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
import hashlib
import hmac
import os
import struct
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import (  # type: ignore[import-untyped,unused-ignore]
    DecodeError,
)
from tesla_protocol.command.signatures_pb2 import (
    AES_GCM_Personalized_Signature_Data,
    AES_GCM_Response_Signature_Data,
    HMAC_Personalized_Signature_Data,
    HMAC_Signature_Data,
    Session_Info_Status,
    SessionInfo,
    SignatureData,
    SignatureType,
    Tag,
)
from tesla_protocol.command.universal_message_pb2 import (
    Destination,
    Domain,
    Flags,
    MessageFault_E,
    MessageStatus,
    OperationStatus_E,
    RoutableMessage,
)

EPOCH_LENGTH = 16
EPOCH_SECONDS = 1 << 30  # expires_at beyond this is a bad parameter
WINDOW_SIZE = 32  # counters remembered below the highest one
MAX_SECONDS_WITHOUT_COUNTER = 30
LABEL_SESSION_INFO = b"session info"
LABEL_COMMAND = b"authenticated command"
DOMAINS = (Domain.DOMAIN_VEHICLE_SECURITY, Domain.DOMAIN_INFOTAINMENT)
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

# Executes a verified payload for a domain; returns the payload of the answer.
Executor = Callable[[int, bytes], bytes]


def fault_name(fault: int) -> str:
    """Return a MessageFault_E name, e.g. "MESSAGEFAULT_ERROR_INCORRECT_EPOCH"."""
    return str(MessageFault_E.Name(fault))


def public_key_bytes(key: bytes | str) -> bytes:
    """Return the 65-byte uncompressed P-256 point of ``key``.

    ``key`` may be the point itself, its hex text, or a PEM public key.
    Raises ValueError for anything that is not a P-256 public key.
    """
    if isinstance(key, str):
        text = key.strip()
        if text.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(text.encode())
            if not isinstance(loaded, ec.EllipticCurvePublicKey) or not isinstance(
                loaded.curve, ec.SECP256R1
            ):
                raise ValueError("the public key must be EC prime256v1 (secp256r1)")
            return loaded.public_bytes(
                serialization.Encoding.X962,
                serialization.PublicFormat.UncompressedPoint,
            )
        key = bytes.fromhex(text)
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    return point.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def decode_message(data: bytes) -> RoutableMessage | None:
    """Parse a RoutableMessage; None when the bytes are not one."""
    try:
        message: RoutableMessage = RoutableMessage.FromString(data)
    except DecodeError:
        return None
    return message


def encode(message: Any) -> bytes:
    """Serialize a protobuf message (protobuf itself ships no type hints)."""
    return bytes(message.SerializeToString())


def tlv(*items: tuple[int, bytes]) -> bytes:
    """Encode metadata items (tag, value) as the protocol's TLV, ending in 0xFF."""
    out = bytearray()
    last = -1
    for tag, value in items:
        if tag < last or len(value) > 255:
            raise ValueError("metadata must be in tag order, values up to 255 bytes")
        last = tag
        out += bytes((tag, len(value))) + value
    out.append(Tag.TAG_END)
    return bytes(out)


def u32(value: int) -> bytes:
    """Big-endian unsigned 32-bit integer."""
    return struct.pack(">I", value)


@dataclass(slots=True)
class Keychain:
    """The public keys a car accepts commands from.

    ``app_key_paired`` stands for "the public key of the app's registered
    domain is on the keychain" (``VehicleConfig.key_paired``): whichever key
    the app registered with ``partner_accounts`` is accepted. ``keys`` are
    keys paired explicitly (uncompressed points), e.g. by a test.
    """

    app_key_paired: bool = False
    keys: list[bytes] = field(default_factory=list)

    def pair(self, key: bytes | str) -> bytes:
        """Add a public key (point, hex or PEM); returns the point."""
        point = public_key_bytes(key)
        if point not in self.keys:
            self.keys.append(point)
        return point

    def unpair(self, key: bytes | str) -> bool:
        """Remove an explicitly paired key; returns whether it was there."""
        point = public_key_bytes(key)
        if point in self.keys:
            self.keys.remove(point)
            return True
        return False

    def holds(self, key: bytes, app_keys: frozenset[bytes]) -> bool:
        """Whether ``key`` is on the keychain (``app_keys``: registered app keys)."""
        return key in self.keys or (self.app_key_paired and key in app_keys)

    def holds_app_key(self, app_key: bytes | None) -> bool:
        """Whether the key of one app (None: registered without a known key) is on it."""
        if self.app_key_paired:
            return True
        return app_key is not None and app_key in self.keys

    def entries(self, app_keys: frozenset[bytes]) -> list[bytes]:
        """Every key the car accepts, explicitly paired ones first."""
        extra = sorted(app_keys - set(self.keys)) if self.app_key_paired else []
        return [*self.keys, *extra]

    def count(self, app_key: bytes | None) -> int:
        """Keys paired, as one app sees them (its own key counted once)."""
        own = self.app_key_paired and (app_key is None or app_key not in self.keys)
        return len(self.keys) + int(own)


@dataclass(slots=True)
class SlidingWindow:
    """Anti-replay: the highest counter seen and a bitmap of the 32 below it."""

    counter: int = 0
    history: int = 0

    def accept(self, new: int) -> bool:
        """Record ``new``; False when it was seen before or is too old to tell."""
        if new == self.counter:
            return False
        if new < self.counter:
            age = self.counter - new
            if age > WINDOW_SIZE or (self.history >> (age - 1)) & 1:
                return False
            self.history |= 1 << (age - 1)
            return True
        shift = new - self.counter
        self.history = ((self.history << shift) | (1 << (shift - 1))) & (
            (1 << WINDOW_SIZE) - 1
        )
        self.counter = new
        return True


@dataclass(slots=True)
class DomainSession:
    """One domain's epoch, when it began, and a window per signer key."""

    epoch: bytes
    started: datetime
    windows: dict[bytes, SlidingWindow] = field(default_factory=dict)

    def clock(self, now: datetime) -> int:
        """Seconds since the epoch began."""
        return max(int((now - self.started).total_seconds()), 0)

    def window(self, key: bytes) -> SlidingWindow:
        """Return the anti-replay window of one signer key."""
        return self.windows.setdefault(key, SlidingWindow())


class FaultError(Exception):
    """A message the car refuses; ``resync`` adds session info to the answer."""

    def __init__(self, fault: int, resync: bool = True) -> None:
        """Name the MessageFault_E value."""
        super().__init__(fault_name(fault))
        self.fault = fault
        self.resync = resync


@dataclass(slots=True)
class _Verified:
    domain: int
    key: bytes
    shared: bytes
    plaintext: bytes
    counter: int


class VehicleVerifier:
    """A car's verifier: its key pair and the sessions of its two domains.

    The key is derived from ``seed`` and the VIN, so a simulated car keeps its
    identity across runs; epochs change on :meth:`reboot`.
    """

    def __init__(self, vin: str, seed: int, now: datetime) -> None:
        """Create the car's key and the first epochs."""
        self.vin = vin
        self._seed = seed
        digest = hashlib.sha256(f"vcp-vehicle-key:{seed}:{vin}".encode()).digest()
        scalar = int.from_bytes(digest) % (P256_ORDER - 1) + 1
        self._private = ec.derive_private_key(scalar, ec.SECP256R1())
        self.public_key = self._private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.reboots = 0
        self.handshakes = 0
        """Session-info requests answered (what an app pays for a new session)."""
        self.refusals: list[int] = []
        """Faults the car answers to its next verified commands (e.g. busy)."""
        self.sessions: dict[int, DomainSession] = {}
        self._new_epochs(now)

    def _new_epochs(self, now: datetime) -> None:
        for domain in DOMAINS:
            text = f"vcp-epoch:{self._seed}:{self.vin}:{domain}:{self.reboots}"
            epoch = hashlib.sha256(text.encode()).digest()[:EPOCH_LENGTH]
            self.sessions[domain] = DomainSession(epoch, now)

    def reboot(self, now: datetime) -> None:
        """Start new epochs (counters start over); apps must resync."""
        self.reboots += 1
        self._new_epochs(now)

    def refuse_next(self, fault: int) -> None:
        """Answer the next verified command with ``fault`` (MessageFault_E).

        For the faults a car sends about itself rather than the message:
        busy, timeout, remote access disabled.
        """
        self.refusals.append(fault)

    def epoch(self, domain: int) -> bytes:
        """Return the current epoch of ``domain``."""
        return self.sessions[domain].epoch

    def shared_key(self, signer: bytes) -> bytes:
        """K = SHA1(ECDH shared secret)[:16] with the signer's public key."""
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), signer)
        secret = self._private.exchange(ec.ECDH(), peer)
        return hashlib.sha1(secret).digest()[:16]  # noqa: S324 - the protocol's KDF

    # --- answers ------------------------------------------------------------

    def answer(
        self,
        request: RoutableMessage,
        now: datetime,
        on_keychain: Callable[[bytes], bool],
        execute: Executor,
    ) -> RoutableMessage:
        """Answer one routable message as the car would."""
        domain = int(request.to_destination.domain)
        reply = RoutableMessage(
            to_destination=request.from_destination,
            from_destination=Destination(domain=domain),  # type: ignore[arg-type]
            request_uuid=request.uuid,
            uuid=os.urandom(16),
        )
        if domain not in self.sessions:
            return _faulted(reply, MessageFault_E.MESSAGEFAULT_ERROR_INVALID_DOMAINS)
        session = self.sessions[domain]
        if request.HasField("session_info_request"):
            self.handshakes += 1
            key = request.session_info_request.public_key
            if not on_keychain(key):
                info = SessionInfo(
                    status=Session_Info_Status.SESSION_INFO_STATUS_KEY_NOT_ON_WHITELIST
                )
                reply.session_info = info.SerializeToString()
                return reply
            self._attach_session_info(reply, session, key, request.uuid, now)
            return reply
        try:
            verified = self._verify(request, session, now, on_keychain)
        except FaultError as fault:
            _faulted(reply, fault.fault)
            if fault.resync:
                key = request.signature_data.signer_identity.public_key
                self._attach_session_info(reply, session, key, request.uuid, now)
            return reply
        if self.refusals:
            return _faulted(reply, self.refusals.pop(0))
        payload = execute(domain, verified.plaintext)
        if request.flags & (1 << Flags.FLAG_ENCRYPT_RESPONSE):
            _encrypt_reply(reply, request, verified, payload, self.vin)
        else:
            reply.protobuf_message_as_bytes = payload
        return reply

    def _attach_session_info(
        self,
        reply: RoutableMessage,
        session: DomainSession,
        key: bytes,
        challenge: bytes,
        now: datetime,
    ) -> None:
        info = SessionInfo(
            counter=session.window(key).counter,
            publicKey=self.public_key,
            epoch=session.epoch,
            clock_time=session.clock(now),
            status=Session_Info_Status.SESSION_INFO_STATUS_OK,
        ).SerializeToString()
        info_key = hmac.digest(self.shared_key(key), LABEL_SESSION_INFO, "sha256")
        metadata = tlv(
            (Tag.TAG_SIGNATURE_TYPE, bytes([SignatureType.SIGNATURE_TYPE_HMAC])),
            (Tag.TAG_PERSONALIZATION, self.vin.encode()),
            (Tag.TAG_CHALLENGE, challenge),
        )
        reply.session_info = info
        reply.signature_data.CopyFrom(
            SignatureData(
                session_info_tag=HMAC_Signature_Data(
                    tag=hmac.digest(info_key, metadata + info, "sha256")
                )
            )
        )

    def _verify(
        self,
        request: RoutableMessage,
        session: DomainSession,
        now: datetime,
        on_keychain: Callable[[bytes], bool],
    ) -> _Verified:
        signature = request.signature_data
        which = signature.WhichOneof("sig_type")
        if which not in ("HMAC_Personalized_data", "AES_GCM_Personalized_data"):
            raise FaultError(
                MessageFault_E.MESSAGEFAULT_ERROR_BAD_PARAMETER, resync=False
            )
        key = signature.signer_identity.public_key
        if not on_keychain(key):
            raise FaultError(
                MessageFault_E.MESSAGEFAULT_ERROR_UNKNOWN_KEY_ID, resync=False
            )
        data: HMAC_Personalized_Signature_Data | AES_GCM_Personalized_Signature_Data
        if which == "HMAC_Personalized_data":
            data = signature.HMAC_Personalized_data
            method = SignatureType.SIGNATURE_TYPE_HMAC_PERSONALIZED
        else:
            data = signature.AES_GCM_Personalized_data
            method = SignatureType.SIGNATURE_TYPE_AES_GCM_PERSONALIZED
        clock = session.clock(now)
        window = session.window(key)
        if data.epoch and data.epoch != session.epoch:
            raise FaultError(MessageFault_E.MESSAGEFAULT_ERROR_INCORRECT_EPOCH)
        if data.expires_at and data.expires_at < clock:
            raise FaultError(MessageFault_E.MESSAGEFAULT_ERROR_TIME_EXPIRED)
        if data.expires_at > EPOCH_SECONDS:
            raise FaultError(MessageFault_E.MESSAGEFAULT_ERROR_BAD_PARAMETER)
        if (data.counter == 0 or data.counter < window.counter) and (
            data.expires_at == 0
            or data.expires_at - clock > MAX_SECONDS_WITHOUT_COUNTER
        ):
            raise FaultError(MessageFault_E.MESSAGEFAULT_ERROR_TIME_TO_LIVE_TOO_LONG)
        items = [
            (Tag.TAG_SIGNATURE_TYPE, bytes([method])),
            (Tag.TAG_DOMAIN, bytes([request.to_destination.domain])),
            (Tag.TAG_PERSONALIZATION, self.vin.encode()),
            (Tag.TAG_EPOCH, session.epoch),
            (Tag.TAG_EXPIRES_AT, u32(data.expires_at)),
            (Tag.TAG_COUNTER, u32(data.counter)),
        ]
        if request.flags:
            items.append((Tag.TAG_FLAGS, u32(request.flags)))
        metadata = tlv(*items)
        shared = self.shared_key(key)  # keychain keys are valid points
        payload = request.protobuf_message_as_bytes
        if isinstance(data, HMAC_Personalized_Signature_Data):
            command_key = hmac.digest(shared, LABEL_COMMAND, "sha256")
            expected = hmac.digest(command_key, metadata + payload, "sha256")
            if not hmac.compare_digest(expected, data.tag):
                raise FaultError(MessageFault_E.MESSAGEFAULT_ERROR_INVALID_SIGNATURE)
            plaintext = payload
        else:
            aad = hashlib.sha256(metadata).digest()
            try:
                plaintext = AESGCM(shared).decrypt(data.nonce, payload + data.tag, aad)
            except (InvalidTag, ValueError) as err:
                raise FaultError(
                    MessageFault_E.MESSAGEFAULT_ERROR_INVALID_SIGNATURE
                ) from err
        if data.counter and not window.accept(data.counter):
            raise FaultError(MessageFault_E.MESSAGEFAULT_ERROR_INVALID_TOKEN_OR_COUNTER)
        return _Verified(
            int(request.to_destination.domain), key, shared, plaintext, data.counter
        )


def _faulted(reply: RoutableMessage, fault: int) -> RoutableMessage:
    reply.signedMessageStatus.CopyFrom(
        MessageStatus(
            operation_status=OperationStatus_E.OPERATIONSTATUS_ERROR,
            signed_message_fault=fault,  # type: ignore[arg-type]
        )
    )
    return reply


def request_hash(request: RoutableMessage) -> bytes:
    """Return the request id a response is bound to: signature type byte + tag.

    An HMAC tag to VCSEC is cut to 16 bytes (VCSEC's memory constraints).
    """
    signature = request.signature_data
    if signature.HasField("AES_GCM_Personalized_data"):
        return (
            bytes([SignatureType.SIGNATURE_TYPE_AES_GCM_PERSONALIZED])
            + signature.AES_GCM_Personalized_data.tag
        )
    tag = signature.HMAC_Personalized_data.tag
    if request.to_destination.domain == Domain.DOMAIN_VEHICLE_SECURITY:
        tag = tag[:16]
    return bytes([SignatureType.SIGNATURE_TYPE_HMAC_PERSONALIZED]) + tag


def _encrypt_reply(
    reply: RoutableMessage,
    request: RoutableMessage,
    verified: _Verified,
    payload: bytes,
    vin: str,
) -> None:
    metadata = tlv(
        (
            Tag.TAG_SIGNATURE_TYPE,
            bytes([SignatureType.SIGNATURE_TYPE_AES_GCM_RESPONSE]),
        ),
        (Tag.TAG_DOMAIN, bytes([verified.domain])),
        (Tag.TAG_PERSONALIZATION, vin.encode()),
        (Tag.TAG_COUNTER, u32(verified.counter)),
        (Tag.TAG_FLAGS, u32(reply.flags)),
        (Tag.TAG_REQUEST_HASH, request_hash(request)),
        (Tag.TAG_FAULT, u32(reply.signedMessageStatus.signed_message_fault)),
    )
    nonce = os.urandom(12)
    sealed = AESGCM(verified.shared).encrypt(
        nonce, payload, hashlib.sha256(metadata).digest()
    )
    reply.protobuf_message_as_bytes = sealed[:-16]
    reply.signature_data.CopyFrom(
        SignatureData(
            AES_GCM_Response_data=AES_GCM_Response_Signature_Data(
                nonce=nonce, counter=verified.counter, tag=sealed[-16:]
            )
        )
    )


__all__ = [
    "DOMAINS",
    "DecodeError",
    "FaultError",
    "Keychain",
    "SlidingWindow",
    "VehicleVerifier",
    "decode_message",
    "encode",
    "fault_name",
    "public_key_bytes",
    "request_hash",
    "tlv",
]
