"""Announcing the server on the local network so Home Assistant finds it by itself.

Home Assistant's Wyoming integration browses mDNS for `_wyoming._tcp.local.` and offers
every server it finds. The record must carry an address Home Assistant can reach: a server
bound to 0.0.0.0 advertises the address of the interface that routes to the mDNS group
(`--zeroconf-host` overrides it, e.g. the host's address when running in Docker).
"""

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

from zeroconf import InterfaceChoice
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
_MDNS_GROUP = ("224.0.0.251", 5353)
_ANY_ADDRESS = ("", "0.0.0.0", "::")


def advertised_host(bind_host: str, override: str | None = None) -> str:
    """The IPv4 address to announce for a server listening on `bind_host`."""
    if override:
        return override
    if bind_host not in _ANY_ADDRESS:
        return bind_host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(_MDNS_GROUP)  # no packet is sent: this only picks the route
        return str(probe.getsockname()[0])


@dataclass
class ZeroconfAnnouncer:
    """Registers the server's `_wyoming._tcp` record for as long as it runs."""

    name: str
    """Instance name shown in Home Assistant's discovery."""

    host: str
    """IPv4 address announced."""

    port: int
    """TCP port of the Wyoming server."""

    interfaces: InterfaceChoice | Sequence[str] = InterfaceChoice.All
    """Interfaces to announce on: all, or these addresses (tests use loopback only)."""

    _zeroconf: AsyncZeroconf | None = field(default=None, init=False, repr=False)
    _info: AsyncServiceInfo | None = field(default=None, init=False, repr=False)

    async def start(self) -> None:
        self._zeroconf = AsyncZeroconf(interfaces=self.interfaces)
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.name}.{SERVICE_TYPE}",
            addresses=[socket.inet_aton(self.host)],
            port=self.port,
            server=f"{self.name}.local.",
        )
        await self._zeroconf.async_register_service(self._info)
        _LOGGER.info(
            "Announced %s on %s:%d over mDNS (%s)", self.name, self.host, self.port, SERVICE_TYPE
        )

    async def close(self) -> None:
        """Withdraw the record (a goodbye packet) and release the sockets."""
        if self._zeroconf is None:
            return
        if self._info is not None:
            await self._zeroconf.async_unregister_service(self._info)
        await self._zeroconf.async_close()
        self._zeroconf = None
