"""Connection leases on a real redis-server: the limit holds across clients, expired
leases come back, release and extend work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from shaping.leases import Lease, RedisLeases
from shaping.redis_client import make_redis_client
from tests.support.redis_server import RedisServer

CLIENTS = 5
ATTEMPTS_PER_CLIENT = 8
LIMIT = 7


@pytest.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[list[Redis]]:
    """Several independent clients (connection pools), as several nodes would have."""
    made = [make_redis_client(redis_server.url, timeout=5) for _ in range(CLIENTS)]
    yield made
    for client in made:
        await client.aclose()


async def test_limit_holds_under_concurrency_from_several_clients(clients: list[Redis]) -> None:
    stores = [RedisLeases(client, timeout=5) for client in clients]
    attempts = [
        store.acquire("site", LIMIT, 60) for store in stores for _ in range(ATTEMPTS_PER_CLIENT)
    ]
    results = await asyncio.gather(*attempts)
    held = [lease for lease in results if lease is not None]
    assert len(held) == LIMIT
    assert len({lease.token for lease in held}) == LIMIT
    assert all(lease.backend == "redis" for lease in held)
    assert await stores[0].count("site") == LIMIT
    await asyncio.gather(*(stores[1].release(lease) for lease in held[:3]))
    again = await asyncio.gather(*(stores[2].acquire("site", LIMIT, 60) for _ in range(5)))
    assert sum(lease is not None for lease in again) == 3


async def test_expired_leases_are_reclaimed(clients: list[Redis]) -> None:
    node_a, node_b = RedisLeases(clients[0]), RedisLeases(clients[1])
    assert await node_a.acquire("site", 2, 0.5) is not None
    assert await node_a.acquire("site", 2, 0.5) is not None
    assert await node_b.acquire("site", 2, 0.5) is None
    await asyncio.sleep(0.6)  # node A "died" holding both
    assert await node_b.count("site") == 0
    assert await node_b.acquire("site", 2, 60) is not None
    assert await clients[0].zcard("site") == 1  # the dead members were removed


async def test_release_frees_and_extend_keeps(clients: list[Redis]) -> None:
    leases = RedisLeases(clients[0])
    kept = await leases.acquire("site", 2, 0.6)
    dropped = await leases.acquire("site", 2, 0.6)
    assert isinstance(kept, Lease) and isinstance(dropped, Lease)
    await leases.release(dropped)
    await leases.release(dropped)  # harmless twice
    assert await leases.count("site") == 1
    for _ in range(3):
        await asyncio.sleep(0.25)
        assert await leases.extend(kept)
    assert await leases.count("site") == 1  # 0.75 s after acquisition, still held
    assert 0 < await clients[0].pttl("site") <= 600  # the set expires with its last lease
    await asyncio.sleep(0.7)
    assert not await leases.extend(kept)  # it expired: someone else may have the slot
    assert await leases.count("site") == 0
