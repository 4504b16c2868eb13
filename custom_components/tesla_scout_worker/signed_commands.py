"""Signed commands in process: one Vehicle Command Protocol session per car.

Cars built since about 2021 accept charging commands only when signed with the
installation's virtual key. tesla-fleet-api's ``VehicleSigned`` builds, signs
and checks the messages; this module keeps one per car on one long-lived
library client, so the car's session (epoch, counter, clock offset) survives
between commands and the handshake, itself a billed command, is paid only
when a session is new or lost. Every ``signed_command`` request is counted,
handshakes apart from commands.

The car's message faults are sorted here for the client (api.py), which maps
them to errors that say what to do: a key the car does not know needs the
owner; a busy car or a counter the car no longer accepts is transient. An
epoch, counter or expiry fault that survives the library's own re-sync
starts a new session once.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from google.protobuf.message import DecodeError
from tesla_fleet_api.exceptions import (
    NotOnWhitelistFault,
    SessionInfoAuthenticationFault,
    SignedCommandResponseReplayed,
    SignedMessageInformationFault,
    SignedMessageInformationFaultNotOnWhitelist,
    TeslaFleetInformationFault,
    TeslaFleetMessageFault,
    TeslaFleetMessageFaultBusy,
    TeslaFleetMessageFaultInactiveKey,
    TeslaFleetMessageFaultIncorrectEpoch,
    TeslaFleetMessageFaultInvalidSignature,
    TeslaFleetMessageFaultInvalidTokenOrCounter,
    TeslaFleetMessageFaultRemoteAccessDisabled,
    TeslaFleetMessageFaultRemoteServiceAccessDisabled,
    TeslaFleetMessageFaultTimeExpired,
    TeslaFleetMessageFaultTimeout,
    TeslaFleetMessageFaultUnknownKeyId,
    WhitelistOperationPublicKeyNotOnWhitelist,
    WhitelistOperationStatus,
)
from tesla_fleet_api.tesla.fleet import TeslaFleetApi
from tesla_fleet_api.tesla.vehicle.signed import VehicleSigned

from .usage import ApiCategory

SIGNING_FAULTS = (
    TeslaFleetMessageFault,
    TeslaFleetInformationFault,
    SignedMessageInformationFault,
    WhitelistOperationStatus,
    SessionInfoAuthenticationFault,
    SignedCommandResponseReplayed,
)
"""Everything the car (or the library checking its reply) can say of a message."""
KEY_FAULTS = (
    NotOnWhitelistFault,
    SignedMessageInformationFaultNotOnWhitelist,
    WhitelistOperationPublicKeyNotOnWhitelist,
    TeslaFleetMessageFaultUnknownKeyId,
    TeslaFleetMessageFaultInactiveKey,
)
"""The car does not know (or no longer accepts) the installation's key."""
RESYNC_FAULTS = (
    TeslaFleetMessageFaultIncorrectEpoch,
    TeslaFleetMessageFaultInvalidTokenOrCounter,
    TeslaFleetMessageFaultTimeExpired,
    TeslaFleetMessageFaultInvalidSignature,
)
"""The car's session moved on (it rebooted, a clock drifted): a new handshake."""
TRANSIENT_FAULTS = (
    TeslaFleetMessageFaultIncorrectEpoch,
    TeslaFleetMessageFaultInvalidTokenOrCounter,
    TeslaFleetMessageFaultTimeExpired,
    TeslaFleetMessageFaultBusy,
    TeslaFleetMessageFaultTimeout,
    SessionInfoAuthenticationFault,
    SignedCommandResponseReplayed,
)
"""Faults a later try may not meet again."""
ACCESS_FAULTS = (
    TeslaFleetMessageFaultRemoteAccessDisabled,
    TeslaFleetMessageFaultRemoteServiceAccessDisabled,
)
"""Mobile access is turned off in the car."""

READ_ERRORS = (DecodeError, binascii.Error, KeyError, TypeError)
"""What reading a reply that is no car's message raises in the library."""


class UnreadableReplyError(Exception):
    """A signed_command reply that is not a car's message (named by its error)."""


_HANDSHAKING: ContextVar[bool] = ContextVar(
    "tesla_scout_worker_handshaking", default=False
)


class CountedVehicleSigned(VehicleSigned[TeslaFleetApi]):
    """A signed vehicle whose every signed_command request is counted."""

    def __init__(
        self, parent: TeslaFleetApi, vin: str, record: Callable[[ApiCategory], None]
    ) -> None:
        """Initialize; ``record`` counts one billed request."""
        super().__init__(parent, vin)
        self._record = record

    async def _handshake(self, domain: Any) -> bool:
        """Open a session with one of the car's domains (counted as a handshake)."""
        token = _HANDSHAKING.set(True)
        try:
            return await super()._handshake(domain)
        finally:
            _HANDSHAKING.reset(token)

    async def signed_command(self, routable_message: str) -> dict[str, Any]:
        """Send one signed message; count it once Tesla answered it."""
        result = await super().signed_command(routable_message)
        self._record(
            ApiCategory.HANDSHAKE if _HANDSHAKING.get() else ApiCategory.COMMAND
        )
        return result


class SignedVehicles:
    """The signed vehicles of one account, on one long-lived library client."""

    def __init__(self, api: TeslaFleetApi, record: Callable[[ApiCategory], None]):
        """Initialize; ``api`` carries the private key, ``record`` counts."""
        self.api = api
        self._record = record
        self._vehicles: dict[str, CountedVehicleSigned] = {}

    def vehicle(self, vin: str) -> CountedVehicleSigned:
        """Return the car's signed vehicle (its session kept between commands)."""
        if (vehicle := self._vehicles.get(vin)) is None:
            vehicle = CountedVehicleSigned(self.api, vin, self._record)
            self._vehicles[vin] = vehicle
        return vehicle

    def forget(self, vin: str) -> None:
        """Drop the car's session: the next command starts with a handshake."""
        self._vehicles.pop(vin, None)

    async def async_send(
        self, vin: str, command: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Sign and send ``command``; a lost session is started again once.

        Raises the library's errors, or UnreadableReplyError for a reply that
        cannot be read.
        """
        try:
            try:
                return await self._send(vin, command, params)
            except RESYNC_FAULTS:
                self.forget(vin)
                return await self._send(vin, command, params)
            except KEY_FAULTS:
                self.forget(vin)
                raise
        except READ_ERRORS as err:
            raise UnreadableReplyError(type(err).__name__) from err

    async def _send(
        self, vin: str, command: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        method = getattr(self.vehicle(vin), command)
        return dict(await method(**params))
