"""Connection leases in memory: the limit holds, release frees, expiry reclaims."""

from __future__ import annotations

import pytest

from shaping.leases import MemoryLeases


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_limit_is_respected_and_release_frees(clock: FakeClock) -> None:
    leases = MemoryLeases(clock=clock)
    held = [await leases.acquire("site", 3, 60) for _ in range(3)]
    assert all(lease is not None for lease in held)
    assert await leases.acquire("site", 3, 60) is None
    assert await leases.count("site") == 3
    first = held[0]
    assert first is not None
    await leases.release(first)
    await leases.release(first)  # twice is harmless
    assert await leases.count("site") == 2
    assert await leases.acquire("site", 3, 60) is not None


async def test_expired_leases_are_reclaimed(clock: FakeClock) -> None:
    leases = MemoryLeases(clock=clock)
    assert await leases.acquire("site", 1, 10) is not None
    clock.now += 9.9
    assert await leases.acquire("site", 1, 10) is None
    clock.now += 0.1  # the holder died without releasing: its slot comes back
    assert await leases.acquire("site", 1, 10) is not None


async def test_extend_keeps_a_lease_alive(clock: FakeClock) -> None:
    leases = MemoryLeases(clock=clock)
    lease = await leases.acquire("site", 1, 10)
    assert lease is not None
    for _ in range(5):
        clock.now += 8
        assert await leases.extend(lease)
    assert await leases.acquire("site", 1, 10) is None
    clock.now += 10
    assert not await leases.extend(lease)  # too late: it expired
    assert await leases.count("site") == 0


async def test_keys_and_limits_are_independent(clock: FakeClock) -> None:
    leases = MemoryLeases(clock=clock)
    assert await leases.acquire("a", 1, 10) is not None
    assert await leases.acquire("b", 1, 10) is not None
    assert await leases.acquire("a", 2, 10) is not None  # the caller's limit counts
    assert await leases.acquire("z", 0, 10) is None  # limit 0: no connections at all


async def test_bad_arguments(clock: FakeClock) -> None:
    leases = MemoryLeases(clock=clock)
    with pytest.raises(ValueError, match="ttl"):
        await leases.acquire("a", 1, 0)
    with pytest.raises(ValueError, match="limit"):
        await leases.acquire("a", -1, 1)
