"""Change listeners for the integration's push-style state holders."""

from __future__ import annotations

from homeassistant.core import CALLBACK_TYPE, callback


class Listeners:
    """Callbacks to run whenever their owner's state changes."""

    def __init__(self) -> None:
        """Start with no listeners."""
        self._callbacks: list[CALLBACK_TYPE] = []

    @callback
    def add(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``update`` after every change; returns the function that removes it."""
        self._callbacks.append(update)

        @callback
        def remove() -> None:
            self._callbacks.remove(update)

        return remove

    @callback
    def notify(self) -> None:
        """Run every listener (one may remove itself while running)."""
        for update in list(self._callbacks):
            update()
