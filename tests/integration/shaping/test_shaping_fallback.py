"""Redis goes away mid-run: decisions continue from memory with this node's share of each
limit, one log line per state change, and Redis is used again once it is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from shaping.fallback import RedisHealth, ResilientLeases, ResilientThrottle
from shaping.leases import RedisLeases
from shaping.redis_client import make_redis_client
from shaping.redis_throttle import RedisThrottle
from shaping.spec import parse_throttle_spec
from tests.support.redis_server import RedisServer

TIMEOUT = 0.25
PROBE_INTERVAL = 0.3
CLIENT_TIMEOUT = 30.0
SHARE = 0.5
SPEC = parse_throttle_spec("10/min")  # slow refill: counts below are exact


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    redis = make_redis_client(redis_server.url, timeout=TIMEOUT)
    yield redis
    await redis.aclose()


def make_pair(client: Redis) -> tuple[ResilientThrottle, ResilientLeases, RedisHealth]:
    health = RedisHealth(local_share=SHARE, probe_interval=PROBE_INTERVAL)
    throttle = ResilientThrottle(RedisThrottle(client, timeout=TIMEOUT), health)
    leases = ResilientLeases(RedisLeases(client, timeout=TIMEOUT), health)
    return throttle, leases, health


async def allowed(throttle: ResilientThrottle, key: str, tries: int) -> int:
    results = [await throttle.check(key, SPEC) for _ in range(tries)]
    return sum(not result.throttled for result in results)


def state_changes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The fallback's log lines: warnings on the ``shaping`` logger."""
    records = caplog.records
    return [r.getMessage() for r in records if r.name == "shaping" and r.levelno >= logging.WARNING]


async def test_killed_redis_falls_back_and_recovers(
    client: Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shaping")
    throttle, leases, health = make_pair(client)
    assert await allowed(throttle, "site", 3) == 3
    lease = await leases.acquire("conn", 4, 60)
    assert lease is not None and lease.backend == "redis"

    redis_server.kill()
    # The cluster allows 10 at once; alone, this node takes its share: 5, all from memory.
    assert await allowed(throttle, "site", 8) == 5
    assert (health.using_redis, health.fallbacks) == (False, 1)
    local = [await leases.acquire("conn", 4, 60) for _ in range(3)]
    assert [x.backend if x else None for x in local] == ["memory", "memory", None]
    assert await leases.extend(lease)  # a Redis lease is kept while Redis is away
    await leases.release(lease)  # and its release is no error (it expires in Redis)
    assert len(state_changes(caplog)) == 1

    redis_server.start()  # same port, empty data
    await asyncio.sleep(PROBE_INTERVAL + 0.05)
    assert await allowed(throttle, "site", 12) == 10  # Redis again, a fresh bucket there
    assert (health.using_redis, health.fallbacks) == (True, 1)
    back = await leases.acquire("conn", 4, 60)
    assert back is not None and back.backend == "redis"
    for memory_lease in local:
        if memory_lease is not None:
            assert await leases.extend(memory_lease)  # still tracked where it was taken
            await leases.release(memory_lease)
    messages = state_changes(caplog)
    assert len(messages) == 2, messages
    assert "Redis unavailable" in messages[0] and "(0.5)" in messages[0]
    assert "reachable again" in messages[1]


async def test_hung_redis_times_out_into_the_fallback(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shaping")
    # The client would wait CLIENT_TIMEOUT on a hung server; the shaping calls must not.
    client = Redis.from_url(
        redis_server.url, socket_timeout=CLIENT_TIMEOUT, socket_connect_timeout=CLIENT_TIMEOUT
    )
    throttle, leases, health = make_pair(client)
    try:
        assert await allowed(throttle, "site", 1) == 1
        redis_server.pause()  # keeps its sockets, answers nothing
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await allowed(throttle, "site", 6) == 5
            assert await leases.acquire("conn", 2, 60) is not None
            assert loop.time() - started < CLIENT_TIMEOUT  # our own timeout cut it short
            assert (health.using_redis, health.fallbacks) == (False, 1)
        finally:
            redis_server.resume()
        await asyncio.sleep(PROBE_INTERVAL + 0.05)
        assert not (await throttle.check("site", SPEC)).throttled
        assert health.using_redis
        assert len(state_changes(caplog)) == 2
    finally:
        await client.aclose()
