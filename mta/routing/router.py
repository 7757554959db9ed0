"""The router: a recipient (and the message's tenant) to its route's destination."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mta.config import RouteConfig
from mta.replies import Reply

from .destination import MX, Destination, Rejected, route_destination
from .transport_map import NO_ENTRY, TransportMap

# RFC 3463 5.1.1: bad destination mailbox address. Said at RCPT, so no bounce is ever sent.
S550_NO_SUCH_USER = Reply(550, "5.1.1", "Recipient address rejected: no such list or user")
ROUTING_SEPARATOR = "!"  # KumoMTA's `domain!routing_domain`


def domain_matches(pattern: str, domain: str) -> bool:
    """ "*" matches everything, "*.example.org" any subdomain, anything else exactly."""
    pattern = pattern.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return domain.endswith(pattern[1:])
    return domain == pattern


@dataclass(frozen=True)
class _Route:
    """One `[[routes]]` entry, compiled."""

    config: RouteConfig
    addresses: frozenset[str]
    regex: re.Pattern[str] | None
    transport_map: TransportMap | None
    destination: Destination

    @classmethod
    def build(cls, route: RouteConfig, clock: Callable[[], float]) -> _Route:
        regex = None if route.regex is None else re.compile(route.regex, re.IGNORECASE)
        by_address = bool(route.addresses) or regex is not None
        transport_map = None
        if route.transport_file is not None:
            transport_map = TransportMap(route.transport_file, route.format, clock=clock)
            transport_map.refresh(force=True)
        addresses = frozenset(address.lower() for address in route.addresses)
        destination = route_destination(route, label=by_address)
        return cls(route, addresses, regex, transport_map, destination)

    def matches(self, address: str, domain: str, tenant: str | None) -> bool:
        route = self.config
        return (
            (route.tenant is None or route.tenant == tenant)
            and any(domain_matches(pattern, domain) for pattern in route.domains)
            and (not self.addresses or address in self.addresses)
            and (self.regex is None or self.regex.search(address) is not None)
        )

    def decide(
        self, address: str, domain: str, tenant: str | None
    ) -> Destination | Rejected | None:
        """This route's answer for the recipient; None: not this route, try the next."""
        if not self.matches(address, domain, tenant):
            return None
        if self.transport_map is None:
            return self.destination
        answer = self.transport_map.lookup(address, domain)
        if answer == NO_ENTRY:
            return Rejected(S550_NO_SUCH_USER)
        return answer if isinstance(answer, Destination) else None


class Router:
    """Routes recipients by `[[routes]]`, first match wins; no match means MX."""

    def __init__(
        self, routes: Sequence[RouteConfig], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._routes = tuple(_Route.build(route, clock) for route in routes)

    def decide(self, recipient: str, domain: str, tenant: str | None) -> Destination | Rejected:
        """The destination of `recipient` (its `domain` as the queue spells it: lowercase,
        the node's own domain for a bare local part)."""
        address = recipient.lower()
        for route in self._routes:
            answer = route.decide(address, domain, tenant)
            if answer is not None:
                return answer
        return MX

    def recipient_problem(self, recipient: str, domain: str, tenant: str | None) -> Reply | None:
        """550 5.1.1 for a recipient of a transport-map domain that matches no entry."""
        answer = self.decide(recipient, domain, tenant)
        return answer.reply if isinstance(answer, Rejected) else None

    def leg_key(self, recipient: str, domain: str, tenant: str | None) -> str:
        """The key of the leg the recipient belongs in: its domain, plus "!routing-key" when
        its route depends on more than the domain."""
        answer = self.decide(recipient, domain, tenant)
        if isinstance(answer, Rejected) or not answer.label:
            return domain  # a refusal after RCPT (the map changed): bounced when bound
        return f"{domain}{ROUTING_SEPARATOR}{answer.label}"


def leg_domain(leg_key: str) -> str:
    """The recipient domain of a leg key ("example.com!lmtp:..." -> "example.com")."""
    return leg_key.partition(ROUTING_SEPARATOR)[0]
