"""The command-signing key: one EC P-256 key per installation (or the user's own).

Cars built since about 2021 accept charging commands only when signed with a
virtual key. The private key lives in Home Assistant's storage folder, created
on first need with owner-only permissions; it is never logged nor put in
diagnostics. Its public key is what Tesla downloads from the app's domain
(``/.well-known/appspecific/com.tesla.3p.public-key.pem``), what Home
Assistant itself serves at that path for users whose Home Assistant answers on
the app's domain, and what the owner adds to each car in the Tesla app.

Users who already have a key (e.g. the tesla-http-proxy add-on's) can point an
entry at that PEM file instead.

Written here rather than taken from tesla-fleet-api's ``get_private_key``:
that helper does not check the curve of a key it loads and, in the versions
Home Assistant pins, does not create the file owner-only; ``cryptography``
does the actual key work.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
import os
from pathlib import Path

from aiohttp import ClientError, ClientTimeout, web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from homeassistant.components.http import KEY_HASS, HomeAssistantView
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.storage import STORAGE_DIR
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN, LOGGER
from .registration import PUBLIC_KEY_PATH, public_key_url

KEY_FILE = f"{DOMAIN}.private_key.pem"
KEY_CHECK_TIMEOUT = ClientTimeout(total=15)
OWNER_ONLY = 0o600
DATA_KEYS: HassKey[dict[str, SigningKey]] = HassKey(f"{DOMAIN}_keys")


class SigningKeyError(Exception):
    """A key file that cannot be used; ``reason`` is a translation key."""

    def __init__(self, reason: str) -> None:
        """Initialize with why the key cannot be used."""
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key and its public forms."""

    private_key: ec.EllipticCurvePrivateKey
    path: str

    @property
    def public_pem(self) -> str:
        """Return the public key as PEM (SubjectPublicKeyInfo)."""
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            .decode()
        )

    @property
    def public_point(self) -> bytes:
        """Return the public key as an uncompressed point (what cars store)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )


def default_key_path(hass: HomeAssistant) -> str:
    """Return where the installation's key is kept."""
    return hass.config.path(STORAGE_DIR, KEY_FILE)


def _load(path: str) -> ec.EllipticCurvePrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SigningKeyError("key_file_unreadable") from err
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as err:
        raise SigningKeyError("key_file_invalid") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise SigningKeyError("key_wrong_curve")
    return key


def _load_or_create(path: str) -> ec.EllipticCurvePrivateKey:
    """Load the key at ``path``, or create it there, owner-only, if missing."""
    if Path(path).exists():
        return _load(path)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except FileExistsError:  # created meanwhile by someone else: use theirs
        return _load(path)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    LOGGER.info("Created the command-signing key in Home Assistant's storage")
    return key


async def async_get_signing_key(
    hass: HomeAssistant, path: str | None = None
) -> SigningKey:
    """Return the key at ``path`` (the user's own), or the installation's.

    The installation's key is created on first need; a user's file must
    exist and hold an EC P-256 private key (SigningKeyError otherwise).
    """
    keys = hass.data.setdefault(DATA_KEYS, {})
    own = path is not None
    path = path or default_key_path(hass)
    if (known := keys.get(path)) is not None:
        return known
    private = await hass.async_add_executor_job(_load if own else _load_or_create, path)
    key = SigningKey(private, path)
    keys[path] = key
    return key


class KeyCheck(StrEnum):
    """What the app's domain serves compared with our key."""

    MATCHES = "matches"
    DIFFERS = "differs"
    UNREACHABLE = "unreachable"


async def async_check_hosted_key(
    hass: HomeAssistant, domain: str, key: SigningKey
) -> KeyCheck:
    """Fetch the public key ``domain`` serves and compare it with ``key``'s."""
    session = async_get_clientsession(hass)
    try:
        async with session.get(
            public_key_url(domain), timeout=KEY_CHECK_TIMEOUT, allow_redirects=False
        ) as resp:
            if resp.status != web.HTTPOk.status_code:
                return KeyCheck.UNREACHABLE
            served = await resp.read()
    except ClientError, TimeoutError:
        return KeyCheck.UNREACHABLE
    try:
        public = serialization.load_pem_public_key(served)
    except ValueError, TypeError:
        return KeyCheck.DIFFERS
    point = (
        public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        if isinstance(public, ec.EllipticCurvePublicKey)
        else b""
    )
    return KeyCheck.MATCHES if point == key.public_point else KeyCheck.DIFFERS


class PublicKeyView(HomeAssistantView):
    """Serve the installation's public key where Tesla looks for it."""

    url = PUBLIC_KEY_PATH
    name = f"{DOMAIN}:public_key"
    requires_auth = False

    async def get(self, request: web.Request) -> web.Response:
        """Return the public key as PEM."""
        key = await async_get_signing_key(request.app[KEY_HASS])
        return web.Response(text=key.public_pem, content_type="application/x-pem-file")
