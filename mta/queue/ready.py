"""Ready queues: one per destination site, bounded, drained by up to N delivery workers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")


class ReadyQueue(Generic[K]):
    """Entries whose time has come, waiting for a connection to their site.

    `put` refuses (returns False) when `max_ready` entries are waiting; after a refusal,
    `on_room(put)` is called each time an entry leaves (or the limit grows), for the caller
    to put in what waits for room (mta.queue.overflow), until it returns False: none left.
    Workers are started on demand, up to `max_workers` (the site's connection limit), and
    exit when the queue is empty. While `suspended` (an administrator's ready-queue
    suspension), no attempt starts; attempts in flight finish, and lifting the suspension
    starts workers again.
    """

    def __init__(
        self,
        name: str,
        *,
        max_ready: int,
        max_workers: int,
        attempt: Callable[[K], Awaitable[None]],
        on_room: Callable[[Callable[[K], bool]], bool] | None = None,
    ) -> None:
        self.name = name
        self._items: deque[K] = deque()
        self._max_ready = max_ready
        self._max_workers = max_workers
        self._attempt = attempt
        self._on_room = on_room
        self._refused = False  # a put was refused: entries may be waiting for room
        self._workers: set[asyncio.Task[None]] = set()
        self._attempting = 0
        self._suspended = False
        self.closing = False

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        """The waiting entries, oldest first (not those being attempted)."""
        return iter(self._items)

    @property
    def suspended(self) -> bool:
        return self._suspended

    @suspended.setter
    def suspended(self, value: bool) -> None:
        self._suspended = value
        if not value:
            self._spawn()

    def configure(self, *, max_ready: int, max_workers: int) -> None:
        """New limits (the path's shaping changed); more workers start at once if allowed,
        extra ones finish their attempt and exit."""
        grew = max_ready > self._max_ready
        self._max_ready = max_ready
        if grew:
            self._room()
        if max_workers != self._max_workers:
            self._max_workers = max_workers
            self._spawn()

    @property
    def busy(self) -> int:
        return self._attempting

    def put(self, key: K) -> bool:
        if len(self._items) >= self._max_ready:
            self._refused = True
            return False
        self._items.append(key)
        self._spawn()
        return True

    def _room(self) -> None:
        if self._refused and self._on_room is not None:
            self._refused = self._on_room(self.put)

    def drain_items(self) -> list[K]:
        """Take every waiting entry out (for a shutdown that keeps them in the spool)."""
        items = list(self._items)
        self._items.clear()
        return items

    def _spawn(self) -> None:
        if self.suspended or self.closing:
            return
        # A worker busy in an attempt cannot take a new entry soon: count only the free ones.
        while len(self._workers) < self._max_workers and len(
            self._workers
        ) - self._attempting < len(self._items):
            task = asyncio.get_running_loop().create_task(self._work(), name=f"ready:{self.name}")
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        try:
            await self._work_items()
        finally:
            # Leave the set now, not in a done callback one loop turn later: a `put` in
            # between would count this worker as free, start none, and strand its entry.
            task = asyncio.current_task()
            if task is not None:
                self._workers.discard(task)

    async def _work_items(self) -> None:
        while self._items and not self.closing and not self.suspended:
            if len(self._workers) > self._max_workers:
                # The limit went down: this worker is one too many. Leave the set now, so
                # the next worker to look counts without it.
                task = asyncio.current_task()
                if task is not None:
                    self._workers.discard(task)
                return
            self._attempting += 1
            try:
                key = self._items.popleft()
                self._room()
                await self._attempt(key)
            finally:
                self._attempting -= 1

    async def wait_idle(self) -> None:
        """Wait for the running workers to finish their current attempts."""
        while self._workers:
            await asyncio.wait(set(self._workers))

    def cancel(self) -> None:
        for task in self._workers:
            task.cancel()
