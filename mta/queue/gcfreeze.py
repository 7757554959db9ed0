"""Keep Python's cyclic garbage collector cheap while the queue grows to millions of messages.

A full collection walks every tracked object; with ~850,000 queued messages the node spent 83%
of its CPU there and injection fell to a few messages a second (benchmarks/RESULTS.md, Scale).
Queued messages are not cyclic garbage (reference counting frees them), so each time the queue
has grown by a quarter past a threshold, what exists is moved out of the collector's sight
(`gc.freeze()`): later full collections only walk what came since. Re-queueing at start does
the same once it is done (`mta.queue.requeue`).
"""

from __future__ import annotations

import gc
from typing import Final

FREEZE_FROM: Final = 100_000  # queued messages before the first freeze
GROWTH: Final = 1.25  # freeze again once the queue is this much larger


class GrowthFreezer:
    def __init__(self, start: int = FREEZE_FROM, growth: float = GROWTH) -> None:
        self._next = start
        self._growth = growth

    def grown_to(self, size: int) -> bool:
        """Freeze if the queue reached the next mark; True if it did."""
        if size < self._next:
            return False
        gc.freeze()
        self._next = max(self._next + 1, int(size * self._growth))
        return True
