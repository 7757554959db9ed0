"""The Redis health state machine: one switch per failure, paced probes, counters."""

from __future__ import annotations

import logging

import pytest

from shaping.fallback import RedisHealth, Route, scaled_limit


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fallback_probe_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    health = RedisHealth(local_share=0.25, probe_interval=5.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="shaping"):
        assert health.route() is Route.REDIS
        health.failed(Route.REDIS, ConnectionError("refused"))
        health.failed(Route.REDIS, ConnectionError("refused"))  # in flight at the time
        assert (health.using_redis, health.fallbacks) == (False, 1)
        assert health.route() is Route.MEMORY
        clock.now = 5.0
        assert health.route() is Route.PROBE
        assert health.route() is Route.MEMORY  # one probe at a time
        health.failed(Route.PROBE, TimeoutError())
        clock.now = 9.9
        assert health.route() is Route.MEMORY
        health.succeeded(Route.REDIS)  # a call from before the failure proves nothing
        assert not health.using_redis
        clock.now = 10.0
        assert health.route() is Route.PROBE
        health.succeeded(Route.PROBE)
        assert health.using_redis
        assert health.route() is Route.REDIS
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "Redis unavailable (ConnectionError: refused)" in messages[0]
    assert "0.25" in messages[0]
    assert "reachable again" in messages[1]


@pytest.mark.parametrize(("limit", "share", "scaled"), [(10, 0.5, 5), (3, 0.2, 1), (0, 0.5, 0)])
def test_scaled_limit(limit: int, share: float, scaled: int) -> None:
    assert scaled_limit(limit, share) == scaled


def test_share_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="local_share"):
        RedisHealth(local_share=0)
