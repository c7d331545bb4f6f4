"""Admission to an engine: slots for the segments it speaks at once, and a bounded queue.

A slot is held per segment, not per reply, and slots are handed out in arrival order
(asyncio's semaphore wakes its waiters first in, first out): a long reply cannot keep a short
one waiting for more than a segment. With a bound on the segments waiting (`--max-waiting`),
a segment arriving when the queue is full is refused at once with `engine-busy` instead of
joining it: the fallback engine, when there is one, speaks it now rather than the busy engine
late; without one, the refusal is the limit the user asked for.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .errors import ErrorCode, SpeechError


class Admission:
    """Segments admitted to one engine: `slots` at once, at most `max_waiting` queued."""

    def __init__(
        self, slots: int, max_waiting: int | None = None, engine: str = "The engine"
    ) -> None:
        self._free = asyncio.Semaphore(slots)
        self._slots = slots
        self._max_waiting = max_waiting
        """None: no bound."""
        self._engine = engine
        """How the refusal names the engine (`local`, `replicate`, …)."""
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Segments queued for a slot now."""
        return self._waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Holds one slot while the block runs, after waiting in turn for it; raises
        `SpeechError(ENGINE_BUSY)`, without waiting, when the queue is already full."""
        full = self._max_waiting is not None and self._waiting >= self._max_waiting
        if full and self._free.locked():
            raise SpeechError(
                ErrorCode.ENGINE_BUSY,
                f"{self._engine} is busy: it is speaking {self._slots} segment(s) at once "
                f"with {self._waiting} more waiting (--max-waiting {self._max_waiting}).",
            )
        self._waiting += 1
        try:
            await self._free.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._free.release()
