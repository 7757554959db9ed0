"""A timer for scheduled queue entries: one heap of (due, key), one task that fires them."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")

MAX_SLEEP_SECONDS = 60.0  # wake up now and then even when nothing is due (clock jumps)
FIRE_BATCH = 5000  # entries fired per loop turn, so a restart with a large backlog stays responsive


class Scheduler(Generic[K]):
    """Calls `on_due(key)` once the wall clock passes the key's due time.

    Each key is scheduled at most once at a time; `queue` names the scheduled queue the entry
    belongs to, so that queue sizes can be reported.
    """

    def __init__(self, on_due: Callable[[K], None], clock: Callable[[], float] = time.time) -> None:
        self._on_due = on_due
        self._clock = clock
        self._heap: list[tuple[float, int, K]] = []
        self._entries: dict[K, tuple[float, str]] = {}
        self._sizes: Counter[str] = Counter()
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    def schedule(self, key: K, due: float, queue: str) -> None:
        if key in self._entries:
            raise ValueError(f"{key!r} is already scheduled")
        self._entries[key] = (due, queue)
        self._sizes[queue] += 1
        if not self._heap or due < self._heap[0][0]:
            self._wake.set()
        heapq.heappush(self._heap, (due, next(self._seq), key))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def queue_sizes(self) -> dict[str, int]:
        return {name: size for name, size in self._sizes.items() if size}

    def fire_due(self, limit: int = FIRE_BATCH) -> int:
        """Fire up to `limit` entries that are due now; return how many fired."""
        now = self._clock()
        fired = 0
        while self._heap and self._heap[0][0] <= now and fired < limit:
            _due, _seq, key = heapq.heappop(self._heap)
            _due, queue = self._entries.pop(key)
            self._sizes[queue] -= 1
            fired += 1
            self._on_due(key)
        return fired

    def seconds_until_next(self) -> float:
        if not self._heap:
            return MAX_SLEEP_SECONDS
        return min(max(self._heap[0][0] - self._clock(), 0.0), MAX_SLEEP_SECONDS)

    async def run(self) -> None:
        """Fire entries as they fall due, until cancelled."""
        while True:
            if self.fire_due() == FIRE_BATCH:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            try:
                async with asyncio.timeout(self.seconds_until_next()):
                    await self._wake.wait()
            except TimeoutError:
                pass
