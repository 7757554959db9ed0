"""Which (address, port) pairs are this node's own SMTP listeners, for mail loop detection."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


def _normalize(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr.strip("[]")))
    except ValueError:
        return addr.lower()


@dataclass(frozen=True, slots=True)
class OwnListeners:
    """`exact` listeners by (ip, port); `wildcard_ports` listen on every address, which
    covers every loopback address and each address in `machine`."""

    exact: frozenset[tuple[str, int]] = frozenset()
    wildcard_ports: frozenset[int] = frozenset()
    machine: frozenset[str] = frozenset()

    @classmethod
    def from_listeners(
        cls, listeners: Iterable[tuple[str, int]], machine: Iterable[str] = ()
    ) -> OwnListeners:
        pairs = [(_normalize(host), port) for host, port in listeners]
        return cls(
            exact=frozenset(pair for pair in pairs if pair[0] not in WILDCARDS),
            wildcard_ports=frozenset(port for host, port in pairs if host in WILDCARDS),
            machine=frozenset(_normalize(addr) for addr in machine),
        )

    def listens_on(self, port: int) -> bool:
        return port in self.wildcard_ports or any(p == port for _, p in self.exact)

    def is_own(self, addr: str, port: int) -> bool:
        """Would a connection to `addr`:`port` reach one of our own listeners?"""
        addr = _normalize(addr)
        if (addr, port) in self.exact:
            return True
        if port not in self.wildcard_ports:
            return False
        return addr in self.machine or _is_loopback(addr)


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


async def machine_addresses() -> frozenset[str]:
    """The addresses the host name resolves to (the pod IP in Kubernetes), best effort."""
    loop = asyncio.get_running_loop()
    found: set[str] = set()
    for name in {socket.gethostname(), "localhost"}:
        try:
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except OSError:
            continue
        found.update(str(info[4][0]) for info in infos)
    return frozenset(found)
