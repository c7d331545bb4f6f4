"""The local engine's idle clock, for `--unload-after`: when the last segment ended, and a call
on the event loop once nothing has been spoken for that long.

A segment being spoken is never idle time: the clock is stopped while any segment is open and
starts again from the end of the last one (or from the end of the load).
"""

import asyncio
import time
from collections.abc import Callable


class IdleTimer:
    """Calls `expired` on the event loop after `seconds` with no segment open (never when
    `seconds` is None). Used from the event loop, except `idle_minutes`."""

    def __init__(self, seconds: float | None, expired: Callable[[], None]) -> None:
        self._seconds = seconds
        self._expired = expired
        self._pending: asyncio.TimerHandle | None = None
        self._stopped = False
        # A float assignment: the model thread reads it whole.
        self._idle_since = time.monotonic()

    def busy(self) -> None:
        """A segment started: no call until the engine is idle again."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """The last open segment ended (or the model was loaded): the clock starts from now."""
        self._idle_since = time.monotonic()
        self.busy()
        if self._seconds is not None and not self._stopped:
            self._pending = loop.call_later(self._seconds, self._fire)

    def stop(self) -> None:
        """The engine is closing: no call from now on."""
        self._stopped = True
        self.busy()

    def idle_minutes(self) -> float:
        """Minutes since the last segment ended (any thread)."""
        return (time.monotonic() - self._idle_since) / 60

    def _fire(self) -> None:
        self._pending = None
        self._expired()
