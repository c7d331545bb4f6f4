"""Who may connect, how many at once, and how long a silent connection is kept.

Wyoming has no authentication: anyone who can reach the port can use the server. These
bounds keep one misbehaving client (or a scanner) from exhausting it: an allow-list of client
networks, a cap on open connections, and an idle timeout for connections that neither send
nor wait for audio. One `Admission` is shared by all the connections of a server.
"""

import ipaddress
import logging
from dataclasses import dataclass
from enum import StrEnum

from ...core.networks import IpNetwork

_LOGGER = logging.getLogger(__name__)


class Refusal(StrEnum):
    """Why a connection is not admitted."""

    NOT_ALLOWED = "not-allowed"
    """The client is outside --allow: closed without a word."""

    TOO_MANY_CONNECTIONS = "too-many-connections"
    """--max-connections are open: told so (`too-many-connections`), then closed."""


@dataclass(frozen=True)
class AdmissionPolicy:
    """The bounds on connections."""

    max_connections: int = 32
    """Connections open at once; more are refused with a `too-many-connections` error."""

    idle_timeout_s: float = 300.0
    """A connection that sends nothing for this long while no response is running is closed."""

    allowed_networks: tuple[IpNetwork, ...] = ()
    """Client networks that may connect (empty: any). Unix sockets and stdio are local."""


class Admission:
    """Counts open connections and checks clients against the policy."""

    def __init__(self, policy: AdmissionPolicy) -> None:
        self.policy = policy
        self._open = 0

    def admit(self, peer: object) -> Refusal | None:
        """Take a slot for a client; returns why it is refused, or None when admitted.

        `peer` is what the socket reports (`(host, port, ...)` for TCP, '' for a Unix socket).
        """
        if self.policy.allowed_networks and isinstance(peer, tuple) and peer:
            address = ipaddress.ip_address(str(peer[0]).split("%")[0])
            if address.version == 6 and address.ipv4_mapped is not None:
                address = address.ipv4_mapped
            if not any(address in network for network in self.policy.allowed_networks):
                _LOGGER.warning("Refused a connection from %s: not in --allow", address)
                return Refusal.NOT_ALLOWED
        if self._open >= self.policy.max_connections:
            _LOGGER.warning("Refused a connection: %d already open (--max-connections)", self._open)
            return Refusal.TOO_MANY_CONNECTIONS
        self._open += 1
        return None

    def release(self) -> None:
        """Give back the slot of a connection that has closed."""
        self._open -= 1
