"""Shaping rules: files merged in order, and the effective egress path for a destination.

Resolution follows KumoMTA's order; each step merges over the previous one:

1. ``["default"]`` (then its ``sources`` table for the source, an extension of ours);
2. every matching ``[provider."x"]`` (with its implied provider limits), then their
   source tables;
3. the MX-rollup domain tables of the destination's site (``mx_rollup = true``, the
   default): the domain's own table, and tables of domains bound to the same site name
   through :meth:`Rules.with_sites`;
4. the domain's ``mx_rollup = false`` table;
5. source tables of 3, then of 4.

A table with ``replace_base = true`` discards what was accumulated before it (and, across
files, the earlier definitions of the same table). ``additional_*`` maps merge entry by
entry. Every value remembers the file and table that set it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Final

from .automation import AutomationRule
from .durations import format_duration
from .loader import (
    Block,
    Origin,
    ProviderBlock,
    Setting,
    Settings,
    ShapingError,
    ShapingFile,
    read_file,
)
from .merge import merge_files
from .options import EgressPathConfig, build_config, map_key
from .spec import ThrottleSpec

logger = logging.getLogger("shaping")

DEFAULT_SOURCE: Final = "unspecified"  # KumoMTA's name for the egress source when none is set
DEFAULT_SHAPING_FILE: Final = Path(__file__).with_name("default_shaping.toml")
BUILT_IN: Final = "built-in default"
RuleAt = tuple[AutomationRule, Origin]
Source = str | Path | ShapingFile  # a shaping file to read, or one parsed already


def normalize_host(name: str) -> str:
    return name.strip().rstrip(".").lower()


def site_name_for(mx_hosts: Iterable[str]) -> str:
    """The MX rollup name: every host, sorted, joined with "|" (the delivery engine's
    spelling, so that a site name computed here and there agree)."""
    return "|".join(sorted({normalize_host(h) for h in mx_hosts if normalize_host(h)}))


@dataclasses.dataclass(frozen=True)
class Resolved:
    """The effective settings of one egress path and where each came from.

    ``provenance`` maps option names (map entries as ``option.entry``) to the table that
    set them; options absent from it have their built-in default.
    """

    domain: str
    source: str | None
    site_name: str
    config: EgressPathConfig
    provenance: Mapping[str, Origin]
    providers: tuple[str, ...]
    automation: tuple[RuleAt, ...]

    def origin(self, option: str) -> Origin | None:
        return self.provenance.get(option)

    def explain(self) -> list[str]:
        """TOML-style lines ``option = value  # file [table]`` for every option."""
        lines = []
        for field in dataclasses.fields(self.config):
            value = getattr(self.config, field.name)
            if isinstance(value, Mapping):
                for entry, item in value.items():
                    lines.append(self._line(map_key(field.name, entry), item))
            elif value is not None:
                lines.append(self._line(field.name, value))
        return lines

    def _line(self, key: str, value: object) -> str:
        origin = self.provenance.get(key)
        return f"{key} = {_toml_value(key, value)}  # {origin if origin else BUILT_IN}"


def _toml_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and key.endswith("_timeout"):
        return f'"{format_duration(value)}"'
    if isinstance(value, ThrottleSpec | str):
        return f'"{value}"'
    return str(value)


@dataclasses.dataclass(frozen=True)
class Rules:
    """Merged shaping files: immutable, and cheap to resolve against (no I/O)."""

    sources: tuple[Source, ...]
    default: Block | None
    sites: Mapping[str, Block]  # mx_rollup = true tables, by domain
    domains: Mapping[str, Block]  # mx_rollup = false tables, by domain
    providers: Mapping[str, ProviderBlock]
    warnings: tuple[str, ...] = ()
    site_bindings: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, files: Sequence[Source]) -> Rules:
        """Read and merge ``files`` in order (later files win); raises ShapingError.

        An entry is a path, or a :class:`ShapingFile` already parsed (from text that is not
        a file: the node's own settings, a TSA's overrides); only paths are re-read on reload.
        """
        merged = merge_files([f if isinstance(f, ShapingFile) else read_file(f) for f in files])
        return cls(
            sources=tuple(files),
            default=merged.default,
            sites=MappingProxyType(merged.sites),
            domains=MappingProxyType(merged.domains),
            providers=MappingProxyType(merged.providers),
            warnings=tuple(merged.warnings),
        )

    @property
    def files(self) -> tuple[str, ...]:
        """Where each layer came from, in merge order."""
        return tuple(f.path if isinstance(f, ShapingFile) else str(f) for f in self.sources)

    @property
    def rollup_domains(self) -> tuple[str, ...]:
        """Domains whose tables apply to their whole site; resolve their MX hosts and
        pass the site names to :meth:`with_sites`."""
        return tuple(self.sites)

    def with_sites(self, bindings: Mapping[str, str]) -> Rules:
        """A copy where each rollup domain in ``bindings`` (domain -> site name) also
        applies to every other domain on that site."""
        known = {d: s for d, s in bindings.items() if normalize_host(d) in self.sites}
        merged = {**self.site_bindings, **{normalize_host(d): s for d, s in known.items()}}
        return dataclasses.replace(self, site_bindings=MappingProxyType(merged))

    def resolve(
        self,
        domain: str,
        *,
        mx_hosts: Iterable[str] = (),
        source: str | None = None,
        site_name: str | None = None,
    ) -> Resolved:
        """The effective egress path for ``domain`` (MX host names ``mx_hosts``) from
        ``source``; ``site_name`` defaults to :func:`site_name_for` of the hosts."""
        domain = normalize_host(domain)
        hosts = tuple(h for h in (normalize_host(h) for h in mx_hosts) if h)
        site = site_name if site_name is not None else site_name_for(hosts)
        providers = [p for p in self.providers.values() if provider_matches(p, domain, hosts)]
        sites = [b for d, b in self.sites.items() if d == domain or self._on_site(d, site)]
        own = self.domains.get(domain)
        acc = _Accumulator(source)
        acc.run(self.default, providers, sites, own)
        return Resolved(
            domain=domain,
            source=source,
            site_name=site,
            config=build_config({k: s.value for k, s in acc.settings.items()}),
            provenance=MappingProxyType({k: s.origin for k, s in acc.settings.items()}),
            providers=tuple(p.name for p in providers),
            automation=tuple(acc.automation),
        )

    def _on_site(self, rollup_domain: str, site: str) -> bool:
        return bool(site) and self.site_bindings.get(rollup_domain) == site


