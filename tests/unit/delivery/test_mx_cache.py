"""The TTL cache behind MxResolver, on a hand-driven clock."""

from __future__ import annotations

from mta.delivery.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_value_lives_for_its_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(clock=clock)
    cache.put("example.com", "mx1", ttl=30)
    clock.now += 29.9
    assert cache.get("example.com") == "mx1"
    clock.now += 0.1
    assert cache.get("example.com") is None
    assert len(cache) == 0


def test_zero_ttl_is_not_cached_and_forgets_an_older_value() -> None:
    cache: TtlCache[str] = TtlCache(clock=Clock())
    cache.put("a", "old", ttl=60)
    cache.put("a", "new", ttl=0)
    assert cache.get("a") is None


def test_oldest_entry_goes_first_when_full() -> None:
    cache: TtlCache[int] = TtlCache(clock=Clock(), max_entries=2)
    cache.put("a", 1, ttl=60)
    cache.put("b", 2, ttl=60)
    cache.put("a", 3, ttl=60)  # refreshed: now the youngest
    cache.put("c", 4, ttl=60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (3, None, 4)
