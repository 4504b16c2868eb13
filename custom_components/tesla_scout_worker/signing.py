"""Command signing: how commands can reach each car, and what to do when they can't.

Tesla lists per car whether it needs commands signed with a virtual key
(``command_signing``: ``required``, ``allowed`` or ``off``). This integration
sends plain REST commands, or hands them to a signing tesla-http-proxy when a
Commands URL is set. A car that needs signing while no proxy is set never gets
an unsigned command: :meth:`SigningPolicy.async_check` refuses it before any
request (so no wake-up is billed for it either) and raises a repair issue per
car that says what to do. The issue goes away when it no longer applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir

from .api import SigningRequiredError
from .const import DOMAIN, LOGGER
from .listeners import Listeners

if TYPE_CHECKING:
    from .vehicle import TeslaVehicle

SIGNING_REQUIRED: Final = "required"
"""The vehicle list's command_signing of a car that needs signed commands."""
ISSUE_SIGNING_REQUIRED: Final = "signing_required"


class CommandPath(StrEnum):
    """How commands can be sent to a car now (the car's diagnostic sensor).

    In-process signing will add ``signed`` and ``key_not_paired``.
    """

    PROXY = "proxy"
    """A Commands URL is set: a tesla-http-proxy signs the commands."""
    UNSIGNED = "unsigned"
    """The car accepts plain REST commands (command_signing allowed or off)."""
    SIGNING_REQUIRED = "signing_required"
    """The car needs signed commands and nothing here can sign them."""


def command_path(command_signing: str | None, *, proxy: bool) -> CommandPath:
    """Return how commands reach a car.

    A car Tesla says nothing about is sent plain REST commands; if it refuses
    one, it is known to need signing from then on.
    """
    if proxy:
        return CommandPath.PROXY
    if command_signing == SIGNING_REQUIRED:
        return CommandPath.SIGNING_REQUIRED
    return CommandPath.UNSIGNED


def entry_issues(hass: HomeAssistant, entry_id: str) -> list[str]:
    """Return the ids of the signing repair issues of a config entry."""
    registry = ir.async_get(hass)
    return [
        issue_id
        for (domain, issue_id), issue in registry.issues.items()
        if domain == DOMAIN
        and issue_id.startswith(f"{ISSUE_SIGNING_REQUIRED}_")
        and (issue.data or {}).get("entry_id") == entry_id
    ]


@callback
def async_delete_entry_issues(hass: HomeAssistant, entry_id: str) -> None:
    """Delete every signing repair issue of a config entry (it is removed)."""
    for issue_id in entry_issues(hass, entry_id):
        ir.async_delete_issue(hass, DOMAIN, issue_id)


class SigningPolicy:
    """Which cars of an account can get commands now; their repair issues."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        vehicles: Mapping[str, TeslaVehicle],
        *,
        proxy: bool,
    ) -> None:
        """Initialize; ``proxy``: a Commands URL (tesla-http-proxy) is set."""
        self.hass = hass
        self.entry = entry
        self.vehicles = vehicles
        self.proxy = proxy
        self._listeners = Listeners()

    def path(self, vin: str) -> CommandPath:
        """Return how commands reach the car now."""
        vehicle = self.vehicles.get(vin)
        signing = None if vehicle is None else vehicle.command_signing
        return command_path(signing, proxy=self.proxy)

    @callback
    def async_check(self, vin: str) -> None:
        """Raise SigningRequiredError (and the repair) when no command can go out."""
        if self.path(vin) is CommandPath.SIGNING_REQUIRED:
            self._async_raise_issue(vin)
            raise SigningRequiredError

    @callback
    def async_refused(self, vin: str) -> None:
        """Note that the car refused an unsigned command: it needs signing."""
        vehicle = self.vehicles.get(vin)
        if vehicle is None:
            return
        if vehicle.command_signing != SIGNING_REQUIRED:
            LOGGER.warning(
                "%s refused an unsigned command: it needs signed commands", vehicle.name
            )
            vehicle.command_signing = SIGNING_REQUIRED
            self._listeners.notify()
        if self.path(vin) is CommandPath.SIGNING_REQUIRED:
            self._async_raise_issue(vin)

    @callback
    def async_update(self) -> None:
        """After the cars' records changed: drop issues that no longer apply."""
        keep = {
            self._issue_id(vin)
            for vin in self.vehicles
            if self.path(vin) is CommandPath.SIGNING_REQUIRED
        }
        for issue_id in self._our_issues():
            if issue_id not in keep:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        self._listeners.notify()

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``listener`` when what is known about signing changes."""
        return self._listeners.add(listener)

    def _our_issues(self) -> list[str]:
        return entry_issues(self.hass, self.entry.entry_id)

    def _issue_id(self, vin: str) -> str:
        """Return the car's issue id: named by its device, never by its VIN."""
        vehicle = self.vehicles[vin]
        device = dr.async_get(self.hass).async_get_or_create(
            config_entry_id=self.entry.entry_id, **vehicle.device_info
        )
        return f"{ISSUE_SIGNING_REQUIRED}_{device.id}"

    @callback
    def _async_raise_issue(self, vin: str) -> None:
        vehicle = self.vehicles[vin]  # only known cars can need signing
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self._issue_id(vin),
            is_fixable=False,
            is_persistent=True,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_SIGNING_REQUIRED,
            translation_placeholders={"vehicle": vehicle.name},
            data={"entry_id": self.entry.entry_id},
        )
