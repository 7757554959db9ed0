"""Keep shaping when Redis is in trouble: fall back to in-process throttles and leases.

A cluster-wide limit enforced by N nodes on their own would allow N times the limit, so
the fallback enforces ``local_share`` of it (typically 1/N). One :class:`RedisHealth`
is meant to be shared by the throttle and lease wrappers of a node: it logs once per state
change on the ``shaping`` logger, counts fallbacks for metrics, and lets one request probe
Redis at most every ``probe_interval`` seconds while in fallback.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Final

from redis.exceptions import RedisError

from .leases import Lease, Leases, MemoryLeases
from .spec import ThrottleSpec
from .throttle import MemoryThrottle, Throttle, ThrottleResult

logger = logging.getLogger("shaping")
Clock = Callable[[], float]

DEFAULT_PROBE_INTERVAL: Final = 5.0  # seconds between attempts to return to Redis
# What "Redis trouble" means: our own per-call timeouts, socket errors, and anything the
# client or server reports (connection loss, READONLY replica, OOM, script errors).
REDIS_TROUBLE: Final = (TimeoutError, OSError, RedisError)
# Upper bounds (seconds) of the Redis call latency buckets: a healthy Redis answers in well
# under a millisecond on a LAN; the top buckets meet the per-call timeouts.
REDIS_LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class RedisCalls:
    """Plain counts of Redis calls for a metrics collector to read (shaping imports no
    metrics library): calls, failed calls, and a latency histogram (`buckets[i]` counts the
    calls of at most `REDIS_LATENCY_BUCKETS[i]` seconds; the last counts the slower ones)."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(REDIS_LATENCY_BUCKETS) + 1)

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Count the call made inside, and whether it met Redis trouble."""
        started = time.perf_counter()
        try:
            yield
        except REDIS_TROUBLE:
            self.errors += 1
            raise
        finally:
            self._observe(time.perf_counter() - started)

    def _observe(self, seconds: float) -> None:
        self.calls += 1
        self.seconds += seconds
        index = next((i for i, b in enumerate(REDIS_LATENCY_BUCKETS) if seconds <= b), -1)
        self.buckets[index] += 1


class Route(enum.Enum):
    """Where one call goes: Redis (healthy), a probe of Redis (in fallback), or memory."""

    REDIS = "redis"
    PROBE = "probe"
    MEMORY = "memory"


class RedisHealth:
    """Whether Redis is in use, with probe pacing; pure state plus logging."""

    def __init__(
        self,
        *,
        local_share: float,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        clock: Clock = time.monotonic,
    ) -> None:
        if not 0 < local_share <= 1:
            raise ValueError(f"local_share must be in (0, 1], got {local_share}")
        self.local_share = local_share
        self.probe_interval = probe_interval
        self.using_redis = True
        self.fallbacks = 0  # switches from Redis to memory, for metrics
        self.calls = RedisCalls()  # every call made to Redis, for metrics
        self._clock = clock
        self._next_probe = 0.0

    def route(self) -> Route:
        """Where the next call should go. Claims the probe slot, so that of many
        concurrent callers only one waits on a Redis that may still be down."""
        if self.using_redis:
            return Route.REDIS
        now = self._clock()
        if now < self._next_probe:
            return Route.MEMORY
        self._next_probe = now + self.probe_interval
        return Route.PROBE

    def succeeded(self, route: Route) -> None:
        # Only a probe brings Redis back: a call that started before the failure and
        # finished after it says nothing about now.
        if route is Route.PROBE and not self.using_redis:
            self.using_redis = True
            logger.warning("Redis is reachable again: shared throttles and leases resumed")

    def failed(self, route: Route, error: BaseException) -> None:
        """Report Redis trouble seen on ``route`` (use REDIS for calls made outside
        :meth:`route`, such as extending or releasing a Redis lease)."""
        if route is Route.PROBE:
            self._next_probe = self._clock() + self.probe_interval
        elif self.using_redis:
            self.using_redis = False
            self.fallbacks += 1
            self._next_probe = self._clock() + self.probe_interval
            logger.warning(
                "Redis unavailable (%s): shaping falls back to this node's share (%.3g) "
                "of each limit, in memory; next probe in %gs",
                describe(error),
                self.local_share,
                self.probe_interval,
            )


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def scaled_limit(limit: int, share: float) -> int:
    """A node's part of a cluster-wide connection limit: at least one, so mail flows."""
    return max(1, math.floor(limit * share)) if limit > 0 else 0


class ResilientThrottle:
    """A :class:`Throttle` that uses ``redis`` while it answers and a memory throttle with
    ``health.local_share`` of each limit while it does not."""

    def __init__(
        self, redis: Throttle, health: RedisHealth, *, clock: Clock = time.monotonic
    ) -> None:
        self._redis = redis
        self.health = health
        self.memory = MemoryThrottle(clock=clock, share=health.local_share)

    async def check(self, key: str, spec: ThrottleSpec, quantity: int = 1) -> ThrottleResult:
        route = self.health.route()
        if route is not Route.MEMORY:
            try:
                with self.health.calls.timed():
                    result = await self._redis.check(key, spec, quantity)
            except REDIS_TROUBLE as error:
                self.health.failed(route, error)
            else:
                self.health.succeeded(route)
                return result
        return await self.memory.check(key, spec, quantity)


class ResilientLeases:
    """:class:`Leases` on ``redis`` with a memory fallback holding ``local_share`` of each
    limit. A lease is extended and released where it was acquired (``Lease.backend``)."""

    def __init__(
        self, redis: Leases, health: RedisHealth, *, clock: Clock = time.monotonic
    ) -> None:
        self._redis = redis
        self.health = health
        self.memory = MemoryLeases(clock=clock)

    async def acquire(self, key: str, limit: int, ttl: float) -> Lease | None:
        route = self.health.route()
        if route is not Route.MEMORY:
            try:
                with self.health.calls.timed():
                    lease = await self._redis.acquire(key, limit, ttl)
            except REDIS_TROUBLE as error:
                self.health.failed(route, error)
            else:
                self.health.succeeded(route)
                return lease
        return await self.memory.acquire(key, scaled_limit(limit, self.health.local_share), ttl)

    async def extend(self, lease: Lease) -> bool:
        if lease.backend == "memory":
            return await self.memory.extend(lease)
        try:
            with self.health.calls.timed():
                return await self._redis.extend(lease)
        except REDIS_TROUBLE as error:
            # Keep the connection: dropping it would stop mail, and the lease simply
            # expires in Redis if we never get to extend it again.
            self.health.failed(Route.REDIS, error)
            return True

    async def release(self, lease: Lease) -> None:
        if lease.backend == "memory":
            await self.memory.release(lease)
            return
        try:
            with self.health.calls.timed():
                await self._redis.release(lease)
        except REDIS_TROUBLE as error:  # it expires after its ttl
            self.health.failed(Route.REDIS, error)

    async def count(self, key: str) -> int:
        """Held leases on ``key`` in the store currently in use."""
        if self.health.using_redis:
            try:
                with self.health.calls.timed():
                    return await self._redis.count(key)
            except REDIS_TROUBLE as error:
                self.health.failed(Route.REDIS, error)
        return await self.memory.count(key)
