"""Checks of `[egress]` (and the `pool` of `[[routes]]`) at load time; errors name the key."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from mta.config import ConfigError, EgressConfig, EgressPoolConfig, EgressSourceConfig, RouteConfig
from mta.units import parse_hostport

UNSPECIFIED = "unspecified"  # KumoMTA's name for "no egress source": not a source's name
QUEUE_SEPARATOR = "->"  # ready queue names are "source->site"


def validate_egress(egress: EgressConfig, routes: Sequence[RouteConfig] = ()) -> None:
    """Raise ConfigError for the first source, pool or pool reference that cannot work."""
    for name, source in egress.sources.items():
        _source(name, source, f"egress.sources.{name}")
    for name, pool in egress.pools.items():
        _pool(name, pool, egress.sources, f"egress.pools.{name}")
    if egress.default_pool is not None:
        _known_pool(egress, egress.default_pool, "egress.default_pool")
    for tenant, pool_name in egress.tenant_pools.items():
        _known_pool(egress, pool_name, f"egress.tenant_pools.{tenant}")
    for i, route in enumerate(routes):
        if route.pool is not None:
            _route_pool(egress, route, f"routes[{i}].pool")
    if egress.retry_interval <= 0:
        raise ConfigError("egress.retry_interval: must be greater than zero")
    if egress.max_retry_interval < egress.retry_interval:
        raise ConfigError("egress.max_retry_interval: must not be shorter than retry_interval")


def _source(name: str, source: EgressSourceConfig, path: str) -> None:
    if not name or name == UNSPECIFIED or QUEUE_SEPARATOR in name:
        raise ConfigError(f"{path}: a source name must not be empty, {UNSPECIFIED!r} or hold '->'")
    for key in ("source_address", "socks5_source_address"):
        value = getattr(source, key)
        if value is not None:
            _ip(f"{path}.{key}", value)
    if source.ehlo_domain is not None and not source.ehlo_domain.strip():
        raise ConfigError(f"{path}.ehlo_domain: must not be empty")
    if source.socks5_proxy is not None:
        try:
            parse_hostport(source.socks5_proxy)
        except ValueError as exc:
            raise ConfigError(f"{path}.socks5_proxy: {exc}") from None
        if (source.socks5_username is None) != (source.socks5_password_file is None):
            raise ConfigError(f"{path}.socks5_password_file: goes with socks5_username")
        return
    for key in ("socks5_source_address", "socks5_username", "socks5_password_file"):
        if getattr(source, key) is not None:
            raise ConfigError(f"{path}.{key}: needs socks5_proxy")


def _ip(path: str, value: str) -> None:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        raise ConfigError(f"{path}: {value!r} is not an IPv4 or IPv6 address") from None


def _pool(
    name: str, pool: EgressPoolConfig, sources: Mapping[str, EgressSourceConfig], path: str
) -> None:
    if not pool.sources:
        raise ConfigError(f"{path}.sources: a pool needs at least one source")
    seen: set[str] = set()
    for i, entry in enumerate(pool.sources):
        where = f"{path}.sources[{i}]"
        if entry.name not in sources:
            raise ConfigError(f"{where}.name: unknown source {entry.name!r}")
        if entry.name in seen:
            raise ConfigError(f"{where}.name: {entry.name!r} is listed twice")
        seen.add(entry.name)
        if entry.weight < 0:
            raise ConfigError(f"{where}.weight: must not be negative, got {entry.weight}")
    if not any(entry.weight > 0 for entry in pool.sources):
        raise ConfigError(f"{path}.sources: at least one weight must be greater than zero")


def _known_pool(egress: EgressConfig, name: str, path: str) -> None:
    if name not in egress.pools:
        raise ConfigError(f"{path}: unknown pool {name!r}")


def _route_pool(egress: EgressConfig, route: RouteConfig, path: str) -> None:
    assert route.pool is not None
    _known_pool(egress, route.pool, path)
    if route.lmtp is not None or route.discard or route.transport_file is not None:
        raise ConfigError(f"{path}: only mx and relay routes send from egress sources")
