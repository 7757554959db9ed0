"""`[[queue.rates]]`: which scheduled queues a rate applies to, and its bucket per queue."""

from __future__ import annotations

import pytest

from mta.config import ConfigError, QueueRateConfig, config_from_mapping
from mta.queue.rates import QueueRates
from shaping.throttle import MemoryThrottle
from tests.support.tsa import FakeClock


def rates(clock: FakeClock) -> QueueRates:
    entries = [
        QueueRateConfig(max_message_rate="1/m", tenant="acme", campaign="spring"),
        QueueRateConfig(max_message_rate="2/m", tenant="acme", domain="*.example.com"),
    ]
    return QueueRates(entries, MemoryThrottle(clock=clock))


def test_first_matching_entry_decides() -> None:
    chosen = rates(FakeClock())
    spec = chosen.spec_for("spring:acme@x.org", "x.org", "acme", "spring")
    assert str(spec) == "1/m"
    assert str(chosen.spec_for("acme@a.example.com", "a.example.com", "acme", None)) == "2/m"
    assert chosen.spec_for("acme@x.org", "x.org", "acme", None) is None
    assert chosen.spec_for("other@a.example.com", "a.example.com", "other", None) is None


async def test_each_scheduled_queue_has_its_own_bucket() -> None:
    clock = FakeClock()
    chosen = rates(clock)
    args = ("a.example.com", "acme", None)
    assert await chosen.delay("acme@a.example.com", *args) == 0
    assert await chosen.delay("acme@a.example.com", *args) == 0
    wait = await chosen.delay("acme@a.example.com", *args)
    assert 0 < wait <= 30  # 2/m: the next one in 30 s
    assert await chosen.delay("acme@b.example.com", "b.example.com", "acme", None) == 0
    clock.now += wait
    assert await chosen.delay("acme@a.example.com", *args) == 0


def test_a_bad_rate_is_a_config_error_naming_the_entry() -> None:
    raw = {"queue": {"rates": [{"tenant": "acme", "max_message_rate": "fast"}]}}
    with pytest.raises(ConfigError, match=r"queue\.rates\[0\]\.max_message_rate"):
        config_from_mapping(raw)
    with pytest.raises(ConfigError, match=r"queue\.rates\[0\]\.max_message_rate"):
        config_from_mapping({"queue": {"rates": [{"tenant": "acme"}]}})
