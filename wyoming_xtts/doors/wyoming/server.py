"""The Wyoming front door: one TCP, Unix-socket or stdio server handing each connection to a
`WyomingTtsHandler`, under one `Admission`, announced over mDNS when asked, and stopped so that
the replies in flight are finished (`connections.py`)."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

from wyoming.server import AsyncEventHandler, AsyncStdioServer, HandlerFactory

from ...core.networks import parse_networks
from ...core.service import Core
from ...core.settings import Settings
from .admission import Admission, AdmissionPolicy
from .connections import Connections
from .discovery import ZeroconfAnnouncer, advertised_host
from .handler import WyomingTtsHandler

_LOGGER = logging.getLogger(__name__)


async def serve_wyoming(core: Core, settings: Settings, stop: asyncio.Event) -> None:
    """Answer Wyoming clients on `settings.uri` until `stop` is set, then let the replies in
    flight finish within `settings.shutdown_grace` and withdraw the mDNS announcement.

    Over stdio there is one client, and the server ends with its input (the `wyoming`
    library's stdio server, which also ends it at once on SIGTERM)."""
    connections = Connections()
    factory = handler_factory(core, settings, connections)
    announcer = _announcer(settings)
    if settings.uri.startswith("stdio://"):
        stdio = asyncio.ensure_future(AsyncStdioServer().run(factory))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stdio, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        stop.set()  # the other doors end with the only client
        await _finished(stdio)
        return
    listener = await _listen(settings.uri, factory)
    if announcer is not None:
        await announcer.start()
    try:
        await stop.wait()
    finally:
        listener.close()  # no new connections; the open ones finish their replies
        await connections.drain(settings.shutdown_grace)
        if announcer is not None:
            await announcer.close()  # the mDNS goodbye
        _remove_socket_file(settings.uri)


def handler_factory(
    core: Core, settings: Settings, connections: Connections | None = None
) -> HandlerFactory:
    """Creates one protocol handler per client connection, all under one `Admission` (and,
    for a server that can be stopped gracefully, one `Connections`)."""
    admission = Admission(
        AdmissionPolicy(
            max_connections=settings.max_connections,
            idle_timeout_s=settings.idle_timeout,
            allowed_networks=parse_networks(settings.allow),
        )
    )
    return partial(
        WyomingTtsHandler,
        core=core,
        max_text_chars=settings.max_text_chars,
        admission=admission,
        connections=connections or Connections(),
    )


async def _listen(uri: str, factory: HandlerFactory) -> asyncio.Server:
    """A listening socket for `tcp://HOST:PORT` or `unix://PATH`. Not the `wyoming` library's
    servers: their `run` installs a SIGTERM handler that stops every connection at once, and
    their `stop` does the same; here the listener closes first and each connection finishes."""
    address = urlparse(uri)
    serve_one = partial(_serve_connection, factory)
    if address.scheme == "unix":
        Path(address.path).unlink(missing_ok=True)
        return await asyncio.start_unix_server(serve_one, path=address.path)
    return await asyncio.start_server(serve_one, host=address.hostname, port=address.port)


async def _serve_connection(
    factory: Callable[[asyncio.StreamReader, asyncio.StreamWriter], AsyncEventHandler],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    try:
        await factory(reader, writer).run()
    except Exception:
        _LOGGER.exception("A connection's handler failed")
        writer.close()


async def _finished(task: Awaitable[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _remove_socket_file(uri: str) -> None:
    address = urlparse(uri)
    if address.scheme == "unix":
        Path(address.path).unlink(missing_ok=True)


def _announcer(settings: Settings) -> ZeroconfAnnouncer | None:
    """The mDNS announcement `--zeroconf` asks for (settings ensure a tcp:// URI)."""
    if settings.zeroconf_name is None:
        return None
    address = urlparse(settings.uri)
    return ZeroconfAnnouncer(
        name=settings.zeroconf_name,
        host=advertised_host(address.hostname or "", settings.zeroconf_host),
        port=address.port or 10200,
    )
