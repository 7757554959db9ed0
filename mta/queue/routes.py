"""Which `[[routes]]` entry a recipient domain takes by its domain alone: first match wins.

Routes that also match by address, regex, tenant or a transport map are left out: they are
decided per recipient by `mta.routing.Router` (the queue and the accept path use it).
"""

from __future__ import annotations

from collections.abc import Sequence

from mta.config import RouteConfig
from mta.routing.router import domain_matches

__all__ = ["domain_matches", "match_route"]


def _by_domain_only(route: RouteConfig) -> bool:
    return not (route.addresses or route.regex or route.tenant or route.transport_file)


def match_route(routes: Sequence[RouteConfig], domain: str) -> RouteConfig | None:
    """The first route whose domain patterns match `domain` and that asks nothing more."""
    domain = domain.lower().rstrip(".")
    for route in routes:
        if _by_domain_only(route) and any(domain_matches(p, domain) for p in route.domains):
            return route
    return None
