"""Command signing: how commands can reach each car, and what to do when they can't.

Tesla lists per car whether it needs commands signed with a virtual key
(``command_signing``: ``required``, ``allowed`` or ``off``). Without a
Commands URL (a signing tesla-http-proxy), commands to cars that require or
allow signing are signed here with the installation's key once Tesla lists
that key as paired with the car (``fleet_status``, asked at setup, once a
day, after the car refused the key, and when the owner says the key is
added); cars with signing off, and cars that merely allow it while the key
is not paired, get plain REST commands.

A car that needs signing never gets an unsigned command: :meth:`SigningPolicy.async_check`
refuses it before any request (so no wake-up is billed for it either). Each
car that cannot get commands has a repair issue that names the fix: pair the
key (with the ``https://tesla.com/_ak/<domain>`` link and its QR code), serve
this installation's key on the app's domain, or make a key usable. The issue
goes away when it no longer applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .api import FleetClient
from .const import CONF_DOMAIN, CONF_KEY_FILE, DOMAIN, LOGGER
from .errors import (
    FleetError,
    KeyNotPairedError,
    SigningRequiredError,
)
from .keys import SigningKey, SigningKeyError, async_get_signing_key
from .listeners import Listeners
from .pairing import PairingRecord

if TYPE_CHECKING:
    from .vehicle import TeslaVehicle

SIGNING_REQUIRED: Final = "required"
"""The vehicle list's command_signing of a car that needs signed commands."""
SIGNING_ALLOWED: Final = "allowed"
ISSUE_SIGNING_REQUIRED: Final = "signing_required"
ISSUE_KEY_NOT_PAIRED: Final = "key_not_paired"
ISSUE_KEY_NOT_ACCEPTED: Final = "key_not_accepted"
"""Translation key of the pairing issue when Tesla lists the key but the car refuses it."""
ISSUE_PREFIXES: Final = (ISSUE_SIGNING_REQUIRED, ISSUE_KEY_NOT_PAIRED)
PAIRING_LINK: Final = "https://tesla.com/_ak/{domain}"
PAIRING_RETRY: Final = timedelta(hours=1)
"""How long to wait before asking Tesla again after it did not answer."""


def _issue_id(kind: str, device_id: str) -> str:
    return f"{kind}_{device_id}"


def pairing_link(domain: str) -> str:
    """Return the link that adds the app's key to a car in the Tesla app."""
    return PAIRING_LINK.format(domain=domain)


class CommandPath(StrEnum):
    """How commands can be sent to a car now (the car's diagnostic sensor)."""

    SIGNED = "signed"
    """Signed here with the installation's key, which the car knows."""
    PROXY = "proxy"
    """A Commands URL is set: a tesla-http-proxy signs the commands."""
    UNSIGNED = "unsigned"
    """Plain REST commands (command_signing off, or allowed and no key paired)."""
    KEY_NOT_PAIRED = "key_not_paired"
    """The car needs signed commands and does not know the installation's key."""
    SIGNING_REQUIRED = "signing_required"
    """The car needs signed commands and no usable key is here to sign them."""


def command_path(
    command_signing: str | None,
    *,
    proxy: bool,
    can_sign: bool = False,
    paired: bool | None = None,
) -> CommandPath:
    """Return how commands reach a car.

    ``paired``: whether Tesla lists the installation's key on the car (None:
    not known). A car that needs signing is sent signed commands unless the
    key is known not to be paired; one that merely allows it only when the
    key is known to be paired. A car Tesla says nothing about is sent plain
    REST commands; if it refuses one, it is known to need signing from then on.
    """
    if proxy:
        return CommandPath.PROXY
    if command_signing == SIGNING_REQUIRED:
        if not can_sign:
            return CommandPath.SIGNING_REQUIRED
        return CommandPath.KEY_NOT_PAIRED if paired is False else CommandPath.SIGNED
    if command_signing == SIGNING_ALLOWED and can_sign and paired:
        return CommandPath.SIGNED
    return CommandPath.UNSIGNED


