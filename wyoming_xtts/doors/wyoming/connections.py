"""The open connections of one Wyoming server, so that stopping it lets each finish its reply.

A restart of the add-on or a `docker stop` arrives as SIGTERM while an announcement may be half
spoken. The `wyoming` library's own handler stops every connection at once (the client saw
`audio-start`, some audio, then a closed socket); here each connection is asked to finish what
it is saying within the grace period, and to end it properly for its client when the period is
over (see `WyomingTtsHandler.finish_and_close`).
"""

import asyncio
import contextlib
import logging
from typing import Protocol

_LOGGER = logging.getLogger(__name__)

FINAL_WRITE_S = 2.0
"""After the grace period: time for the last events to be written and the sockets closed."""


class Finishing(Protocol):
    """A connection that can be asked to finish its reply and close."""

    def finish_and_close(self, deadline: float) -> None:
        """Accept no new request; close once the reply in flight is done, and end it
        properly for the client if it is not done by `deadline` (the event loop's clock)."""


class Connections:
    """Every connection open on one server."""

    def __init__(self) -> None:
        self._open: set[Finishing] = set()
        self._none_open = asyncio.Event()
        self._none_open.set()
        self._deadline: float | None = None

    @property
    def stopping(self) -> bool:
        """Whether the server is shutting down (a connection arriving now is closed)."""
        return self._deadline is not None

    def opened(self, connection: Finishing) -> None:
        """Count a connection in; one that arrives while stopping is asked to close at once."""
        self._open.add(connection)
        self._none_open.clear()
        if self._deadline is not None:
            connection.finish_and_close(self._deadline)

    def closed(self, connection: Finishing) -> None:
        """Count a connection out."""
        self._open.discard(connection)
        if not self._open:
            self._none_open.set()

    async def drain(self, grace_s: float) -> None:
        """Ask every connection to finish within `grace_s` seconds, and wait until all have
        closed (or, at most, until the last events have had `FINAL_WRITE_S` to be written)."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + grace_s
        if self._open:
            _LOGGER.info(
                "Letting %d connection(s) finish their replies (up to %g s)",
                len(self._open),
                grace_s,
            )
        for connection in list(self._open):
            connection.finish_and_close(self._deadline)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s + FINAL_WRITE_S):
                await self._none_open.wait()
        if self._open:
            _LOGGER.warning("%d connection(s) did not close in time", len(self._open))