def provider_matches(provider: ProviderBlock, domain: str, hosts: Sequence[str]) -> bool:
    """KumoMTA's rule: any DomainSuffix matching the domain, or else every MX host
    matching one of the MXSuffix/HostName entries (so a vanity domain that mixes
    providers matches none of them)."""
    by_mx = [m for m in provider.matches if m.kind != "DomainSuffix"]
    if any(m.kind == "DomainSuffix" and domain.endswith(m.value) for m in provider.matches):
        return True
    if not by_mx or not hosts:
        return False
    return all(any(_host_matches(host, m.kind, m.value) for m in by_mx) for host in hosts)


def _host_matches(host: str, kind: str, value: str) -> bool:
    return host == value if kind == "HostName" else host.endswith(value)


class _Accumulator:
    """Settings merged step by step, in resolution order."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.settings: Settings = {}
        self.automation: list[RuleAt] = []

    def run(
        self,
        default: Block | None,
        providers: Sequence[ProviderBlock],
        sites: Sequence[Block],
        own: Block | None,
    ) -> None:
        if default is not None:
            self.block(default)
            self.source_of(default)
        for provider in providers:
            self.block(provider)
            self.provider_limits(provider)
        for provider in providers:
            self.source_of(provider)
            self.provider_limits(provider)
        for block in [*sites, *([own] if own else [])]:
            self.block(block)
        for block in [*sites, *([own] if own else [])]:
            self.source_of(block)

    def block(self, block: Block) -> None:
        if block.replace_base:
            self.settings.clear()
        self.settings.update(block.options)
        self.automation.extend(block.automation)

    def source_of(self, block: Block) -> None:
        if self.source is not None:
            self.settings.update(block.sources.get(self.source, {}))

    def provider_limits(self, provider: ProviderBlock) -> None:
        """The implied options of a provider: its name, and its provider-wide limits as
        named limits shared by every site it matches (KumoMTA's key names)."""
        prefix = f"shaping-provider-{provider.name}-{self.source or DEFAULT_SOURCE}"
        self.settings["provider_name"] = Setting(provider.name, provider.origin)
        if provider.connection_limit is not None:
            key = map_key("additional_connection_limits", f"{prefix}-limit")
            self.settings[key] = provider.connection_limit
        if provider.max_message_rate is not None:
            key = map_key("additional_message_rate_throttles", f"{prefix}-rate")
            self.settings[key] = provider.max_message_rate


class ShapingRules:
    """The live rules of a node: reloadable, keeping the last good rules on failure."""

    def __init__(self, rules: Rules) -> None:
        self._rules = rules
        self.generation = 1  # bumped on every successful reload; cached paths compare it
        self.last_error: ShapingError | None = None

    @classmethod
    def load(cls, files: Sequence[Source]) -> ShapingRules:
        """Load ``files`` (raises ShapingError: at startup there is nothing to keep)."""
        rules = Rules.load(files)
        _log_warnings(rules)
        return cls(rules)

    @property
    def rules(self) -> Rules:
        return self._rules

    def reload(self, files: Sequence[Source] | None = None) -> ShapingError | None:
        """Load ``files`` (default: the current list) and switch to them; on error keep
        the current rules, log, and return the error."""
        try:
            rules = Rules.load(self._rules.sources if files is None else files)
        except ShapingError as error:
            self.last_error = error
            logger.error("shaping rules not reloaded, keeping the previous ones: %s", error)
            return error
        self._rules = rules.with_sites(self._rules.site_bindings)
        self.generation += 1
        self.last_error = None
        _log_warnings(rules)
        return None

    def bind_sites(self, bindings: Mapping[str, str]) -> None:
        """Record site names of rollup domains (domain -> site name); kept on reload."""
        self._rules = self._rules.with_sites(bindings)

    def resolve(
        self,
        domain: str,
        *,
        mx_hosts: Iterable[str] = (),
        source: str | None = None,
        site_name: str | None = None,
    ) -> Resolved:
        return self._rules.resolve(domain, mx_hosts=mx_hosts, source=source, site_name=site_name)


def _log_warnings(rules: Rules) -> None:
    for warning in rules.warnings:
        logger.warning("%s", warning)
