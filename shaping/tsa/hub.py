"""Fan-out of automation events to websocket subscribers, and file change detection.

Each subscriber has a bounded queue: one that falls behind by more than
:data:`SUBSCRIBER_QUEUE` events is dropped (its socket closed), and reconnects to get the
full current state again, instead of the daemon buffering without limit.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from .events import AutomationEvent

SUBSCRIBER_QUEUE: Final = 10_000


class Subscriber:
    """One websocket's pending events; ``overflowed`` is set when it fell behind."""

    def __init__(self, limit: int = SUBSCRIBER_QUEUE) -> None:
        self.queue: asyncio.Queue[AutomationEvent] = asyncio.Queue(limit)
        self.overflowed = asyncio.Event()

    def offer(self, event: AutomationEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()


class Hub:
    """The current subscribers."""

    def __init__(self) -> None:
        self._subscribers: set[Subscriber] = set()

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber()
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish(self, events: Iterable[AutomationEvent]) -> None:
        for event in events:
            for subscriber in self._subscribers:
                subscriber.offer(event)

    def __len__(self) -> int:
        return len(self._subscribers)


class FileWatch:
    """Tells whether any of a set of files changed (mtime, size, presence) since the last
    call; cheap enough to call every few seconds."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self._paths = tuple(paths)
        self._seen = self._signature()

    def changed(self) -> bool:
        current = self._signature()
        if current == self._seen:
            return False
        self._seen = current
        return True

    def _signature(self) -> tuple[tuple[int, int] | None, ...]:
        return tuple(_stat(path) for path in self._paths)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size
