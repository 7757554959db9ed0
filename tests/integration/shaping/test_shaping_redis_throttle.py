"""GCRA on a real redis-server: the Lua script, its agreement with the memory path, and
CL.THROTTLE when a server with redis-cell is available."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from shaping.redis_client import make_redis_client
from shaping.redis_throttle import RedisThrottle
from shaping.spec import ThrottleSpec, parse_throttle_spec
from shaping.throttle import MemoryThrottle, ThrottleResult, storage_key
from tests.support.redis_server import RedisServer

CL_THROTTLE_ENV = "MTA_TEST_CL_THROTTLE_REDIS"
UNIX_NOW = 1_795_360_297.406226  # time values of the size Redis TIME returns


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_server.url)
    yield redis
    await redis.aclose()


async def test_burst_then_throttled_with_redis_time(client: Redis) -> None:
    throttle = RedisThrottle(client)
    spec = parse_throttle_spec("5/min")
    results = [await throttle.check("site", spec) for _ in range(6)]
    assert [r.throttled for r in results] == [False] * 5 + [True]
    assert [r.remaining for r in results[:5]] == [4, 3, 2, 1, 0]
    assert results[5].retry_after == pytest.approx(12, abs=0.5)
    assert results[5].reset_after == pytest.approx(60, abs=0.5)
    assert throttle.uses_cl_throttle is False  # plain redis-server: the Lua script
    key = storage_key("site", spec)
    assert key == "site:5:5:60"
    assert 55 <= await client.ttl(key) <= 60  # EX: gone once the bucket is empty again


async def test_quantity_and_parameters_in_the_key(client: Redis) -> None:
    throttle = RedisThrottle(client, prefix="test:")
    assert not (await throttle.check("k", parse_throttle_spec("10/h"), quantity=10)).throttled
    assert (await throttle.check("k", parse_throttle_spec("10/h"))).throttled
    fresh = await throttle.check("k", parse_throttle_spec("10/h,max_burst=4"))
    assert not fresh.throttled  # a changed rule starts its own bucket
    assert sorted(await client.keys("test:*")) == [b"test:k:10:10:3600", b"test:k:10:4:3600"]


async def test_script_survives_a_server_restart(redis_server: RedisServer) -> None:
    redis = make_redis_client(redis_server.url, timeout=5)
    try:
        throttle = RedisThrottle(redis, timeout=5)
        assert not (await throttle.check("k", parse_throttle_spec("1/h"))).throttled
        redis_server.restart()  # the script cache is empty afterwards
        assert not (await throttle.check("k", parse_throttle_spec("1/h"))).throttled
    finally:
        await redis.aclose()


# Equivalence of the Lua path and the memory path. Redis TIME cannot be injected, so the
# script accepts an optional `now` (used only through RedisThrottle.check_at, by tests) and
# both paths are driven with the same timestamps. Both compute in whole microseconds, so
# every field must agree exactly, not approximately. The times are Unix-sized, as in
# production. Each example uses a fresh key; a Redis key can only expire early (real time)
# if one example ran for more than a second, which these few dozen calls never do.
steps = st.lists(
    st.tuples(
        st.one_of(st.just(0.0), st.floats(0, 5), st.integers(0, 120).map(float)),
        st.integers(1, 4),
    ),
    min_size=1,
    max_size=40,
)
specs = st.builds(
    ThrottleSpec,
    limit=st.integers(1, 50),
    period_seconds=st.sampled_from([1, 60]),
    max_burst=st.integers(1, 10),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(spec=specs, requests=steps, start=st.floats(0, 1000))
def test_lua_and_memory_make_the_same_decisions(
    redis_server: RedisServer, spec: ThrottleSpec, requests: list[tuple[float, int]], start: float
) -> None:
    memory_results, redis_results = asyncio.run(
        _both_paths(redis_server.url, spec, requests, start)
    )
    assert redis_results == memory_results


async def _both_paths(
    url: str, spec: ThrottleSpec, requests: list[tuple[float, int]], start: float
) -> tuple[list[ThrottleResult], list[ThrottleResult]]:
    now = UNIX_NOW + start
    memory = MemoryThrottle(clock=lambda: now)
    redis = Redis.from_url(url)
    lua = RedisThrottle(redis, timeout=5)
    key = uuid.uuid4().hex
    from_memory, from_redis = [], []
    try:
        for gap, quantity in requests:
            now += gap
            from_memory.append(await memory.check(key, spec, quantity))
            from_redis.append(await lua.check_at(key, spec, quantity, now))
    finally:
        await redis.aclose()
    return from_memory, from_redis


async def test_cl_throttle_when_available() -> None:
    address = os.environ.get(CL_THROTTLE_ENV)
    if not address:
        pytest.skip(
            f"{CL_THROTTLE_ENV}=host:port names no server with CL.THROTTLE "
            "(redis-cell is not packaged in Debian; Dragonfly also has the command)"
        )
    host, _, port = address.rpartition(":")
    redis = Redis(host=host, port=int(port))
    try:
        throttle = RedisThrottle(redis, timeout=5, prefix=f"mta-test-{uuid.uuid4().hex}:")
        spec = parse_throttle_spec("5/min")
        results = [await throttle.check("k", spec) for _ in range(6)]
        assert throttle.uses_cl_throttle is True
        assert [r.throttled for r in results] == [False] * 5 + [True]  # same burst as Lua
        assert 10 <= results[5].retry_after <= 13
    finally:
        await redis.aclose()
