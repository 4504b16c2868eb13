"""The worker: one token manager per Tesla account.

Tesla refresh tokens are single use and rotate on every refresh, so exactly one
component may refresh a chain. Every consumer in this integration gets its access
token from the manager of its config entry. The manager

* refreshes single-flight: concurrent callers share one token request, and
  waiters that arrive while a refresh runs reuse its result (success or failure);
* persists the rotated token (flushed to disk) before anyone may use it; if Home
  Assistant dies in between, Tesla's 24 h grace for the most recently used refresh
  token recovers the chain on the next start;
* refreshes in three tiers: proactive (scheduled, 30 min before expiry),
  reactive (a caller found < 5 min left; at most once a minute) and emergency
  (< 1 min left or expired; bypasses that limit so it can never deadlock);
* keeps using the last good access token while a transient failure is retried
  with backoff, and only a rejected grant leads to reauthentication.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
import hashlib
from typing import Any

from aiohttp import ClientError

from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_RECONFIGURE, ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    HomeAssistantError,
    OAuth2TokenRequestBaseError,
    OAuth2TokenRequestError,
    OAuth2TokenRequestReauthError,
)
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import (
    async_call_later,
    async_track_point_in_utc_time,
    async_track_time_interval,
)
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import CONF_TOKEN, DOMAIN, LOGGER
from .listeners import Listeners
from .oauth import TeslaOAuth2Implementation, TokenTransientError

PROACTIVE_CHECK_INTERVAL = timedelta(hours=2)
PROACTIVE_WINDOW = timedelta(minutes=30)
REACTIVE_WINDOW = timedelta(minutes=5)
EMERGENCY_WINDOW = timedelta(minutes=1)
REACTIVE_MIN_SPACING = timedelta(seconds=60)
EMERGENCY_MIN_SPACING_AFTER_FAILURE = timedelta(seconds=5)
CONFLICT_WINDOW = timedelta(minutes=10)
REFRESH_TIMEOUT = 45.0  # seconds
RETRY_DELAYS = (30.0, 60.0, 120.0, 300.0, 600.0)  # seconds, last one repeats

STORAGE_VERSION = 1
EVENT_REFRESH_FAILED = f"{DOMAIN}_token_refresh_failed"
EVENT_REAUTH_REQUIRED = f"{DOMAIN}_reauth_required"
ISSUE_REAUTH = "reauth_required"
ISSUE_CONFLICT = "refresh_chain_conflict"


class TokenStatus(StrEnum):
    """Health of the access token."""

    VALID = "valid"
    EXPIRING = "expiring"
    REFRESHING = "refreshing"
    EXPIRED = "expired"
    REAUTH_REQUIRED = "reauth_required"


class RefreshTier(StrEnum):
    """Why a refresh was started."""

    PROACTIVE = "proactive"
    REACTIVE = "reactive"
    EMERGENCY = "emergency"
    UNAUTHORIZED = "unauthorized"
    MANUAL = "manual"


_LIMITED_TIERS = frozenset({RefreshTier.REACTIVE, RefreshTier.MANUAL})


class TokenUnavailableError(HomeAssistantError):
    """No valid access token right now; a refresh is retried in the background."""

    def __init__(self, reason: str) -> None:
        """Initialize with a translated message."""
        super().__init__(
            translation_domain=DOMAIN,
            translation_key="token_unavailable",
            translation_placeholders={"reason": reason},
        )


class RefreshRateLimitedError(HomeAssistantError):
    """A non-emergency refresh was asked for within a minute of the last one."""

    def __init__(self, seconds: int) -> None:
        """Initialize with the seconds until a refresh is allowed."""
        super().__init__(
            translation_domain=DOMAIN,
            translation_key="refresh_rate_limited",
            translation_placeholders={"seconds": str(seconds)},
        )
        self.seconds = seconds


@dataclass
class TokenStats:
    """Counters shown by the health sensors; persisted with the token."""

    refresh_count: int = 0
    failed_count: int = 0
    rate_limited_count: int = 0
    last_refresh: str | None = None  # ISO timestamp of the last success
    last_tier: str | None = None
    last_error: str | None = None


def _error_code(err: OAuth2TokenRequestError) -> str:
    """Return the OAuth error code of a failed token request."""
    return str(getattr(err, "error_code", None) or err.message or "unknown")


def fingerprint(refresh_token: str) -> str:
    """Return a short one-way fingerprint of a refresh token (never the token)."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:16]