def entry_issues(hass: HomeAssistant, entry_id: str) -> list[str]:
    """Return the ids of the signing repair issues of a config entry."""
    registry = ir.async_get(hass)
    return [
        issue_id
        for (domain, issue_id), issue in registry.issues.items()
        if domain == DOMAIN
        and issue_id.startswith(tuple(f"{prefix}_" for prefix in ISSUE_PREFIXES))
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
        client: FleetClient,
        *,
        proxy: bool,
    ) -> None:
        """Initialize; ``proxy``: a Commands URL (tesla-http-proxy) is set."""
        self.hass = hass
        self.entry = entry
        self.vehicles = vehicles
        self.client = client
        self.proxy = proxy
        self.record = PairingRecord(hass, entry.entry_id)
        """Which cars Tesla lists with the key, which refused it (kept)."""
        self._unsub_check: CALLBACK_TYPE | None = None
        self.key: SigningKey | None = None
        """The key commands are signed with, once loaded."""
        self.key_error: str | None = None
        """Why the signing key cannot be used (a translation key), if it can't."""
        self._listeners = Listeners()

    async def async_start(self) -> None:
        """Load the signing key when a car can use it; learn which cars know it.

        Called once the cars are known. Without a Commands URL, a car that
        requires or allows signing makes the key load (created on first
        need, or the user's own file); then Tesla is asked which cars know it,
        now and once a day.
        """
        wants_key = any(
            vehicle.command_signing in (SIGNING_REQUIRED, SIGNING_ALLOWED)
            for vehicle in self.vehicles.values()
        )
        if not self.proxy and wants_key:
            try:
                key = await async_get_signing_key(
                    self.hass, self.entry.data.get(CONF_KEY_FILE) or None
                )
            except SigningKeyError as err:
                LOGGER.warning(
                    "The key file set for signing commands cannot be used (%s)",
                    err.reason,
                )
                self.key_error = err.reason
            else:
                self.key = key
                self.client.set_signing_key(key.private_key)
                await self.record.async_load()
                if self.record.due(self._signing_vins(), dt_util.utcnow()):
                    await self.async_check_pairing()
                else:
                    self.async_update()
        self.entry.async_on_unload(self._async_cancel_check)
        self._async_arm_check()

    def as_dict(self) -> dict[str, Any]:
        """Describe the signing state for diagnostics (no key material, no VIN)."""
        checked = self.record.checked_at
        return {
            "commands_url": self.proxy,
            "key": (
                "unusable"
                if self.key_error
                else None
                if self.key is None
                else "own_file"
                if self.entry.data.get(CONF_KEY_FILE)
                else "installation"
            ),
            "key_error": self.key_error,
            "pairing_checked_at": checked.isoformat() if checked else None,
            "cars_refusing_key": len(self.not_accepted),
        }

    @property
    def paired(self) -> dict[str, bool]:
        """Whether Tesla lists the installation's key on each car (fleet_status)."""
        return self.record.paired

    @property
    def not_accepted(self) -> set[str]:
        """Cars that refused the key although Tesla lists it as paired."""
        return self.record.not_accepted

    @callback
    def _async_arm_check(self) -> None:
        """Ask Tesla again a day after the last answer.

        Only while a car requires signing (for cars that merely allow it the
        answer at setup is enough) and polling is on. A question Tesla did not
        answer is asked again an hour later, not at once.
        """
        self._async_cancel_check()
        requires = any(
            vehicle.command_signing == SIGNING_REQUIRED
            for vehicle in self.vehicles.values()
        )
        if self.entry.pref_disable_polling or not requires:
            return
        now = dt_util.utcnow()
        self._unsub_check = async_track_point_in_utc_time(
            self.hass,
            self._async_scheduled_check,
            max(self.record.next_check(now), now + PAIRING_RETRY),
        )

    @callback
    def _async_cancel_check(self) -> None:
        if self._unsub_check is not None:
            self._unsub_check()
            self._unsub_check = None

    async def _async_scheduled_check(self, _now: datetime) -> None:
        self._unsub_check = None
        await self.async_check_pairing()
        self._async_arm_check()

    def _signing_vins(self) -> list[str]:
        """Return the cars that require or allow signed commands."""
        return [
            vin
            for vin, vehicle in self.vehicles.items()
            if vehicle.command_signing in (SIGNING_REQUIRED, SIGNING_ALLOWED)
        ]

    def path(self, vin: str) -> CommandPath:
        """Return how commands reach the car now."""
        vehicle = self.vehicles.get(vin)
        signing = None if vehicle is None else vehicle.command_signing
        paired = False if vin in self.not_accepted else self.paired.get(vin)
        return command_path(
            signing, proxy=self.proxy, can_sign=self.client.can_sign, paired=paired
        )

    def signs(self, vin: str) -> bool:
        """Whether commands to the car are signed here."""
        return self.path(vin) is CommandPath.SIGNED

    @callback
    def async_check(self, vin: str) -> None:
        """Raise (and open the repair) when no command can go out to the car now.

        SigningRequiredError: the car needs signing and no key is usable here;
        KeyNotPairedError: the car does not know the installation's key.
        """
        path = self.path(vin)
        if path is CommandPath.SIGNING_REQUIRED:
            self._async_raise_issue(vin, ISSUE_SIGNING_REQUIRED)
            raise SigningRequiredError
        if path is CommandPath.KEY_NOT_PAIRED:
            self._async_raise_pairing_issue(vin)
            raise KeyNotPairedError

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
            self._async_raise_issue(vin, ISSUE_SIGNING_REQUIRED)

    async def async_key_refused(self, vin: str) -> None:
        """Handle the car refusing the installation's key: find out why, open the repair.

        Tesla is asked whether it lists the key on the car: if not, the owner
        has to pair it; if it does, the car knows another key of the app's
        domain (the domain serves a different key than this installation's).
        """
        vehicle = self.vehicles.get(vin)
        name = "A car" if vehicle is None else vehicle.name
        LOGGER.warning("%s does not accept the key that signs its commands", name)
        listed = await self._async_fleet_status([vin]) or {}
        if listed.get(vin):
            self.not_accepted.add(vin)
        self.paired[vin] = listed.get(vin, False)
        self.record.save()
        self.async_update()

    async def async_check_pairing(self) -> None:
        """Ask Tesla which cars know the installation's key (one data request).

        Only cars that require or allow signing are asked about, and only
        when commands are signed here. Failures leave what is known as it is.
        """
        vins = self._signing_vins()
        if self.proxy or not self.client.can_sign or not vins:
            return
        if (answer := await self._async_fleet_status(vins)) is None:
            return
        self.record.answered(answer, dt_util.utcnow())
        self.async_update()

    async def async_key_added(self, vin: str) -> None:
        """Forget the car's refusal (the owner says the key is added); ask Tesla."""
        self.not_accepted.discard(vin)
        self.paired.pop(vin, None)
        self.record.save()
        await self.async_check_pairing()

    async def _async_fleet_status(self, vins: list[str]) -> dict[str, bool] | None:
        """Return Tesla's answer about the key per car; None when it gave none."""
        try:
            return await self.client.async_fleet_status(vins)
        except FleetError as err:
            LOGGER.debug("Could not ask Tesla which cars know the key: %s", err)
            return None

    @callback
    def async_update(self) -> None:
        """After the cars' records changed: open and drop issues as they apply.

        A pairing issue opens as soon as a car that needs signing is known not
        to have the key; the signing-required issue only when a command was
        refused for it.
        """
        keep: set[str] = set()
        for vin in self.vehicles:
            path = self.path(vin)
            if path is CommandPath.KEY_NOT_PAIRED:
                keep.add(self._async_raise_pairing_issue(vin))
            elif path is CommandPath.SIGNING_REQUIRED:
                keep.add(self._issue_id(vin, ISSUE_SIGNING_REQUIRED))
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

    def _device_id(self, vin: str) -> str:
        vehicle = self.vehicles[vin]
        device = dr.async_get(self.hass).async_get_or_create(
            config_entry_id=self.entry.entry_id, **vehicle.device_info
        )
        return device.id

    def _issue_id(self, vin: str, kind: str) -> str:
        """Return the car's issue id: named by its device, never by its VIN."""
        return _issue_id(kind, self._device_id(vin))

    @callback
    def _async_raise_issue(self, vin: str, kind: str) -> str:
        """Open the issue that no command can be signed for the car."""
        return self._async_create_issue(
            vin, kind, translation_key=kind, fixable=False, placeholders={}
        )

    @callback
    def _async_raise_pairing_issue(self, vin: str) -> str:
        """Open the fixable issue that shows the pairing link and its QR code."""
        domain = self.entry.data.get(CONF_DOMAIN)
        return self._async_create_issue(
            vin,
            ISSUE_KEY_NOT_PAIRED,
            translation_key=(
                ISSUE_KEY_NOT_ACCEPTED
                if vin in self.not_accepted
                else ISSUE_KEY_NOT_PAIRED
            ),
            fixable=True,
            placeholders={"link": pairing_link(domain or "<domain>")},
        )

    @callback
    def _async_create_issue(
        self,
        vin: str,
        kind: str,
        *,
        translation_key: str,
        fixable: bool,
        placeholders: dict[str, str],
    ) -> str:
        """Create (or update) the car's issue ``kind``; named by its device.

        A fixable issue is fixed through a flow that asks Tesla again, so it
        is not kept across restarts (the pairing is asked anew); the others are.
        """
        vehicle = self.vehicles[vin]  # only known cars can need signing
        device_id = self._device_id(vin)
        issue_id = _issue_id(kind, device_id)
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=fixable,
            is_persistent=not fixable,
            severity=ir.IssueSeverity.ERROR,
            translation_key=translation_key,
            translation_placeholders={"vehicle": vehicle.name, **placeholders},
            data={"entry_id": self.entry.entry_id, "device_id": device_id},
        )
        return issue_id
