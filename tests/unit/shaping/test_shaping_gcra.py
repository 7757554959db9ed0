"""GCRA in memory, driven by an injected clock: burst, steady rate, retry_after, quantity."""

from __future__ import annotations

import pytest

from shaping.gcra import gcra_step, interval_micros
from shaping.spec import ThrottleSpec, parse_throttle_spec
from shaping.throttle import SWEEP_EVERY, MemoryThrottle, storage_key

START = 1000.0


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def allowed_now(throttle: MemoryThrottle, key: str, spec: ThrottleSpec, tries: int) -> int:
    results = [await throttle.check(key, spec) for _ in range(tries)]
    return sum(not result.throttled for result in results)


async def test_burst_then_steady_rate(clock: FakeClock) -> None:
    throttle = MemoryThrottle(clock=clock)
    spec = parse_throttle_spec("10/s")  # burst 10, one every 0.1 s after that
    assert await allowed_now(throttle, "k", spec, 15) == 10
    for _ in range(20):
        clock.advance(0.1)
        assert await allowed_now(throttle, "k", spec, 3) == 1


async def test_remaining_counts_down_and_retry_after_says_when(clock: FakeClock) -> None:
    throttle = MemoryThrottle(clock=clock)
    spec = parse_throttle_spec("4/s")  # interval 0.25 s
    remaining = [(await throttle.check("k", spec)).remaining for _ in range(4)]
    assert remaining == [3, 2, 1, 0]
    refused = await throttle.check("k", spec)
    assert refused.throttled
    assert refused.retry_after == pytest.approx(0.25)
    assert refused.reset_after == pytest.approx(1.0)
    clock.advance(0.2)
    assert (await throttle.check("k", spec)).retry_after == pytest.approx(0.05)
    clock.advance(0.05)
    again = await throttle.check("k", spec)
    assert not again.throttled
    assert again.retry_after == 0.0
    assert again.reset_after == pytest.approx(1.0)


async def test_max_burst_smaller_than_limit(clock: FakeClock) -> None:
    throttle = MemoryThrottle(clock=clock)
    spec = parse_throttle_spec("60/min,max_burst=3")
    assert await allowed_now(throttle, "k", spec, 10) == 3
    refused = await throttle.check("k", spec)
    assert refused.retry_after == pytest.approx(1.0)
    clock.advance(60)  # a full period refills only the burst, not the limit
    assert await allowed_now(throttle, "k", spec, 10) == 3


async def test_quantity_consumes_several_units(clock: FakeClock) -> None:
    throttle = MemoryThrottle(clock=clock)
    spec = parse_throttle_spec("10/s")
    first = await throttle.check("k", spec, quantity=6)
    assert not first.throttled
    assert first.remaining == 4
    refused = await throttle.check("k", spec, quantity=5)
    assert refused.throttled
    assert refused.retry_after == pytest.approx(0.1)
    assert refused.remaining == 4  # a refused request consumes nothing
    assert not (await throttle.check("k", spec, quantity=4)).throttled


async def test_quantity_above_burst_never_passes(clock: FakeClock) -> None:
    throttle = MemoryThrottle(clock=clock)
    spec = parse_throttle_spec("10/s,max_burst=5")
    refused = await throttle.check("k", spec, quantity=6)
    assert refused.throttled
    assert refused.retry_after == pytest.approx(0.1)  # ...and waiting never helps
    clock.advance(3600)
    assert (await throttle.check("k", spec, quantity=6)).throttled


async def test_quantity_must_be_positive(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="quantity"):
        await MemoryThrottle(clock=clock).check("k", parse_throttle_spec("1/s"), quantity=0)


async def test_changed_spec_starts_a_fresh_bucket(clock: FakeClock) -> None:
    throttle = MemoryThrottle(clock=clock)
    assert await allowed_now(throttle, "k", parse_throttle_spec("2/s"), 5) == 2
    assert await allowed_now(throttle, "k", parse_throttle_spec("3/s"), 5) == 3
    assert storage_key("site", parse_throttle_spec("100/h,max_burst=5")) == "site:100:5:3600"


async def test_keys_are_independent(clock: FakeClock) -> None:
    throttle = MemoryThrottle(clock=clock)
    spec = parse_throttle_spec("1/min")
    assert await allowed_now(throttle, "a", spec, 3) == 1
    assert await allowed_now(throttle, "b", spec, 3) == 1


async def test_share_scales_rate_exactly_and_burst_down(clock: FakeClock) -> None:
    throttle = MemoryThrottle(clock=clock, share=1 / 3)
    spec = parse_throttle_spec("1/min")  # a third of it: one every three minutes
    assert await allowed_now(throttle, "k", spec, 3) == 1
    clock.advance(179)
    assert (await throttle.check("k", spec)).retry_after == pytest.approx(1.0)
    clock.advance(1)
    assert await allowed_now(throttle, "k", spec, 3) == 1
    burst = MemoryThrottle(clock=clock, share=0.5)
    assert await allowed_now(burst, "k", parse_throttle_spec("10/s"), 10) == 5


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_share_must_be_a_fraction(share: float) -> None:
    with pytest.raises(ValueError, match="share"):
        MemoryThrottle(share=share)


async def test_expired_buckets_are_swept(clock: FakeClock) -> None:
    throttle = MemoryThrottle(clock=clock)
    spec = parse_throttle_spec("1/s")
    for index in range(SWEEP_EVERY - 1):
        await throttle.check(f"k{index}", spec)
    assert len(throttle) == SWEEP_EVERY - 1
    clock.advance(2)
    await throttle.check("last", spec)
    assert len(throttle) == 1


def test_gcra_step_is_pure_integer_microseconds() -> None:
    fresh = gcra_step(now=10_000_000, stored_tat=None, interval=500_000, burst=2, quantity=1)
    assert (fresh.allowed, fresh.new_tat, fresh.remaining) == (True, 10_500_000, 1)
    second = gcra_step(10_000_000, fresh.new_tat, 500_000, 2, 1)
    assert (second.allowed, second.new_tat, second.remaining) == (True, 11_000_000, 0)
    third = gcra_step(10_000_000, second.new_tat, 500_000, 2, 1)
    assert (third.allowed, third.new_tat, third.retry_after) == (False, None, 500_000)
    stale = gcra_step(20_000_000, 11_000_000, 500_000, 2, 1)  # a TAT in the past: empty
    assert (stale.allowed, stale.new_tat) == (True, 20_500_000)


def test_interval_rounds_to_whole_microseconds() -> None:
    assert interval_micros(1, 3) == 333_333
    assert interval_micros(2, 3) == 666_667
    assert interval_micros(1, 10**9) == 1  # never zero


@pytest.mark.parametrize("limit", [3, 5, 7, 10, 100, 1000, 4999])
async def test_full_burst_at_unix_time_scale(limit: int) -> None:
    # At Unix-time magnitudes, float seconds would lose units to rounding; µs do not.
    clock = FakeClock(1_795_360_297.406226)
    throttle = MemoryThrottle(clock=clock)
    assert await allowed_now(throttle, "k", ThrottleSpec(limit, 1, limit), limit + 2) == limit
