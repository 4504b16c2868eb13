"""A faithful simulator of Tesla's auth server and Fleet API for tests and benchmarks.

Typical use::

    clock = SimClock.manual(datetime(2025, 3, 3, 6, 0, tzinfo=UTC))
    sim = Simulator(clock=clock)
    sim.add_daily_plan(None, DayPlan.commuter(), days=30, plug_in_days={0, 2, 4})
    token = sim.issue_tokens()
    async with running_simulator(sim) as server:
        api = TeslaFleetApi(session, access_token=token["access_token"], server=server.url)
        clock.advance(timedelta(hours=12))  # the car drives, sleeps and charges lazily
        ...
    print(sim.ledger.cost_usd(), sim.vehicle().arrivals)

The server answers /oauth2/v3/* (auth), /api/1/* (Fleet API) and /_sim/* (admin).
Under Home Assistant's pytest plugin, request the ``socket_enabled`` fixture:
the plugin blocks sockets, even on loopback, unless a test asks for them.
"""

from .billing import CATEGORIES, Ledger, RequestRecord
from .clock import SimClock
from .config import (
    ALL_SCOPES,
    DEFAULT_ACCOUNT_SUB,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EMAIL,
    DEFAULT_HOME,
    DEFAULT_REGION,
    DEFAULT_VIN,
    DEFAULT_WORK,
    AccountConfig,
    ClientConfig,
    Prices,
    RateLimits,
    SimConfig,
    VehicleConfig,
)
from .errors import SimulationError
from .faults import Faults
from .geo import Location
from .plans import DayPlan, PlanStep
from .schedules import ChargeSchedule
from .simulator import Simulator
from .testing import RunningSimulator, running_simulator
from .vehicle import SimVehicle, Trip

__all__ = [
    "ALL_SCOPES",
    "CATEGORIES",
    "DEFAULT_ACCOUNT_SUB",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_EMAIL",
    "DEFAULT_HOME",
    "DEFAULT_REGION",
    "DEFAULT_VIN",
    "DEFAULT_WORK",
    "AccountConfig",
    "ChargeSchedule",
    "ClientConfig",
    "DayPlan",
    "Faults",
    "Ledger",
    "Location",
    "PlanStep",
    "Prices",
    "RateLimits",
    "RequestRecord",
    "RunningSimulator",
    "SimClock",
    "SimConfig",
    "SimVehicle",
    "SimulationError",
    "Simulator",
    "Trip",
    "VehicleConfig",
    "running_simulator",
]
