"""The integration's Fleet API errors, and how Tesla's answers map to them.

Library errors (which derive from BaseException) never leave the client
(api.py): they become the HomeAssistantError subclasses here, with
translated messages. Everything a later retry may fix (the car asleep or
busy, rate limits, Tesla's outages, no usable access token right now)
derives from :class:`TransientFleetError`, so callers catch that one class.

A tesla-http-proxy reports the car's faults as HTTP 500/503: "vehicle
unavailable: vehicle is offline or asleep" is a sleeping car
(VehicleAsleepError, so the wake/retry logic applies); "your public key has
not been paired with the vehicle" is :class:`KeyNotPairedError`, which no
retry fixes. Any other 5xx stays FleetUnavailableError. Commands signed here
get the car's message faults: a key the car does not know is
:class:`KeyNotPairedError`; turned-off mobile access is
:class:`RemoteAccessDisabledError`; a busy car or a session the car no longer
accepts is transient.
"""

from __future__ import annotations

from tesla_fleet_api.exceptions import (
    Forbidden,
    InvalidScope,
    RateLimited,
    TeslaFleetError,
    VehicleOffline,
)

from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN
from .signed_commands import (
    ACCESS_FAULTS,
    KEY_FAULTS,
    SIGNING_FAULTS,
    TRANSIENT_FAULTS,
)

SERVER_ERROR = 500
PROXY_FAULT_STATUSES = (500, 503)
PROXY_ASLEEP_HINTS = ("asleep", "offline", "vehicle unavailable")
PROXY_NOT_PAIRED_HINTS = ("not been paired", "not paired")
FORBIDDEN = 403
VCP_REQUIRED = "vehicle command protocol required"
"""In the error of Tesla's 403 to an unsigned command for a car that needs signing."""
UNSIGNED_HARDLOCKED = "unsigned_cmds_hardlocked"
"""The reason some cars give (result false) for an unsigned command."""


class FleetError(HomeAssistantError):
    """A Fleet API request failed."""

    def __init__(self, key: str = "api_error", **placeholders: str) -> None:
        """Initialize with a translation key."""
        super().__init__(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders or None,
        )


class TransientFleetError(FleetError):
    """A request failed in a way a later retry may fix."""


class VehicleAsleepError(TransientFleetError):
    """The car is asleep or offline (HTTP 408); not a failure of ours."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("vehicle_asleep")


class RateLimitedError(TransientFleetError):
    """Tesla asked us to slow down (HTTP 429)."""

    def __init__(self, retry_after: float) -> None:
        """Initialize with the seconds to wait."""
        super().__init__("rate_limited", seconds=str(int(retry_after)))
        self.retry_after = retry_after


class FleetUnavailableError(TransientFleetError):
    """Tesla's servers did not answer usefully (5xx, timeout, network)."""

    def __init__(self, what: str) -> None:
        """Initialize with what went wrong."""
        super().__init__("api_unavailable", error=what)


class TokenNotReadyError(TransientFleetError):
    """No usable access token right now; the token manager retries on its own."""

    def __init__(self, reason: str) -> None:
        """Initialize with the token manager's reason."""
        super().__init__("token_unavailable", reason=reason)


class UnauthorizedError(FleetError):
    """A fresh access token was still refused."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("unauthorized")


class WrongRegionError(FleetError):
    """The account lives in another region (HTTP 421)."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("wrong_region")


class NotRegisteredFleetError(FleetError):
    """The app is not registered in the account's region (HTTP 412)."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("app_not_registered")


class MissingScopesError(FleetError):
    """Tesla refused a request for a scope the user did not grant (HTTP 403)."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("missing_scopes")


class KeyNotPairedError(FleetError):
    """The car does not know the key that signs its commands.

    A proxy says so with an HTTP 500; the car itself with a message fault
    (unknown key, key not on its whitelist). Not transient: the owner must
    add the key to the car first.
    """

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("key_not_paired")


class RemoteAccessDisabledError(FleetError):
    """The car refuses signed commands: mobile access is turned off in it."""

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("remote_access_disabled")


class SigningFaultError(FleetError):
    """The car refused a signed message for a reason no retry fixes."""

    def __init__(self, fault: str) -> None:
        """Initialize with the fault's name."""
        super().__init__("signing_fault", fault=fault)


class VehicleBusyError(TransientFleetError):
    """The car could not take a signed message now (busy, session lost)."""

    def __init__(self, fault: str) -> None:
        """Initialize with the fault's name."""
        super().__init__("vehicle_busy", fault=fault)


class CommandFailedError(FleetError):
    """The car refused a command (result false)."""

    def __init__(self, command: str, reason: str) -> None:
        """Initialize with the command and the car's reason."""
        super().__init__("command_failed", command=command, reason=reason or "-")
        self.command = command
        self.reason = reason


class SigningRequiredError(FleetError):
    """The car accepts only signed commands and none can be signed here.

    Raised before a command is sent to a car that Tesla lists as requiring
    signed commands while no Commands URL (a signing proxy) is set, and when
    the car refuses an unsigned command (HTTP 403 "Tesla Vehicle Command
    Protocol required", or ``unsigned_cmds_hardlocked``). A retry cannot fix it.
    """

    def __init__(self) -> None:
        """Initialize."""
        super().__init__("signing_required")


def _retry_after(err: RateLimited) -> float:
    data = err.data if isinstance(err.data, dict) else {}
    for key in ("after", "reset"):
        try:
            return max(1.0, float(data.get(key) or ""))
        except ValueError:
            continue
    return 60.0


def translate_error(err: TeslaFleetError, *, commands: bool = False) -> FleetError:
    """Map a library error to ours (a 421 is handled where it is caught).

    ``commands``: the request went to the commands server, whose 500/503 may
    be a signing proxy's report of the car (asleep, key not paired).
    """
    if isinstance(err, VehicleOffline):
        return VehicleAsleepError()
    if isinstance(err, KEY_FAULTS):
        return KeyNotPairedError()
    if isinstance(err, ACCESS_FAULTS):
        return RemoteAccessDisabledError()
    if isinstance(err, TRANSIENT_FAULTS):
        return VehicleBusyError(type(err).__name__)
    if isinstance(err, SIGNING_FAULTS):
        return SigningFaultError(type(err).__name__)
    if isinstance(err, RateLimited):
        return RateLimitedError(_retry_after(err))
    if err.status == FORBIDDEN and VCP_REQUIRED in _error_text(err).lower():
        return SigningRequiredError()
    if isinstance(err, InvalidScope) or (
        isinstance(err, Forbidden) and "missing scope" in _error_text(err).lower()
    ):
        return MissingScopesError()
    if commands and err.status in PROXY_FAULT_STATUSES:
        text = _error_text(err).lower()
        if any(hint in text for hint in PROXY_NOT_PAIRED_HINTS):
            return KeyNotPairedError()
        if any(hint in text for hint in PROXY_ASLEEP_HINTS):
            return VehicleAsleepError()
    if err.status is not None and err.status >= SERVER_ERROR:
        return FleetUnavailableError(f"HTTP {err.status}")
    return FleetError("api_error", error=type(err).__name__)


def _error_text(err: TeslaFleetError) -> str:
    """Return the error field of the body Tesla sent (empty when none)."""
    if isinstance(err.data, dict):
        return str(err.data.get("error") or "")
    return str(err.data or "")
