"""Running blocking iterators (model inference) off the event loop.

Inference holds a CPU core for seconds. It runs in an executor thread and hands each item to
the event loop as soon as it exists, so the loop keeps answering other clients (and notices
a client that hangs up) while the model works.
"""

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import Executor
from typing import TypeVar

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

_ITEM, _ERROR, _DONE = range(3)


async def iterate_in_thread(
    executor: Executor, produce: Callable[[threading.Event], Iterator[T]]
) -> AsyncGenerator[T, None]:
    """Run `produce(stop)` in `executor` and yield its items on the event loop.

    When the consumer stops early (closes the iterator or is cancelled) `stop` is set: the
    worker stops before the next item, and `produce` may check it to stop sooner (between
    two model steps); an item being computed at that moment is discarded.
    """
    loop = asyncio.get_running_loop()
    handoff: asyncio.Queue[tuple[int, object]] = asyncio.Queue()
    stop = threading.Event()

    def deliver(kind: int, value: object) -> bool:
        try:
            loop.call_soon_threadsafe(handoff.put_nowait, (kind, value))
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            return False
        return True

    def work() -> None:
        if stop.is_set():  # abandoned while waiting for the executor
            return
        try:
            for item in produce(stop):
                if stop.is_set() or not deliver(_ITEM, item):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, re-raised there
            deliver(_ERROR, err)
        else:
            deliver(_DONE, None)

    loop.run_in_executor(executor, work)
    try:
        while True:
            kind, value = await handoff.get()
            if kind == _DONE:
                return
            if kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]
    finally:
        stop.set()