class TeslaTokenManager:
    """Own the access and refresh tokens of one config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        implementation: TeslaOAuth2Implementation,
    ) -> None:
        """Initialize the manager; call async_start before use."""
        self.hass = hass
        self.entry = entry
        self._impl = implementation
        self._token: dict[str, Any] = dict(entry.data[CONF_TOKEN])
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.tokens.{entry.entry_id}", private=True
        )
        self.stats = TokenStats()
        self._lock = asyncio.Lock()
        self._attempts = 0
        self._parent: str | None = None  # fingerprint of the token we rotated
        self._last_error: HomeAssistantError | None = None
        self._last_attempt: datetime | None = None
        self._last_success: datetime | None = None
        self._failures_in_row = 0
        self._reauth_required = False
        self._refreshing = False
        self._stopped = False
        self._listeners = Listeners()
        self._unsub_expiry: CALLBACK_TYPE | None = None
        self._unsub_retry: CALLBACK_TYPE | None = None
        self._unsub_interval: CALLBACK_TYPE | None = None

    # ----------------------------------------------------------------- state

    @property
    def access_token(self) -> str:
        """Return the current access token (may be expired)."""
        return str(self._token["access_token"])

    @property
    def expires_at(self) -> datetime:
        """Return when the current access token expires."""
        return dt_util.utc_from_timestamp(float(self._token["expires_at"]))

    @property
    def remaining(self) -> timedelta:
        """Return the time left on the access token."""
        return self.expires_at - dt_util.utcnow()

    @property
    def status(self) -> TokenStatus:
        """Return the token's health."""
        if self._reauth_required:
            return TokenStatus.REAUTH_REQUIRED
        if self._refreshing:
            return TokenStatus.REFRESHING
        remaining = self.remaining
        if remaining <= timedelta(0):
            return TokenStatus.EXPIRED
        if remaining < PROACTIVE_WINDOW:
            return TokenStatus.EXPIRING
        return TokenStatus.VALID

    @property
    def last_refresh(self) -> datetime | None:
        """Return when the token was last refreshed successfully."""
        if self.stats.last_refresh is None:
            return None
        return dt_util.parse_datetime(self.stats.last_refresh)

    @callback
    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call update whenever the token or its health changes."""
        return self._listeners.add(update)

    @callback
    def _notify(self) -> None:
        self._listeners.notify()

    # -------------------------------------------------------------- lifecycle

    async def async_start(self) -> None:
        """Load persisted state, schedule checks and run the startup check.

        Raises ConfigEntryAuthFailed when the chain is dead and
        TokenUnavailableError when the token is expired and cannot be refreshed now.
        """
        await self._async_load()
        self._unsub_interval = async_track_time_interval(
            self.hass,
            self._async_scheduled_check,
            PROACTIVE_CHECK_INTERVAL,
            name=f"{DOMAIN} proactive token check",
        )
        self._schedule_expiry_check()
        if self.remaining < PROACTIVE_WINDOW:
            try:
                await self._async_refresh(
                    RefreshTier.PROACTIVE, "startup check", observed=self.access_token
                )
            except TokenUnavailableError:
                if self.remaining <= timedelta(0):
                    raise
        self._clear_issue(ISSUE_REAUTH)

    @callback
    def async_stop(self) -> None:
        """Cancel timers; a stopped manager never touches the chain again.

        On a reload the next manager owns the refresh token: a late timer of
        this one spending it would break the chain for both.
        """
        self._stopped = True
        for unsub in (self._unsub_interval, self._unsub_expiry, self._unsub_retry):
            if unsub is not None:
                unsub()
        self._unsub_interval = self._unsub_expiry = self._unsub_retry = None

    async def _async_load(self) -> None:
        """Reconcile the config entry's token with the one persisted by us."""
        stored = await self._store.async_load()
        if not stored:
            return
        self.stats = TokenStats(**stored.get("stats", {}))
        saved = stored.get("token")
        entry_token = self._token
        if not saved or saved["refresh_token"] == entry_token["refresh_token"]:
            return
        if stored.get("parent") == fingerprint(entry_token["refresh_token"]):
            # The rotated token reached our store but not the config entry.
            LOGGER.info("Recovered the rotated token saved before the last stop")
            self._token = dict(saved)
            self._update_entry()
        # Otherwise the entry is newer (a reauthentication): keep it.

    # ------------------------------------------------------------- consumers

    async def async_get_access_token(self) -> str:
        """Return a usable access token, refreshing by tier when it runs out.

        This runs before every Fleet API request, so it does no I/O while the
        token has more than the reactive window left.
        """
        if self._reauth_required:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="reauth_required"
            )
        self._check_outside_change()
        remaining = self.remaining
        if remaining > REACTIVE_WINDOW:
            return self.access_token
        observed = self.access_token
        if remaining <= EMERGENCY_WINDOW:
            await self._async_refresh(
                RefreshTier.EMERGENCY,
                f"{max(0, int(remaining.total_seconds()))} s left",
                observed=observed,
            )
        else:
            try:
                await self._async_refresh(
                    RefreshTier.REACTIVE,
                    f"{int(remaining.total_seconds())} s left",
                    observed=observed,
                )
            except RefreshRateLimitedError, TokenUnavailableError:
                # The current token still has more than a minute: use it.
                return self.access_token
        return self.access_token

    async def async_handle_unauthorized(self, used_token: str) -> None:
        """React to a 401 for used_token: refresh unless someone already did."""
        if self.access_token != used_token:
            return
        await self._async_refresh(
            RefreshTier.UNAUTHORIZED, "API answered 401", observed=used_token
        )

    async def async_refresh(self, *, emergency: bool = False) -> None:
        """Refresh now (the refresh_token action); rate limited unless emergency."""
        tier = RefreshTier.EMERGENCY if emergency else RefreshTier.MANUAL
        await self._async_refresh(tier, "requested", observed=self.access_token)

    # --------------------------------------------------------------- refresh

    def _rate_limit_left(self, tier: RefreshTier) -> float:
        """Return seconds this tier must still wait before a new attempt."""
        if self._last_attempt is None:
            return 0.0
        since = dt_util.utcnow() - self._last_attempt
        if tier in _LIMITED_TIERS:
            spacing = REACTIVE_MIN_SPACING
        elif self._last_error is not None:
            spacing = EMERGENCY_MIN_SPACING_AFTER_FAILURE
        else:
            return 0.0
        return max(0.0, (spacing - since).total_seconds())

    async def _async_refresh(
        self,
        tier: RefreshTier,
        reason: str,
        *,
        observed: str,
        scheduled: bool = False,
    ) -> None:
        """Refresh single-flight.

        observed is the access token the caller saw; if it changed by the time
        the caller holds the lock, another refresh already did the work. A caller
        that waited while another attempt ran gets that attempt's outcome. A
        scheduled check stands down while a backoff retry is pending.
        """
        attempts_seen = self._attempts
        async with self._lock:
            if self._stopped:
                raise TokenUnavailableError("stopped")
            if self._reauth_required:
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN, translation_key="reauth_required"
                )
            if self.access_token != observed or (
                scheduled and self._unsub_retry is not None
            ):
                return
            if self._attempts != attempts_seen and self._last_error is not None:
                raise self._last_error
            wait = self._rate_limit_left(tier)
            if wait and self._last_error is not None and tier not in _LIMITED_TIERS:
                # An emergency right after a failed attempt: share its outcome.
                raise self._last_error
            if wait:
                self.stats.rate_limited_count += 1
                self._save_stats_later()
                LOGGER.debug("Refresh (%s tier) held back for %.0f s", tier, wait)
                self._notify()
                raise RefreshRateLimitedError(int(wait) + 1)
            await self._async_do_refresh(tier, reason)

    async def _async_do_refresh(self, tier: RefreshTier, reason: str) -> None:
        """Exchange the refresh token, persist the result, then publish it."""
        self._attempts += 1
        self._last_attempt = dt_util.utcnow()
        self._refreshing = True
        self._notify()
        old = self._token
        LOGGER.info("Refreshing the access token (%s tier): %s", tier, reason)
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT):
                new = await self._impl.async_refresh_token(dict(old))
        except OAuth2TokenRequestReauthError as err:
            self._refreshing = False
            await self._async_rejected(tier, _error_code(err))
        except OAuth2TokenRequestError as err:
            self._refreshing = False
            self._transient_failure(tier, f"HTTP {err.status} {_error_code(err)}", err)
        except (OAuth2TokenRequestBaseError, TimeoutError, ClientError) as err:
            self._refreshing = False
            self._transient_failure(tier, type(err).__name__, None)
        finally:
            self._refreshing = False

        await self._async_persist(new, parent=old["refresh_token"])
        self._token = new
        now = dt_util.utcnow()
        self._last_success = now
        self._last_error = None
        self._failures_in_row = 0
        self.stats.refresh_count += 1
        self.stats.last_refresh = now.isoformat()
        self.stats.last_tier = tier
        self.stats.last_error = None
        await self._async_save()
        self._cancel_retry()
        self._schedule_expiry_check()
        self._clear_issue(ISSUE_CONFLICT)
        LOGGER.info(
            "Access token refreshed (%s tier); valid for %d min",
            tier,
            int(self.remaining.total_seconds() // 60),
        )
        self._notify()

    async def _async_persist(self, new: dict[str, Any], parent: str) -> None:
        """Write the rotated token to disk now, then to the config entry."""
        self._parent = fingerprint(parent)
        await self._store.async_save(
            {"token": new, "parent": self._parent, "stats": asdict(self.stats)}
        )
        self._token = new
        self._update_entry()

    @callback
    def _update_entry(self) -> None:
        self.hass.config_entries.async_update_entry(
            self.entry, data={**self.entry.data, CONF_TOKEN: dict(self._token)}
        )

    async def _async_save(self) -> None:
        await self._store.async_save(self._store_data())

    @callback
    def _save_stats_later(self) -> None:
        self._store.async_delay_save(self._store_data, 10)

    def _store_data(self) -> dict[str, Any]:
        return {
            "token": self._token,
            "parent": self._parent,
            "stats": asdict(self.stats),
        }

    def _transient_failure(
        self, tier: RefreshTier, what: str, err: OAuth2TokenRequestError | None
    ) -> None:
        """Count a transient failure, schedule a retry and raise for the caller."""
        self._failures_in_row += 1
        self.stats.failed_count += 1
        self.stats.last_error = what
        self._save_stats_later()
        delay = RETRY_DELAYS[min(self._failures_in_row, len(RETRY_DELAYS)) - 1]
        if isinstance(err, TokenTransientError) and err.retry_after:
            delay = max(delay, err.retry_after)
        LOGGER.warning(
            "Token refresh (%s tier) failed: %s; keeping the current token "
            "(%d s left) and retrying in %.0f s",
            tier,
            what,
            max(0, int(self.remaining.total_seconds())),
            delay,
        )
        self._schedule_retry(delay)
        self.hass.bus.async_fire(
            EVENT_REFRESH_FAILED,
            {
                "entry_id": self.entry.entry_id,
                "tier": str(tier),
                "error": what,
                "transient": True,
                "retry_in": delay,
            },
        )
        self._last_error = TokenUnavailableError(what)
        self._notify()
        raise self._last_error

    async def _async_rejected(self, tier: RefreshTier, error_code: str) -> None:
        """Handle a dead chain: ask the user to sign in again and say why."""
        self._reauth_required = True
        self.stats.failed_count += 1
        self.stats.last_error = error_code
        await self._async_save()
        conflict = (
            self._last_success is not None
            and dt_util.utcnow() - self._last_success < CONFLICT_WINDOW
        )
        LOGGER.error(
            "Tesla rejected the refresh token (%s tier, %s); sign in again",
            tier,
            error_code,
        )
        if conflict:
            self._raise_conflict_issue("rejected_after_refresh")
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"{ISSUE_REAUTH}_{self.entry.entry_id}",
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_REAUTH,
            translation_placeholders={"title": self.entry.title, "error": error_code},
        )
        self.hass.bus.async_fire(
            EVENT_REAUTH_REQUIRED,
            {"entry_id": self.entry.entry_id, "error": error_code, "tier": str(tier)},
        )
        self.hass.bus.async_fire(
            EVENT_REFRESH_FAILED,
            {
                "entry_id": self.entry.entry_id,
                "tier": str(tier),
                "error": error_code,
                "transient": False,
                "retry_in": None,
            },
        )
        self._cancel_retry()
        self.entry.async_start_reauth(self.hass)
        self._notify()
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="reauth_required"
        )

    @callback
    def _check_outside_change(self) -> None:
        """Notice a token written to the entry by anything but this manager."""
        entry_token = self.entry.data[CONF_TOKEN]
        if entry_token.get("refresh_token") == self._token.get("refresh_token"):
            return
        if any(
            self.entry.async_get_active_flows(
                self.hass, {SOURCE_REAUTH, SOURCE_RECONFIGURE}
            )
        ):
            return
        LOGGER.warning(
            "The stored refresh token was changed outside the token manager; "
            "another client may be using the same refresh chain"
        )
        self._token = dict(entry_token)
        self._raise_conflict_issue("changed_outside")
        self._schedule_expiry_check()

    @callback
    def _raise_conflict_issue(self, cause: str) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"{ISSUE_CONFLICT}_{self.entry.entry_id}",
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=f"{ISSUE_CONFLICT}_{cause}",
            translation_placeholders={"title": self.entry.title},
        )

    @callback
    def _clear_issue(self, issue: str) -> None:
        ir.async_delete_issue(self.hass, DOMAIN, f"{issue}_{self.entry.entry_id}")

    # ------------------------------------------------------------ scheduling

    @callback
    def _schedule_expiry_check(self) -> None:
        """Arm the proactive check for PROACTIVE_WINDOW before expiry."""
        if self._unsub_expiry is not None:
            self._unsub_expiry()
        when = max(self.expires_at - PROACTIVE_WINDOW, dt_util.utcnow())
        self._unsub_expiry = async_track_point_in_utc_time(
            self.hass, self._async_expiry_timer, when
        )

    async def _async_expiry_timer(self, _now: datetime) -> None:
        self._unsub_expiry = None
        await self._async_scheduled_check(_now)

    async def _async_scheduled_check(self, _now: datetime | None = None) -> None:
        """Proactive tier: refresh when less than PROACTIVE_WINDOW remains.

        While a backoff retry is pending, that retry owns the next attempt.
        """
        if (
            self._reauth_required
            or self._unsub_retry is not None
            or self.remaining > PROACTIVE_WINDOW  # the timer fires right at the edge
        ):
            return
        minutes = int(self.remaining.total_seconds() // 60)
        try:
            await self._async_refresh(
                RefreshTier.PROACTIVE,
                f"{minutes} min left",
                observed=self.access_token,
                scheduled=True,
            )
        except HomeAssistantError:
            return  # logged, counted and scheduled for retry already

    @callback
    def _schedule_retry(self, delay: float) -> None:
        self._cancel_retry()
        self._unsub_retry = async_call_later(self.hass, delay, self._async_retry)

    @callback
    def _cancel_retry(self) -> None:
        if self._unsub_retry is not None:
            self._unsub_retry()
            self._unsub_retry = None

    async def _async_retry(self, _now: datetime) -> None:
        self._unsub_retry = None
        if self._reauth_required:
            return
        tier = (
            RefreshTier.EMERGENCY
            if self.remaining <= EMERGENCY_WINDOW
            else RefreshTier.PROACTIVE
        )
        try:
            await self._async_refresh(tier, "retry", observed=self.access_token)
        except HomeAssistantError:
            return

    def as_dict(self) -> dict[str, Any]:
        """Return health data for diagnostics and the check_token action."""
        return {
            "status": str(self.status),
            "expires_at": self.expires_at.isoformat(),
            "remaining_minutes": int(self.remaining.total_seconds() // 60),
            **asdict(self.stats),
        }
