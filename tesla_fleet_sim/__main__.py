"""Run the simulator as a standalone server: ``python -m tesla_fleet_sim``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys

from .clock import SimClock
from .config import SimConfig
from .simulator import Simulator
from .testing import DEFAULT_HOST, RunningSimulator, running_simulator

DEFAULT_PORT = 8765


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m tesla_fleet_sim",
        description="Serve a simulated Tesla auth server and Fleet API.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--config", help="JSON file with SimConfig fields")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per real second"
    )
    parser.add_argument(
        "--proxy",
        action="store_true",
        help="also serve a simulated tesla-http-proxy over HTTPS (generated CA)",
    )
    parser.add_argument("--verbose", action="store_true", help="log requests")
    return parser.parse_args(argv)


def banner(server: RunningSimulator, speed: float) -> str:
    """Describe what is being served."""
    sim = server.sim
    lines = [
        (
            f"Tesla Fleet API simulator at {server.url} (region {sim.config.server_region},"
            f" clock x{speed:g})"
        ),
        f"  authorize: {server.authorize_url}",
        f"  token:     {server.token_url}",
        f"  Fleet API: {server.url}/api/1/...",
        (
            f"  regions:   {server.region_url('na')}, {server.region_url('eu')},"
            f" {server.region_url('cn')}"
        ),
    ]
    if server.proxy_port is not None:
        lines.append(
            f"  proxy:     {server.proxy_url} (CA certificate {server.proxy_ca_path})"
        )
    lines.extend(
        f"  client: id={c.client_id} secret={c.client_secret}"
        for c in sim.config.clients
    )
    for account in sim.config.accounts:
        vins = ", ".join(v.vin for v in account.vehicles)
        lines.append(
            f"  account: {account.sub} <{account.email}> region={account.region}"
        )
        lines.append(f"    vehicles: {vins}")
    lines += [
        "  admin: GET /_sim/state[?requests=N], POST /_sim/clock (manual clocks only),",
        "         POST /_sim/vehicles/{vin} {action}, POST /_sim/faults,",
        (
            "         POST /_sim/accounts/{sub}/revoke|tokens|authorize,"
            " POST /_sim/reset_accounting"
        ),
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines) + "\n"


async def serve(
    sim: Simulator, host: str, port: int, speed: float, proxy: bool = False
) -> None:
    """Serve until cancelled."""
    async with running_simulator(sim, host=host, port=port, proxy=proxy) as server:
        sys.stdout.write(banner(server, speed))
        sys.stdout.flush()
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)
    config = SimConfig.from_file(args.config) if args.config else SimConfig()
    sim = Simulator(config, SimClock.real(speed=args.speed))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sim, args.host, args.port, args.speed, args.proxy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
