"""Throttles and connection leases for a node: in memory (the embedded default), or shared
through Redis (`[redis] url`), falling back to a share of each limit while Redis is away."""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from mta.config import ConfigError, RedisConfig
from shaping.fallback import RedisHealth, ResilientLeases, ResilientThrottle
from shaping.gate import Shaper
from shaping.leases import MemoryLeases, RedisLeases
from shaping.redis_client import make_redis_client
from shaping.redis_throttle import RedisThrottle
from shaping.throttle import MemoryThrottle


@dataclasses.dataclass
class NodeLimits:
    """The shaper the delivery engine asks, and what backs it (for metrics and shutdown)."""

    shaper: Shaper
    health: RedisHealth | None = None
    client: Any = None  # Redis | RedisCluster when configured

    @property
    def using_redis(self) -> bool:
        return self.health is not None and self.health.using_redis

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def build_limits(config: RedisConfig) -> NodeLimits:
    """Memory throttles and leases, or Resilient* ones over the configured Redis."""
    if config.url is None:
        return NodeLimits(Shaper(MemoryThrottle(), MemoryLeases()))
    client = redis_client(config)
    health = RedisHealth(local_share=config.local_share, probe_interval=config.probe_interval)
    redis = cast(Redis, client)  # the cluster client serves the same commands and scripts
    throttle = ResilientThrottle(RedisThrottle(redis, timeout=config.timeout), health)
    leases = ResilientLeases(RedisLeases(redis, timeout=config.timeout), health)
    return NodeLimits(Shaper(throttle, leases), health, client)


def redis_client(config: RedisConfig) -> Redis | RedisCluster:
    """The shaping client (short timeouts, one quick reconnect) with the operator's
    credentials and TLS settings."""
    assert config.url is not None
    options: dict[str, Any] = {}
    if config.username is not None:
        options["username"] = config.username
    password = redis_password(config)
    if password is not None:
        options["password"] = password
    if config.tls_ca_file is not None:
        options["ssl_ca_certs"] = str(config.tls_ca_file)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return make_redis_client(config.url, timeout=config.timeout, cluster=config.cluster, **options)


def redis_password(config: RedisConfig) -> str | None:
    """`password_file` (a mounted Secret: first line, whitespace stripped) over `password`."""
    if config.password_file is None:
        return config.password
    try:
        return config.password_file.read_text().strip()
    except OSError as error:
        raise ConfigError(
            f"redis.password_file: cannot read {config.password_file}: {error}"
        ) from None
