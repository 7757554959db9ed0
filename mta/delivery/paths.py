"""The shaping settings of each destination's egress path, resolved once per rules version.

Resolving walks the merged shaping tables (tens of microseconds); a busy site sees thousands
of messages a second, so results are cached per (domain, site) until the rules change.
"""

from __future__ import annotations

import dataclasses

from shaping.options import EgressPathConfig
from shaping.rules import ShapingRules, normalize_host

from .types import Site


class PathCache:
    """Sites with their path settings; invalidated when `rules` reload or learn a site."""

    def __init__(self, rules: ShapingRules) -> None:
        self._rules = rules
        self._generation = -1
        self._bindings: object = None
        self._cache: dict[tuple[str, str, str | None], tuple[str, EgressPathConfig]] = {}

    def shape(self, domain: str, site: Site, *, relay: bool, source: str | None = None) -> Site:
        """`site` with its path settings from egress `source` (its `sources` tables); an MX
        site takes its port from them, and a domain with a table of its own
        (`mx_rollup = false`) gets a site (a ready queue) of its own."""
        domain = normalize_host(domain)
        if not relay:  # a relay's site is every domain routed there, not the domain's own
            self._learn(domain, site)
        name, path = self._resolve(domain, site, source)
        port = site.port if relay else path.smtp_port
        return dataclasses.replace(site, name=name, port=port, tls=path.enable_tls, path=path)

    def _learn(self, domain: str, site: Site) -> None:
        """A domain with an `mx_rollup = true` table applies it to its whole site: remember
        the site name once its MX hosts are known (KumoMTA resolves them the same way)."""
        rules = self._rules.rules
        if domain in rules.sites and rules.site_bindings.get(domain) != site.name:
            self._rules.bind_sites({domain: site.name})

    def _resolve(self, domain: str, site: Site, source: str | None) -> tuple[str, EgressPathConfig]:
        rules = self._rules.rules
        if self._generation != self._rules.generation or self._bindings is not rules.site_bindings:
            self._cache.clear()
            self._generation = self._rules.generation
            self._bindings = rules.site_bindings
        key = (domain, site.name, source)
        found = self._cache.get(key)
        if found is None:
            hosts = [host for group in site.hosts for host in group]
            resolved = rules.resolve(domain, mx_hosts=hosts, source=source, site_name=site.name)
            name = domain if domain in rules.domains else site.name
            found = self._cache[key] = (name, resolved.config)
        return found
