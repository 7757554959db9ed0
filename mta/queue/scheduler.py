"""A timer for scheduled queue entries: one heap of (due, key, queue), one task that fires them.

An entry is one tuple, held both by the heap and by the key's slot in a dict: with a million
queued legs, every object per entry counts (~150 bytes an entry plus the key).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import Counter
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

K = TypeVar("K")

MAX_SLEEP_SECONDS = 60.0  # wake up now and then even when nothing is due (clock jumps)
FIRE_BATCH = 5000  # entries fired per loop turn, so a restart with a large backlog stays responsive
# Cancelled entries stay in the heap until popped (lazy deletion); rebuild it when they
# outnumber the live ones, so that mass cancellations (an admin bounce) do not pin memory.
COMPACT_MIN_STALE = 1024


class Entry(NamedTuple, Generic[K]):
    """A scheduled key. Keys must be orderable: they break ties between equal due times."""

    due: float
    key: K
    queue: str


class Scheduler(Generic[K]):
    """Calls `on_due(key)` once the wall clock passes the key's due time.

    Each key is scheduled at most once at a time; `queue` names the scheduled queue the entry
    belongs to, so that queue sizes can be reported. `cancel` takes an entry out before it
    fires.
    """

    def __init__(self, on_due: Callable[[K], None], clock: Callable[[], float] = time.time) -> None:
        self._on_due = on_due
        self._clock = clock
        self._heap: list[Entry[K]] = []
        self._entries: dict[K, Entry[K]] = {}
        self._sizes: Counter[str] = Counter()
        self._changed: dict[str, float] = {}
        self._stale = 0
        self._wake = asyncio.Event()

    def schedule(self, key: K, due: float, queue: str) -> None:
        if key in self._entries:
            raise ValueError(f"{key!r} is already scheduled")
        entry = Entry(due, key, queue)
        self._entries[key] = entry
        self._count(queue, +1)
        if not self._heap or due < self._heap[0].due:
            self._wake.set()
        heapq.heappush(self._heap, entry)

    def cancel(self, key: K) -> bool:
        """Take a scheduled entry out; False if it was not scheduled."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._count(entry.queue, -1)
        self._stale += 1
        if self._stale > max(COMPACT_MIN_STALE, len(self._entries)):
            self._compact()
        return True

    def get(self, key: K) -> Entry[K] | None:
        """The due time and queue of a scheduled key, None if it is not scheduled."""
        return self._entries.get(key)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def queue_sizes(self) -> dict[str, int]:
        return {name: size for name, size in self._sizes.items() if size}

    def last_change(self, queue: str) -> float | None:
        """When an entry last entered or left `queue`; None once the queue is empty."""
        return self._changed.get(queue)

    def fire_due(self, limit: int = FIRE_BATCH) -> int:
        """Fire up to `limit` entries that are due now; return how many fired."""
        now = self._clock()
        fired = 0
        heap, entries = self._heap, self._entries
        while heap and heap[0].due <= now and fired < limit:
            entry = heapq.heappop(heap)
            key = entry.key
            if entries.get(key) is not entry:
                self._stale -= 1  # cancelled (and maybe scheduled again since)
                continue
            del entries[key]
            self._count(entry.queue, -1)
            fired += 1
            self._on_due(key)
        return fired

    def seconds_until_next(self) -> float:
        if not self._heap:
            return MAX_SLEEP_SECONDS
        return min(max(self._heap[0].due - self._clock(), 0.0), MAX_SLEEP_SECONDS)

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

    def _count(self, queue: str, delta: int) -> None:
        self._sizes[queue] += delta
        if self._sizes[queue]:
            self._changed[queue] = self._clock()
        else:
            del self._sizes[queue]
            self._changed.pop(queue, None)

    def _compact(self) -> None:
        self._heap = list(self._entries.values())
        heapq.heapify(self._heap)
        self._stale = 0
