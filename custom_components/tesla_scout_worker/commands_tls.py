"""TLS for the commands URL: how to trust a tesla-http-proxy's certificate.

tesla-http-proxy serves HTTPS only, usually with a self-signed certificate
(the Home Assistant add-on makes its own CA). The reconfigure step stores how
to trust it, next to the commands URL in the entry data:

- ``commands_verify_ssl`` (default True): verify the proxy's certificate;
- ``commands_ca_file`` (optional): a PEM CA certificate on the Home Assistant
  host (e.g. the add-on's CA), trusted in addition to the usual CAs.

With the defaults commands use Home Assistant's shared session. Otherwise
they go through a session of their own whose connector carries that trust
(no verification, or Home Assistant's client TLS context plus the CA file);
Fleet API requests always keep the shared session. That session is closed
when the entry unloads or Home Assistant shuts down.

When the form is submitted the URL is probed once: a GET of
``/api/1/vehicles`` without a token. The proxy answers that itself (403), so
nothing reaches Tesla and nothing is billed; any HTTP answer means the proxy
is reachable, and a certificate it does not trust is told apart.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
import ssl
from typing import Any, Final

from aiohttp import (
    ClientConnectorCertificateError,
    ClientError,
    ClientSession,
    ClientTimeout,
    TCPConnector,
)

from homeassistant.const import EVENT_HOMEASSISTANT_CLOSE
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.util import ssl as ssl_util

from .const import (
    CONF_COMMANDS_CA_FILE,
    CONF_COMMANDS_URL,
    CONF_COMMANDS_VERIFY_SSL,
    LOGGER,
)

PROBE_PATH: Final = "/api/1/vehicles"
PROBE_TIMEOUT: Final = 10.0  # seconds
ERROR_CA_FILE: Final = "ca_file_invalid"
ERROR_UNREACHABLE: Final = "proxy_unreachable"
ERROR_CERTIFICATE: Final = "proxy_certificate"


class CaFileError(Exception):
    """The CA file is missing, unreadable or holds no PEM certificate."""


def ssl_context(verify: bool, ca_file: str | None) -> ssl.SSLContext | None:
    """Return the TLS context for commands; None: the shared session will do.

    Reads the CA file (blocking: run it in the executor). Raises CaFileError.
    """
    if not verify:
        return ssl_util.client_context_no_verify()
    if not ca_file:
        return None
    context = ssl_util.create_client_context()
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
        raise CaFileError(type(err).__name__) from err
    return context


def tls_options(data: Mapping[str, Any]) -> tuple[bool, str | None]:
    """Return (verify, CA file) of entry data or form input."""
    verify = bool(data.get(CONF_COMMANDS_VERIFY_SSL, True))
    ca_file = str(data.get(CONF_COMMANDS_CA_FILE) or "").strip() or None
    return verify, ca_file


def create_session(context: ssl.SSLContext) -> ClientSession:
    """Return a session whose connections trust what ``context`` trusts."""
    return ClientSession(connector=TCPConnector(ssl=context))


async def async_probe(
    hass: HomeAssistant, url: str, verify: bool, ca_file: str | None
) -> str | None:
    """Check a commands URL once; return a form error key, None when it answers."""
    try:
        context = await hass.async_add_executor_job(ssl_context, verify, ca_file)
    except CaFileError:
        return ERROR_CA_FILE
    trust = context if context is not None else ssl_util.client_context()
    try:
        async with (
            create_session(trust) as session,
            session.get(
                url.rstrip("/") + PROBE_PATH,
                allow_redirects=False,
                timeout=ClientTimeout(total=PROBE_TIMEOUT),
            ) as response,
        ):
            await response.read()
    except ClientConnectorCertificateError as err:
        LOGGER.debug("Commands URL: certificate not trusted: %s", err.certificate_error)
        return ERROR_CERTIFICATE
    except (ClientError, TimeoutError, OSError) as err:
        LOGGER.debug("Commands URL not reachable: %s", type(err).__name__)
        return ERROR_UNREACHABLE
    return None


async def async_commands_session(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> ClientSession | None:
    """Return a session for the entry's commands URL; None: use the shared one.

    The caller closes it (see :func:`close_with_hass`). Raises CaFileError
    when the CA file cannot be used now.
    """
    if not data.get(CONF_COMMANDS_URL):
        return None
    context = await hass.async_add_executor_job(ssl_context, *tls_options(data))
    return None if context is None else create_session(context)


@callback
def close_with_hass(
    hass: HomeAssistant, session: ClientSession
) -> Callable[[], Coroutine[Any, Any, None]]:
    """Close ``session`` when Home Assistant closes; return its closer.

    Await the closer on unload: it stops listening and closes the session.
    """
    unsub: CALLBACK_TYPE | None = None

    async def close_at_exit(_event: Event) -> None:
        nonlocal unsub
        unsub = None
        await session.close()

    async def close() -> None:
        nonlocal unsub
        if unsub is not None:
            unsub()
            unsub = None
        await session.close()

    unsub = hass.bus.async_listen_once(EVENT_HOMEASSISTANT_CLOSE, close_at_exit)
    return close
