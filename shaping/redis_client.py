"""A Redis client configured for shaping: short timeouts and one quick reconnect."""

from __future__ import annotations

from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .redis_throttle import DEFAULT_REDIS_TIMEOUT

# One immediate retry: a pooled connection that went stale (Redis restarted, an idle
# connection dropped by a proxy) should cost a reconnect, not a switch to the fallback.
RECONNECT_RETRIES: Final = 1


def make_redis_client(
    url: str, *, timeout: float = DEFAULT_REDIS_TIMEOUT, cluster: bool = False, **options: Any
) -> Redis | RedisCluster:
    """A ``redis.asyncio.Redis`` (or ``RedisCluster``) for :class:`RedisThrottle` and
    :class:`RedisLeases`.

    ``url`` is a redis:// or rediss:// URL (redis-py's ``from_url`` syntax); ``options`` are
    more ``from_url`` keywords (username, password, TLS settings).
    """
    options.update(
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), RECONNECT_RETRIES),
    )
    if cluster:
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, retry_on_error=[RedisConnectionError, RedisTimeoutError], **options)
