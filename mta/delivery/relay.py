"""Sites of routes that name their hosts: smart-host relays (TLS mode, SASL credentials) and
LMTP servers. `RouteSites` turns a route's `Destination` into a `Site` (whose ready queue,
connection pool, leases and shaping are those of any site) and remembers, per site, how its
sessions connect: what a plain MX site takes from the egress path instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mta.routing import Destination, PasswordSource
from mta.routing.destination import socket_path
from mta.units import parse_hostport

from .client import SmtpSession
from .lmtp import LmtpSession
from .mx import RELAY_PREFIX, relay_site_name
from .settings import SessionSettings
from .tls import DISABLED
from .types import Site

DISCARD_SITE = "discard"
# What the route's `tls` means on the wire (tls.py modes); a relay is an operator's choice,
# so STARTTLS there is required (RFC 3207 4.1's "must" level), verified unless told not to.
_STARTTLS = {True: "Required", False: "RequiredInsecure"}


@dataclass(frozen=True, slots=True)
class Transport:
    """How sessions to one routed site connect."""

    ports: Mapping[str, int]  # host -> port
    tls_mode: str | None  # STARTTLS mode; None: the egress path's `enable_tls`
    implicit_tls: str | None = None  # TLS from the first byte, verified per this mode
    credentials: PasswordSource | None = None
    lmtp: bool = False
    socket_path: str | None = None

    @property
    def session_class(self) -> type[SmtpSession]:
        return LmtpSession if self.lmtp else SmtpSession

    def settings(self, base: SessionSettings, host: str) -> SessionSettings:
        """The session settings for `host` of this site."""
        return dataclasses.replace(
            base,
            port=self.ports.get(host, base.port),
            tls_mode=self.tls_mode or base.tls_mode,
            implicit_tls=self.implicit_tls,
            credentials=self.credentials,
            socket_path=self.socket_path,
        )


class RouteSites:
    """Sites for relay and LMTP destinations, and their transports by site name.

    A relay site is named "relay:host:port" (hosts joined by "|"), as before routes had more
    than one; an LMTP site "lmtp:host:port" or "lmtp:unix:/path".
    """

    def __init__(self, smtp_port: int) -> None:
        self._smtp_port = smtp_port
        self._sites: dict[Destination, Site] = {}
        self._transports: dict[str, Transport] = {}

    def site(self, destination: Destination) -> Site:
        """The site of a "relay" or "lmtp" destination (hosts tried in the listed order)."""
        site = self._sites.get(destination)
        if site is None:
            site = self._sites[destination] = self._new_site(destination)
        return site

    def transport(self, site_name: str) -> Transport | None:
        return self._transports.get(site_name)

    def _new_site(self, destination: Destination) -> Site:
        if destination.kind == "lmtp":
            name, transport = _lmtp_transport(destination.targets[0])
        else:
            name, transport = self._relay_transport(destination)
        self._transports[name] = transport
        hosts = ("unix",) if transport.socket_path else tuple(transport.ports)
        port = next(iter(transport.ports.values()), 0)
        return Site(name, tuple((host,) for host in hosts), port, transport.tls_mode or DISABLED)

    def _relay_transport(self, destination: Destination) -> tuple[str, Transport]:
        ports: dict[str, int] = {}
        for target in destination.targets:
            host, port = parse_hostport(target, default_port=self._smtp_port)
            ports.setdefault(host, port)
        name = "|".join(relay_site_name(host, port) for host, port in ports.items())
        name = RELAY_PREFIX + name.replace("|" + RELAY_PREFIX, "|")[len(RELAY_PREFIX) :]
        verify = destination.tls_verify
        auth = None if destination.auth is None else PasswordSource(destination.auth)
        frozen = MappingProxyType(ports)
        if destination.tls == "implicit":
            return name, Transport(frozen, DISABLED, _STARTTLS[verify], auth)
        mode = {"starttls": _STARTTLS[verify], "none": DISABLED}.get(destination.tls or "")
        return name, Transport(frozen, mode, None, auth)


def _lmtp_transport(target: str) -> tuple[str, Transport]:
    name = f"lmtp:{target}"
    path = socket_path(target)
    if path is not None:
        return name, Transport(MappingProxyType({}), DISABLED, lmtp=True, socket_path=path)
    host, port = parse_hostport(target)
    return name, Transport(MappingProxyType({host: port}), DISABLED, lmtp=True)
