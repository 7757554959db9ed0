"""Which `[[routes]]` entry a recipient domain takes: first match wins."""

from __future__ import annotations

from collections.abc import Sequence

from mta.config import RouteConfig


def domain_matches(pattern: str, domain: str) -> bool:
    """ "*" matches everything, "*.example.org" any subdomain, anything else exactly."""
    pattern = pattern.lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return domain.endswith(pattern[1:])
    return domain == pattern


def match_route(routes: Sequence[RouteConfig], domain: str) -> RouteConfig | None:
    domain = domain.lower().rstrip(".")
    for route in routes:
        if any(domain_matches(pattern, domain) for pattern in route.domains):
            return route
    return None
