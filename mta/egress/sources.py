"""Egress sources and weighted pools (KumoMTA's `make_egress_source` / `make_egress_pool`).

A source is where a connection comes from: a local address to bind, an EHLO name, or a SOCKS5
proxy that owns the public address. A pool lists sources with weights. Each leg's attempt picks
a pool (the route's `pool`, else the tenant's in `tenant_pools`, else `default_pool`; none: the
kernel's choice, source "unspecified", as without `[egress]`), then one of its sources, at
random by weight; the leg then waits in the ready queue `source->site`, whose shaping is
resolved with the source (`["domain".sources."name"]` tables), so limits hold per source and
site.

Health: a source whose proxy cannot be reached (or whose address is not on this machine) is
unavailable. New legs go to the pool's other sources; a pool with none left keeps its legs in
their scheduled queues (nothing is bounced) until a source may be tried again. It is tried
again after `retry_interval`, doubling up to `max_retry_interval`: the first leg to pick it
then is the probe, and its connection decides. Each change of state is logged once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from mta.config import EgressConfig, EgressSourceConfig
from mta.delivery.settings import Connector

from .socks import socks5_connector

logger = logging.getLogger(__name__)

MIN_WAIT: Final = 0.5  # seconds: a leg waiting for its pool is not re-examined more often


@dataclass(frozen=True, slots=True)
class EgressSource:
    """What a session from this source needs."""

    name: str
    source_address: str | None
    ehlo_domain: str | None
    connector: Connector | None  # through the SOCKS5 proxy; None: connect directly

    @classmethod
    def from_config(cls, name: str, config: EgressSourceConfig) -> EgressSource:
        address = config.source_address.strip("[]") if config.source_address else None
        if config.socks5_proxy is None:
            return cls(name, address, config.ehlo_domain, None)
        # Through a proxy, `source_address` is bound for the connection to the proxy.
        return cls(name, None, config.ehlo_domain, socks5_connector(config))


@dataclass(slots=True)
class _Health:
    healthy: bool = True
    reason: str = ""
    failures: int = 0  # consecutive failed tries while unavailable
    retry_at: float = 0.0  # when the source may be tried again (monotonic seconds)
    probing: bool = False  # a leg was given the source to try it again


class EgressSources:
    """The configured sources and pools, their health, and the choice for each leg."""

    def __init__(
        self,
        config: EgressConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._rng = rng or random.Random()
        self._clock = clock
        self._sources = {
            name: EgressSource.from_config(name, source) for name, source in config.sources.items()
        }
        self._health = {name: _Health() for name in config.sources}
        self._pools = {
            name: tuple((entry.name, entry.weight) for entry in pool.sources if entry.weight > 0)
            for name, pool in config.pools.items()
        }

    def pool_for(self, route_pool: str | None, tenant: str | None) -> str | None:
        """The pool of a leg: its route's, else its tenant's, else the default (or None)."""
        if route_pool is not None:
            return route_pool
        if tenant is not None and tenant in self._config.tenant_pools:
            return self._config.tenant_pools[tenant]
        return self._config.default_pool

    def choose(self, pool: str) -> str | None:
        """A source of `pool` for one leg's attempt, at random by weight among the available
        ones and those due for another try (which then count as tried, so one leg probes);
        None when none may be used now (`retry_after` says for how long)."""
        now = self._clock()
        candidates = [(n, w) for n, w in self._pools[pool] if self._usable(n, now)]
        if not candidates:
            return None
        names = [name for name, _ in candidates]
        name: str = self._rng.choices(names, weights=[weight for _, weight in candidates])[0]
        health = self._health[name]
        if not health.healthy:  # the probe: others wait for its outcome or the next retry
            health.probing = True
            health.retry_at = now + self._backoff(health.failures)
        return name

    def retry_after(self, pool: str) -> float:
        """Seconds until a source of `pool` may be tried again."""
        now = self._clock()
        soonest = min(self._health[name].retry_at for name, _ in self._pools[pool])
        return max(MIN_WAIT, soonest - now)

    def source(self, name: str) -> EgressSource:
        return self._sources[name]

    def healthy(self) -> Mapping[str, bool]:
        """Every source by name: True while it is available (for metrics)."""
        return {name: health.healthy for name, health in self._health.items()}

    def failed(self, name: str, reason: str) -> None:
        """A connection from `name` failed for the source's own fault (its proxy is down)."""
        health = self._health[name]
        if health.healthy or health.probing:  # legs bound before the failure do not count
            health.failures += 1
            health.retry_at = self._clock() + self._backoff(health.failures)
        if health.healthy:
            wait = self._backoff(health.failures)
            logger.warning(
                "egress source %s unavailable: %s; next try in %.0fs", name, reason, wait
            )
        health.healthy, health.probing, health.reason = False, False, reason

    def succeeded(self, name: str) -> None:
        """A connection from `name` worked: the source is available (again)."""
        health = self._health[name]
        if not health.healthy:
            logger.warning("egress source %s is available again", name)
            self._health[name] = _Health()

    def _usable(self, name: str, now: float) -> bool:
        health = self._health[name]
        return health.healthy or health.retry_at <= now

    def _backoff(self, failures: int) -> float:
        first, most = self._config.retry_interval, self._config.max_retry_interval
        return float(min(most, first * 2 ** max(0, failures - 1)))
