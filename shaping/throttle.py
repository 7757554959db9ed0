"""Rate throttles: the ``Throttle`` interface and its in-process implementation.

Every implementation stores its bucket under ``storage_key(key, spec)``, i.e.
``name:limit:burst:period`` as KumoMTA does, so changing a rule starts a fresh bucket.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Final, Protocol

from .gcra import MICROS, GcraDecision, expiry_seconds, gcra_step, interval_micros, to_micros
from .spec import ThrottleSpec

Clock = Callable[[], float]

# The memory store drops expired buckets in one sweep every this many checks, so a node
# that sees many short-lived keys (one per site and source) does not grow without bound.
SWEEP_EVERY: Final = 1024


@dataclasses.dataclass(frozen=True, slots=True)
class ThrottleResult:
    """One throttle decision.

    ``retry_after``: seconds until the same request would be allowed (0 when allowed).
    ``remaining``: further single units allowed right now. ``reset_after``: seconds until
    the bucket is empty again (full burst available).
    """

    throttled: bool
    retry_after: float
    remaining: int
    reset_after: float


class Throttle(Protocol):
    """A GCRA rate limiter keyed by name."""

    async def check(self, key: str, spec: ThrottleSpec, quantity: int = 1) -> ThrottleResult:
        """Consume ``quantity`` units of ``key``'s bucket unless that would exceed ``spec``.

        A throttled request consumes nothing. Raises for backend trouble (Redis); the
        memory implementation never raises.
        """
        ...


def storage_key(key: str, spec: ThrottleSpec) -> str:
    """The bucket name: the caller's key with the spec's parameters appended."""
    return f"{key}:{spec.key_suffix()}"


def scaled_burst(spec: ThrottleSpec, share: float) -> int:
    """The burst for a node that owns ``share`` of a cluster-wide limit (at least 1)."""
    return max(1, math.floor(spec.max_burst * share))


def result_of(decision: GcraDecision) -> ThrottleResult:
    """A ThrottleResult (seconds) from a GCRA decision (microseconds)."""
    return ThrottleResult(
        throttled=not decision.allowed,
        retry_after=decision.retry_after / MICROS,
        remaining=decision.remaining,
        reset_after=decision.reset_after / MICROS,
    )


def check_quantity(quantity: int) -> None:
    if quantity < 1:
        raise ValueError(f"quantity must be at least 1, got {quantity}")


class MemoryThrottle:
    """GCRA buckets in process memory: the embedded default, and the Redis fallback.

    ``share`` (0 < share <= 1) scales the rate and burst down for a node that enforces its
    part of a cluster-wide limit on its own (1/N of the limit for N nodes). The rate is
    scaled exactly, by stretching the emission interval, so "1/min" over three nodes
    allows one per three minutes per node rather than rounding to zero or one per minute.
    ``clock`` returns seconds and is injectable for tests.
    """

    def __init__(self, *, clock: Clock = time.monotonic, share: float = 1.0) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self._clock = clock
        self.share = share
        self._buckets: dict[str, tuple[int, int]] = {}  # key -> (tat, expires_at), in µs
        self._checks = 0

    async def check(self, key: str, spec: ThrottleSpec, quantity: int = 1) -> ThrottleResult:
        return self.check_now(key, spec, quantity)

    def check_now(self, key: str, spec: ThrottleSpec, quantity: int = 1) -> ThrottleResult:
        """The synchronous core of :meth:`check`."""
        check_quantity(quantity)
        now = to_micros(self._clock())
        self._maybe_sweep(now)
        name = storage_key(key, spec)
        interval = interval_micros(spec.period_seconds, spec.limit * self.share)
        burst = scaled_burst(spec, self.share)
        decision = gcra_step(now, self._stored(name, now), interval, burst, quantity)
        if decision.new_tat is not None:
            expires = now + expiry_seconds(now, decision.new_tat) * MICROS
            self._buckets[name] = (decision.new_tat, expires)
        return result_of(decision)

    def __len__(self) -> int:
        return len(self._buckets)

    def _stored(self, name: str, now: int) -> int | None:
        entry = self._buckets.get(name)
        if entry is None or entry[1] <= now:
            return None
        return entry[0]

    def _maybe_sweep(self, now: int) -> None:
        self._checks += 1
        if self._checks % SWEEP_EVERY == 0:
            self._buckets = {k: v for k, v in self._buckets.items() if v[1] > now}
