"""A timer for scheduled queue entries: one heap of (due, key), one task that fires them."""

from __future__ import annotations

import asyncio
import heapq
import itertools
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


class Entry(NamedTuple):
    due: float
    queue: str
    seq: int


class Scheduler(Generic[K]):
    """Calls `on_due(key)` once the wall clock passes the key's due time.

    Each key is scheduled at most once at a time; `queue` names the scheduled queue the entry
    belongs to, so that queue sizes can be reported. `cancel` takes an entry out before it
    fires.
    """

    def __init__(self, on_due: Callable[[K], None], clock: Callable[[], float] = time.time) -> None:
        self._on_due = on_due
        self._clock = clock
        self._heap: list[tuple[float, int, K]] = []
        self._entries: dict[K, Entry] = {}
        self._sizes: Counter[str] = Counter()
        self._changed: dict[str, float] = {}
        self._stale = 0
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    def schedule(self, key: K, due: float, queue: str) -> None:
        if key in self._entries:
            raise ValueError(f"{key!r} is already scheduled")
        seq = next(self._seq)
        self._entries[key] = Entry(due, queue, seq)
        self._count(queue, +1)
        if not self._heap or due < self._heap[0][0]:
            self._wake.set()
        heapq.heappush(self._heap, (due, seq, key))

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

    def get(self, key: K) -> Entry | None:
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
        while self._heap and self._heap[0][0] <= now and fired < limit:
            _due, seq, key = heapq.heappop(self._heap)
            entry = self._entries.get(key)
            if entry is None or entry.seq != seq:
                self._stale -= 1  # cancelled (and maybe scheduled again since)
                continue
            del self._entries[key]
            self._count(entry.queue, -1)
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

    def _count(self, queue: str, delta: int) -> None:
        self._sizes[queue] += delta
        if self._sizes[queue]:
            self._changed[queue] = self._clock()
        else:
            del self._sizes[queue]
            self._changed.pop(queue, None)

    def _compact(self) -> None:
        self._heap = [(e.due, e.seq, key) for key, e in self._entries.items()]
        heapq.heapify(self._heap)
        self._stale = 0
