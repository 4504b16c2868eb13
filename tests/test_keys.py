"""The command-signing key: created once, owner-only, served and checked."""

from __future__ import annotations

from pathlib import Path
import stat

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
import pytest
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.tesla_scout_worker import keys
from custom_components.tesla_scout_worker.const import DOMAIN
from custom_components.tesla_scout_worker.keys import (
    DATA_KEYS,
    KeyCheck,
    SigningKeyError,
    async_check_hosted_key,
    async_get_signing_key,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

KEY_URL = "https://app.example.com/.well-known/appspecific/com.tesla.3p.public-key.pem"


def _pem(private: ec.EllipticCurvePrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


async def test_created_once_owner_only(hass: HomeAssistant) -> None:
    """First need creates the key (0600); later it is read back unchanged."""
    path = Path(keys.default_key_path(hass))
    assert not await hass.async_add_executor_job(path.exists)
    key = await async_get_signing_key(hass)
    mode = (await hass.async_add_executor_job(path.stat)).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert await async_get_signing_key(hass) is key

    hass.data[DATA_KEYS].clear()
    again = await async_get_signing_key(hass)
    assert again is not key
    assert again.public_point == key.public_point
    assert len(key.public_point) == 65
    assert key.public_pem.startswith("-----BEGIN PUBLIC KEY-----")


async def test_users_own_key(hass: HomeAssistant, tmp_path: Path) -> None:
    """A user's PEM file is used as it is; nothing is created beside it."""
    own = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "proxy.pem"
    path.write_bytes(_pem(own))
    key = await async_get_signing_key(hass, str(path))
    assert key.private_key.private_numbers() == own.private_numbers()
    assert not await hass.async_add_executor_job(
        Path(keys.default_key_path(hass)).exists
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "key_file_unreadable"),
        (b"not a key", "key_file_invalid"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "key_wrong_curve"),
    ],
    ids=["missing", "not_pem", "p384"],
)
async def test_unusable_key_files(
    hass: HomeAssistant, tmp_path: Path, content: bytes | None, reason: str
) -> None:
    """Missing, not a key, or the wrong curve: a clear reason, nothing created."""
    path = tmp_path / "key.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SigningKeyError) as caught:
        await async_get_signing_key(hass, str(path))
    assert caught.value.reason == reason
    assert path.exists() is (content is not None)


async def test_home_assistant_serves_the_public_key(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """The well-known path answers without login with the installation's key."""
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client_no_auth()
    resp = await client.get("/.well-known/appspecific/com.tesla.3p.public-key.pem")
    assert resp.status == 200
    served = await resp.text()
    key = await async_get_signing_key(hass)
    assert served == key.public_pem
    assert "PRIVATE" not in served


async def test_check_hosted_key(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    """The domain's key is fetched and compared: matches, differs, unreachable."""
    key = await async_get_signing_key(hass)
    aioclient_mock.get(KEY_URL, text=key.public_pem)
    assert await async_check_hosted_key(hass, "app.example.com", key) is (
        KeyCheck.MATCHES
    )

    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    for served, expected in (
        (
            other.public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            ).decode(),
            KeyCheck.DIFFERS,
        ),
        ("<html>hello</html>", KeyCheck.DIFFERS),
    ):
        aioclient_mock.clear_requests()
        aioclient_mock.get(KEY_URL, text=served)
        assert await async_check_hosted_key(hass, "app.example.com", key) is expected

    aioclient_mock.clear_requests()
    aioclient_mock.get(KEY_URL, status=404)
    assert await async_check_hosted_key(hass, "app.example.com", key) is (
        KeyCheck.UNREACHABLE
    )
    aioclient_mock.clear_requests()
    aioclient_mock.get(KEY_URL, exc=TimeoutError())
    assert await async_check_hosted_key(hass, "app.example.com", key) is (
        KeyCheck.UNREACHABLE
    )
