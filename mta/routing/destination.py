"""Where a recipient goes: a `Destination` value, and Postfix transport values parsed into one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from mta.config import RouteAuthConfig, RouteConfig, RouteTls
from mta.replies import Reply
from mta.units import parse_hostport

DestinationKind = Literal["mx", "relay", "lmtp", "discard"]
LMTP_PORT = 24  # RFC 2033 4 (Mailman core listens on 8024)
UNIX_PREFIX = "unix:"
# The outcome of a discarded recipient: a Delivery record whose response says so.
S250_DISCARDED = Reply(250, "2.0.0", "Discarded: the route says discard = true")


@dataclass(frozen=True, slots=True)
class Destination:
    """A route's destination.

    `targets`: the relay's "host:port"s in order, or the LMTP server's one "host:port" or
    unix socket path. `tls` is None when the route leaves it to the egress path's
    `enable_tls` (a relay without `tls` or `auth`). `label` is the routing key that keeps the
    recipients of a leg apart ("" when the recipient domain alone decided the route).
    """

    kind: DestinationKind
    targets: tuple[str, ...] = ()
    tls: RouteTls | None = None
    tls_verify: bool = True
    auth: RouteAuthConfig | None = None
    label: str = ""
    pool: str | None = None  # the route's egress pool (`[egress.pools]`)

    @property
    def name(self) -> str:
        """The site name: "relay:host:port" (hosts joined by "|"), "lmtp:host:port",
        "lmtp:unix:/path", "discard" or "mx"."""
        if self.kind in ("relay", "lmtp"):
            return f"{self.kind}:" + "|".join(self.targets)
        return self.kind


MX = Destination("mx")
DISCARD = Destination("discard")


@dataclass(frozen=True, slots=True)
class Rejected:
    """The recipient has no destination: refuse it with `reply` (550 5.1.1, no backscatter)."""

    reply: Reply


def lmtp_target(text: str) -> str:
    """The canonical LMTP target: "host:port" (default port 24) or "unix:/path".

    Raises ValueError for anything else."""
    text = text.strip()
    if text.startswith(UNIX_PREFIX):
        text = text[len(UNIX_PREFIX) :]
    if text.startswith("/"):
        return UNIX_PREFIX + text
    host, port = parse_hostport(text, default_port=LMTP_PORT)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def socket_path(target: str) -> str | None:
    """The unix socket path of an LMTP target, None for "host:port"."""
    return target[len(UNIX_PREFIX) :] if target.startswith(UNIX_PREFIX) else None


def parse_transport(value: str) -> Destination:
    """A Postfix transport(5) value as Mailman writes it: `lmtp:[host]:port`,
    `lmtp:host:port`, `lmtp:inet:host:port` or `lmtp:unix:/path`. Raises ValueError."""
    transport, sep, nexthop = value.strip().partition(":")
    if transport.lower() != "lmtp" or not sep or not nexthop:
        raise ValueError(f"unsupported transport {value!r} (only lmtp:... is understood)")
    if nexthop.startswith("inet:"):
        nexthop = nexthop[len("inet:") :]
    target = lmtp_target(nexthop)
    return Destination("lmtp", (target,), label=f"lmtp:{target}")


def route_destination(route: RouteConfig, *, label: bool = False) -> Destination:
    """The fixed destination of a route without a transport map; `label` gives the leg a
    routing key (the route matched on more than the domain)."""
    if route.relay:
        tls = route.tls or ("starttls" if route.auth is not None else None)
        dest = Destination("relay", route.relay, tls, route.tls_verify, route.auth)
    elif route.lmtp is not None:
        dest = Destination("lmtp", (lmtp_target(route.lmtp),))
    elif route.discard:
        dest = DISCARD
    else:
        dest = MX
    if route.pool is not None:
        dest = dataclasses.replace(dest, pool=route.pool)
    if not label:
        return dest
    return dataclasses.replace(dest, label=dest.name)
