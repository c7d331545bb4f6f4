"""The Wyoming front door: one TCP, Unix-socket or stdio server handing each connection to a
`WyomingTtsHandler`, under one `Admission`, announced over mDNS when asked."""

from functools import partial
from urllib.parse import urlparse

from wyoming.server import AsyncServer, HandlerFactory

from ...core.networks import parse_networks
from ...core.service import Core
from ...core.settings import Settings
from .admission import Admission, AdmissionPolicy
from .discovery import ZeroconfAnnouncer, advertised_host
from .handler import WyomingTtsHandler


async def serve_wyoming(core: Core, settings: Settings) -> None:
    """Answer Wyoming clients on `settings.uri` until cancelled."""
    announcer = _announcer(settings)
    if announcer is not None:
        await announcer.start()
    try:
        await AsyncServer.from_uri(settings.uri).run(handler_factory(core, settings))
    finally:
        if announcer is not None:
            await announcer.close()


def handler_factory(core: Core, settings: Settings) -> HandlerFactory:
    """Creates one protocol handler per client connection, all under one `Admission`."""
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
    )


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
