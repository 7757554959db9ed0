"""PROXY protocol (v1 text, v2 binary) on listeners behind a load balancer.

The header is parsed by aiosmtpd's `proxy_protocol.get_proxy` (part of our pinned aiosmtpd);
this module decides what to believe. A header is only read from peers inside
`[smtp] proxy_networks`: anyone else connecting to a PROXY listener gets 554 5.7.1 and is
disconnected, whatever they send. A header that is truncated, malformed or names no usable
address closes the connection without a reply (the peer is a proxy, not a mail client).
LOCAL (v2, a load balancer's health check) and UNKNOWN (v1) headers carry no client: the
session then uses the proxy's own address, as the specification says.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable

from aiosmtpd.proxy_protocol import AF, V2_CMD, ProxyData, get_proxy

from mta.smtp.validate import Network, normalize_ip

log = logging.getLogger(__name__)

Address = tuple[str, int]


def from_proxy_network(peer_ip: str, networks: Iterable[Network]) -> bool:
    """Whether the socket peer may send a PROXY header."""
    try:
        address = ipaddress.ip_address(peer_ip)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_address(data: ProxyData, proxy: Address) -> Address | None:
    """The real client (ip, port) a parsed header names; None when it is not usable."""
    if not data.valid:
        return None
    if data.version == 2 and data.command == V2_CMD.LOCAL:
        return proxy
    if data.family not in (AF.INET, AF.INET6):  # v1 UNKNOWN, v2 UNSPEC or AF_UNIX
        return proxy if data.family == AF.UNSPEC else None
    if data.src_addr is None or data.src_port is None:
        return None
    return normalize_ip(str(data.src_addr)), int(data.src_port)


async def read_client_address(reader: asyncio.StreamReader, proxy: Address) -> Address | None:
    """Read one PROXY header from `reader`; None when the connection should be closed."""
    try:
        data = await get_proxy(reader)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        log.info("PROXY header from %s cut short", proxy[0])
        return None
    address = client_address(data, proxy)
    if address is None:
        log.info("unusable PROXY header from %s: %s", proxy[0], data.error or "no address")
    return address
