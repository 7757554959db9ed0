"""When the next attempt is due: `retry_interval` doubling per attempt up to a maximum."""

from __future__ import annotations

import random

from mta.config import QueueConfig


def retry_delay(config: QueueConfig, attempts: int, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempts + 1`, after `attempts` (>= 1) failed attempts."""
    base: float = config.retry_interval * (2 ** max(0, attempts - 1))
    delay = min(base, float(config.max_retry_interval))
    if config.jitter:
        delay *= 1 + (rng or random).uniform(-config.jitter, config.jitter)
    return max(delay, 0.0)


def is_expired(config: QueueConfig, created: float, when: float) -> bool:
    """True when an attempt at `when` would be past the message's `max_age`."""
    return when > created + config.max_age
