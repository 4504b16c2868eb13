"""Exceptions raised by the simulator."""


class SimulationError(Exception):
    """An action is not possible in the simulated world's current state."""
