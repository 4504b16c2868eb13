"""Fixed-interval pollers: the behaviour the scout is compared with.

``FixedPoller`` models Home Assistant core's ``tesla_fleet`` vehicle
coordinator: the product list once at setup, then every ``interval`` a state
check (``GET /vehicles/{vin}``) followed by ``vehicle_data`` whenever the car
is online; the first cycle reuses the state from the product list. Its tokens
are refreshed like HA's ``OAuth2Session`` does it: 20 s before expiry, by the
request that finds them so.

The poller talks to the simulator in-process (no HTTP): the requests run
through the same pipeline (token check, rate limits, billing) as those of the
integration, on a manual clock that jumps from request to request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tesla_fleet_sim import SimClock, Simulator
from tesla_fleet_sim.billing import RequestRecord
from tesla_fleet_sim.simulator import TOKEN_PATH

from .harness import Call, at_home, send

HA_CORE_ENDPOINTS = (
    "charge_state;climate_state;drive_state;location_data;vehicle_state;vehicle_config"
)
TOKEN_MARGIN = timedelta(seconds=20)  # OAuth2Session refreshes this early


def _request(
    route: str,
    path: str,
    vin: str | None = None,
    method: str = "GET",
    query: dict[str, str] | None = None,
) -> Call:
    """Describe a request for :func:`harness.send` (outcome fields unused)."""
    return Call(
        at=datetime.min.replace(tzinfo=UTC),
        route=route,
        path=path,
        method=method,
        category="",
        vin=vin,
        command=None,
        body={},
        query=query or {},
        status=0,
        billed=False,
        expired=False,
    )


@dataclass(slots=True)
class FixedPoller:
    """A fixed-interval poller of one car."""

    sim: Simulator
    clock: SimClock
    interval: timedelta
    home_states: list[tuple[datetime, bool]] = field(default_factory=list)
    refreshes: int = 0
    refresh_failures: int = 0
    reauths: int = 0
    _token: dict[str, Any] = field(default_factory=dict)
    _expires_at: datetime | None = None
    _state: str | None = None
    _at_home: bool | None = None

    @property
    def vin(self) -> str:
        """The polled car."""
        return self.sim.vehicle().vin

    def run(self, start: datetime, end: datetime, replay: Sequence[Call]) -> None:
        """Poll from ``start`` to ``end``; send ``replay`` calls at their times."""
        self.clock.set(start)
        self._login()
        plan: list[tuple[datetime, int, Call | None]] = []
        moment = start
        while moment < end:
            plan.append((moment, 1, None))
            moment += self.interval
        plan.extend((call.at, 0, call) for call in replay if start <= call.at < end)
        plan.sort(key=lambda item: (item[0], item[1]))
        self._setup()
        for at, _, call in plan:
            self.clock.set(max(at, self.clock.now()))
            if not self._ensure_token():
                continue
            if call is None:
                self._poll()
            else:
                send(self.sim, self._token["access_token"], call)
        self.clock.set(max(end, self.clock.now()))

    # --- tokens -----------------------------------------------------------

    def _login(self) -> None:
        self._token = self.sim.issue_tokens()
        self._expires_at = self.clock.now() + timedelta(
            seconds=int(self._token["expires_in"])
        )

    def _ensure_token(self) -> bool:
        """Refresh when the token is about to expire; False after a rejection."""
        if self.reauths:
            return False
        assert self._expires_at is not None
        now = self.clock.now()
        if self._expires_at >= now + TOKEN_MARGIN:
            return True
        form = {
            "grant_type": "refresh_token",
            "client_id": self.sim.config.clients[0].client_id,
            "refresh_token": str(self._token["refresh_token"]),
        }
        outcome = self.sim.tokens.token(form)
        self.sim.log_request(
            RequestRecord(
                now,
                "POST",
                TOKEN_PATH,
                status=outcome.status,
                grant_type="refresh_token",
                error=outcome.error,
            )
        )
        self.refreshes += 1
        if outcome.status != 200:
            self.refresh_failures += 1
            if outcome.status in (400, 401):
                self.reauths += 1
                return False
            return self._expires_at > now
        self._token = dict(outcome.body)
        self._expires_at = now + timedelta(seconds=int(outcome.body["expires_in"]))
        return True

    # --- polling ----------------------------------------------------------

    def _setup(self) -> None:
        """Read the product list, as HA core does at setup.

        Core's first refresh still asks the car's state itself (measured with
        core's real code in bench_core.py), so the list's state is not reused.
        """
        send(
            self.sim,
            self._token["access_token"],
            _request("products", "/api/1/products"),
        )

    def _poll(self) -> None:
        token = self._token["access_token"]
        path = f"/api/1/vehicles/{self.vin}"
        if self._state is None:
            response = send(self.sim, token, _request("get_vehicle", path, self.vin))
            if response.status != 200:
                return
            self._state = str((response.body.get("response") or {}).get("state"))
        state, self._state = self._state, None
        if state != "online":
            return
        response = send(
            self.sim,
            token,
            _request(
                "vehicle_data",
                f"{path}/vehicle_data",
                self.vin,
                query={"endpoints": HA_CORE_ENDPOINTS},
            ),
        )
        if response.status != 200:
            return
        home = at_home(response.body.get("response") or {})
        if home is not None and home != self._at_home:
            self._at_home = home
            self.home_states.append((self.clock.now(), home))
