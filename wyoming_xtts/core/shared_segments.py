"""One synthesis heard by every request that asks for the same segment at the same time.

An announcement sent to several speakers arrives as identical requests within milliseconds:
the same text, voice, clips and settings. The first starts the engine; the others follow its
audio from the first piece, as it is made, instead of queueing for the model with the same
work. The synthesis runs as a task of its own, so a listener that hangs up does not stop it
for the others; it is stopped when the last listener has gone.
"""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from functools import partial

import numpy as np


class SharedSegment:
    """A segment's audio as one producer makes it, for any number of listeners."""

    def __init__(
        self, produce: Callable[[], AsyncIterator[np.ndarray]], on_end: Callable[[], None]
    ):
        self._pieces: list[np.ndarray] = []
        self._error: BaseException | None = None
        self._done = False
        self._changed = asyncio.Condition()
        self._listeners = 0
        self._on_end = on_end
        self.open = True
        """False once the synthesis has ended or been given up: later requests start anew."""
        self._task = asyncio.create_task(self._run(produce))

    async def listen(self) -> AsyncGenerator[np.ndarray, None]:
        """The pieces from the first one on, as they are produced; the producer's failure is
        raised here too."""
        self._listeners += 1
        index = 0
        try:
            while True:
                async with self._changed:
                    await self._changed.wait_for(partial(self._beyond, index))
                while index < len(self._pieces):
                    yield self._pieces[index]
                    index += 1
                if self._done and index == len(self._pieces):
                    if self._error is not None:
                        raise self._error
                    return
        finally:
            self._listeners -= 1
            if self._listeners == 0 and not self._done:
                self._close()
                self._task.cancel()

    def _beyond(self, index: int) -> bool:
        """True when there is a piece at `index` or nothing more will come."""
        return index < len(self._pieces) or self._done

    async def _run(self, produce: Callable[[], AsyncIterator[np.ndarray]]) -> None:
        try:
            async for piece in produce():
                async with self._changed:
                    self._pieces.append(piece)
                    self._changed.notify_all()
        except asyncio.CancelledError:
            self._error = asyncio.CancelledError()
            raise
        except Exception as err:  # noqa: BLE001 - handed to every listener
            self._error = err
        finally:
            self._close()
            self._done = True
            async with self._changed:
                self._changed.notify_all()

    def _close(self) -> None:
        if self.open:
            self.open = False
            self._on_end()
