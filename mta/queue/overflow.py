"""Due legs waiting for room in their site's full ready queue.

A ready queue holds at most `max_ready` entries. A due leg that finds it full waits here, in
order, and moves in as soon as a worker takes an entry out. Putting it back in the scheduled
queue for a second instead (as before) re-promoted every waiting leg every second: with a slow
site and a large backlog, that re-binding was most of the node's CPU.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")


class Overflow(Generic[K]):
    """Per site, the legs waiting for room, oldest first; each key at most once.

    `discard` takes a key out in O(1) (it was bounced or held by an administrator): its slot
    in the site's deque stays and is skipped when reached.
    """

    def __init__(self) -> None:
        self._waiting: dict[str, deque[K]] = {}
        self._members: set[K] = set()

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def add(self, site: str, key: K) -> None:
        if key not in self._members:
            self._members.add(key)
            self._waiting.setdefault(site, deque()).append(key)

    def discard(self, key: K) -> None:
        self._members.discard(key)

    def refill(self, site: str, put: Callable[[K], bool]) -> bool:
        """Move the site's waiting legs in with `put` (the ready queue's), oldest first,
        until it refuses one (full again); True while some are still waiting."""
        waiting = self._waiting.get(site)
        if waiting is None:
            return False
        members = self._members
        while waiting:
            key = waiting[0]
            if key in members:
                if not put(key):
                    return True
                members.discard(key)
            waiting.popleft()
        del self._waiting[site]
        return False
