"""Handing results of model work, done on a worker thread, to the event loop.

Inference holds a CPU core for seconds. It runs on a worker thread and hands each piece to
the event loop as soon as it exists, so the loop keeps answering other clients (and notices a
client that hangs up) while the model works.
"""

import asyncio
import threading
from collections.abc import AsyncGenerator
from typing import Generic, TypeVar

T = TypeVar("T")

_ITEM, _ERROR, _DONE = range(3)


class Handoff(Generic[T]):
    """A one-way channel from a worker thread to one consumer on the event loop.

    The worker calls `put`, then `finish` or `fail`; the consumer iterates `items()`. When the
    consumer stops early (closes the iterator or is cancelled), `abandoned` becomes true so
    the worker can stop at its next step; anything it still puts is discarded.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue()
        self._abandoned = threading.Event()

    @property
    def abandoned(self) -> bool:
        """The consumer went away: nothing put from now on is read."""
        return self._abandoned.is_set()

    def put(self, item: T) -> bool:
        """Hand over one item (worker thread); False if nobody is listening any more."""
        return not self.abandoned and self._deliver(_ITEM, item)

    def fail(self, error: BaseException) -> None:
        """End the items with `error`, raised in the consumer (worker thread)."""
        self._deliver(_ERROR, error)

    def finish(self) -> None:
        """End the items normally (worker thread)."""
        self._deliver(_DONE, None)

    async def items(self) -> AsyncGenerator[T, None]:
        """The items as they arrive, until `finish` or `fail` (event loop)."""
        try:
            while True:
                kind, value = await self._queue.get()
                if kind == _DONE:
                    return
                if kind == _ERROR:
                    assert isinstance(value, BaseException)
                    raise value
                yield value  # type: ignore[misc]
        finally:
            self._abandoned.set()

    def _deliver(self, kind: int, value: object) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            self._abandoned.set()
            return False
        return True
