"""Which destination addresses delivery may connect to.

A recipient domain's MX (or an address literal, `user@[10.0.0.1]`) is chosen by whoever
sends the mail, so without a rule anyone able to submit could make this node talk SMTP to
its own loopback, its cluster network or the cloud metadata service (169.254.169.254).
Addresses in these ranges are refused unless `[delivery] allowed_private_networks` lists
them; `[[routes]]` relays are operator choices and never checked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from mta.replies import Reply

from .types import PeerAddress, SiteError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DENIED_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(text)
    for text in (
        "0.0.0.0/8",  # RFC 1122 3.2.1.3: "this network"
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # RFC 6598: shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # RFC 3927 link-local, cloud metadata services included
        "172.16.0.0/12",  # RFC 1918
        "192.168.0.0/16",  # RFC 1918
        "::/128",  # unspecified
        "::1/128",  # loopback
        "fc00::/7",  # RFC 4193 unique local
        "fe80::/10",  # RFC 4291 link-local
    )
)

# RFC 3463: X.4.4 unable to route. Permanent: DNS (or the address literal) names a place
# this node is configured never to deliver to, and retrying for days will not change that
# (KumoMTA fails `prohibited_hosts` the same way).
S550_DESTINATION_NOT_ALLOWED = Reply(550, "5.4.4", "Destination address not allowed")


def destination_not_allowed(peer: PeerAddress) -> Reply:
    return S550_DESTINATION_NOT_ALLOWED.with_text(
        f"{S550_DESTINATION_NOT_ALLOWED.text}: {peer} is in a private or local range"
    )


class DestinationRefused(SiteError):
    """Every address of an MX host is one delivery may not connect to."""


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Refuses the DENIED_NETWORKS except where `allowed` says otherwise."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_config(cls, networks: Iterable[str]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(text) for text in networks))

    def permits(self, addr: str) -> bool:
        """Whether delivery may connect to `addr` (an IP address text; anything else: no)."""
        try:
            ip = ipaddress.ip_address(addr.strip("[]"))
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 reaches 10.0.0.1
        if not any(ip in network for network in DENIED_NETWORKS):
            return True
        return any(ip in network for network in self.allowed)
