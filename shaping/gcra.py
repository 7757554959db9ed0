"""The generic cell rate algorithm (GCRA) as a pure function.

The state of a bucket is one number, the theoretical arrival time (TAT): when the bucket
would be empty again at the steady rate. A request for ``quantity`` units pushes the TAT
forward by ``interval * quantity``; it is allowed when the new TAT lies no more than
``interval * burst`` ahead of now.

Time is counted in whole microseconds. With seconds as floats, Unix time (~1.7e9) leaves
only ~1e-7 s of precision and the TAT accumulates rounding errors: "5/s" would sometimes
admit a burst of 4. Integers below 2**53 are exact in a double, which is all Lua has, so
the Redis script in :mod:`shaping.redis_throttle` computes exactly what this function
computes. The interval is rounded to a whole microsecond (a rate error below 1e-6).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final

MICROS: Final = 1_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class GcraDecision:
    """The outcome of one GCRA step, times in microseconds; ``new_tat`` is what to store
    (None: store nothing)."""

    allowed: bool
    new_tat: int | None
    retry_after: int
    remaining: int
    reset_after: int


def to_micros(seconds: float) -> int:
    """A clock reading in whole microseconds."""
    return round(seconds * MICROS)


def interval_micros(period_seconds: float, limit: float) -> int:
    """The emission interval in whole microseconds (at least 1), rounded half up the way
    the Lua script does it: ``floor(x + 0.5)``."""
    return max(1, math.floor(period_seconds * MICROS / limit + 0.5))


def gcra_step(
    now: int, stored_tat: int | None, interval: int, burst: int, quantity: int
) -> GcraDecision:
    """Decide one request at ``now`` against the stored TAT (None: an empty bucket)."""
    tat = now if stored_tat is None or stored_tat < now else stored_tat
    new_tat = tat + interval * quantity
    allow_at = new_tat - interval * burst
    if now < allow_at:
        # Nothing is consumed: the same request may be retried at allow_at.
        left = _whole_units(now - (tat - interval * burst), interval, burst)
        return GcraDecision(False, None, allow_at - now, left, tat - now)
    return GcraDecision(
        True, new_tat, 0, _whole_units(now - allow_at, interval, burst), new_tat - now
    )


def expiry_seconds(now: int, new_tat: int) -> int:
    """How long to keep a stored TAT: until it is in the past, in whole seconds (at least
    one). After that the bucket is empty whatever the stored value says."""
    return max(1, -((now - new_tat) // MICROS))


def _whole_units(slack: int, interval: int, burst: int) -> int:
    """How many more single units fit in ``slack`` microseconds of headroom."""
    return min(burst, max(0, slack // interval))
