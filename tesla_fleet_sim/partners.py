"""Partner registration: which app is registered in which region, with which key.

Before an app may call the Fleet API for users of a region it registers there:
a partner token (``grant_type=client_credentials``, ``audience`` = the
region's base URL), then ``POST /api/1/partner_accounts {"domain": ...}``. The
domain must serve the app's EC P-256 public key at
``https://<domain>/.well-known/appspecific/com.tesla.3p.public-key.pem``.

The simulator never goes to the network for that key: it asks
:attr:`PartnerRegistry.fetch_public_key`, which by default looks in
:attr:`PartnerRegistry.hosted_keys` (``host_public_key(domain, pem)``). Tests
may replace it with any async callable, e.g. one fetching from a local server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .config import SimConfig

PUBLIC_KEY_PATH = "/.well-known/appspecific/com.tesla.3p.public-key.pem"
DOMAIN_PATTERN = re.compile(
    r"(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)

PublicKeyFetcher = Callable[[str], Awaitable[str | None]]


class RegistrationError(Exception):
    """A partner_accounts request that Tesla would refuse."""

    def __init__(self, status: int, message: str) -> None:
        """Describe the refusal with its HTTP status."""
        super().__init__(message)
        self.status = status
        self.message = message


def public_key_url(domain: str) -> str:
    """Where Tesla looks for the public key of ``domain``."""
    return f"https://{domain}{PUBLIC_KEY_PATH}"


def new_key_pair() -> tuple[str, str]:
    """Return a fresh EC P-256 key pair as PEM text (private, public)."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode()
    )
    return private_pem, public_pem


def public_key_hex(pem: str) -> str:
    """Return the uncompressed point of an EC P-256 public key (ValueError if not)."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as err:
        raise ValueError("not a PEM public key") from err
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise ValueError(  # noqa: TRY004 - callers handle ValueError
            "the public key must be EC prime256v1 (secp256r1)"
        )
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return point.hex()


def normalize_domain(domain: object) -> str:
    """Return a bare lower-case host name, or raise RegistrationError (400)."""
    text = domain.strip().lower() if isinstance(domain, str) else ""
    if not DOMAIN_PATTERN.fullmatch(text):
        raise RegistrationError(400, f"Invalid domain {domain!r}")
    return text


@dataclass(slots=True)
class Registration:
    """An app registered in one region."""

    client_id: str
    region: str
    domain: str
    public_key: str | None  # hex of the uncompressed point; None: preconfigured
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """Return the registration as the partner_accounts endpoint shows it."""
        return {
            "client_id": self.client_id,
            "region": self.region,
            "domain": self.domain,
            "public_key": self.public_key,
            "created_at": self.created_at.isoformat(),
        }


class PartnerRegistry:
    """Registrations per (client, region) and the public keys domains serve."""

    def __init__(self, config: SimConfig, now: datetime) -> None:
        """Start with the registrations ``config`` asks for."""
        self._config = config
        self.hosted_keys: dict[str, str] = {}
        self.fetch_public_key: PublicKeyFetcher = self._hosted_key
        self._registrations: dict[tuple[str, str], Registration] = {}
        for client in config.clients:
            for region in config.registered_regions(client):
                self._registrations[(client.client_id, region)] = Registration(
                    client.client_id, region, client.domain, None, now
                )

    async def _hosted_key(self, domain: str) -> str | None:
        return self.hosted_keys.get(domain)

    def host_public_key(self, domain: str, pem: str) -> None:
        """Make ``domain`` serve ``pem`` at the well-known path."""
        self.hosted_keys[domain.lower()] = pem

    def is_registered(self, client_id: str | None, region: str) -> bool:
        """Whether ``client_id`` is registered in ``region``."""
        return client_id is not None and (client_id, region) in self._registrations

    def registration(self, client_id: str, region: str) -> Registration | None:
        """Return the registration of ``client_id`` in ``region``."""
        return self._registrations.get((client_id, region))

    def check_domain(self, client_id: str, domain: object) -> str:
        """Validate a domain for ``client_id`` (RegistrationError when refused)."""
        name = normalize_domain(domain)
        client = self._config.client(client_id)
        origins = client.allowed_origins if client is not None else ()
        if origins and not any(
            name == origin or name.endswith("." + origin) for origin in origins
        ):
            raise RegistrationError(
                400, f"Root domain {name} must match registered allowed origin"
            )
        return name

    def register(
        self,
        client_id: str,
        region: str,
        domain: str,
        pem: str | None,
        now: datetime,
    ) -> Registration:
        """Register ``client_id`` in ``region`` with the key ``domain`` served."""
        if pem is None:
            raise RegistrationError(
                424, f"Public key download failed for url {public_key_url(domain)}"
            )
        try:
            key = public_key_hex(pem)
        except ValueError as err:
            raise RegistrationError(
                400, f"Invalid public key at {public_key_url(domain)}: {err}"
            ) from err
        registration = Registration(client_id, region, domain, key, now)
        self._registrations[(client_id, region)] = registration
        return registration

    def unregister(self, client_id: str, region: str) -> None:
        """Forget a registration (tests)."""
        self._registrations.pop((client_id, region), None)

    def public_key(self, domain: str) -> str | None:
        """Return the registered key of ``domain`` in any region."""
        return next(
            (
                r.public_key
                for r in self._registrations.values()
                if r.domain == domain.lower() and r.public_key is not None
            ),
            None,
        )

    def public_keys(self) -> frozenset[bytes]:
        """Return the keys of every registration that has one (uncompressed points)."""
        return frozenset(
            bytes.fromhex(r.public_key)
            for r in self._registrations.values()
            if r.public_key is not None
        )

    def app_key(self, client_id: str | None, region: str) -> bytes | None:
        """Return the key ``client_id`` registered in ``region`` (None: none known)."""
        registration = self._registrations.get((client_id or "", region))
        if registration is None or registration.public_key is None:
            return None
        return bytes.fromhex(registration.public_key)

    def as_dict(self) -> list[dict[str, Any]]:
        """Describe the registrations for the admin endpoint."""
        return [r.as_dict() for r in self._registrations.values()]
