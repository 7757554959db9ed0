"""Connections handed from one delivery to the next, when a site is at its connection limit.

A delivery that finds no idle session and is refused a new connection lease would put its
message back in the scheduled queue for the lease's retry time. When this node itself holds
connections to the site, one of them comes back (to the idle pool, or closed, giving its
lease back) within one transaction: waiting for that is better than a retry seconds later,
and it keeps the ready queue's order. Waiters are woken one at a time, oldest first.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque


class Handoff:
    """Per site: this node's open connections, and the deliveries waiting for one."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}

    def opened(self, site: str) -> None:
        self._open[site] += 1

    def closed(self, site: str) -> None:
        """A connection closed (its leases are back): wake one waiter."""
        self._open[site] -= 1
        if self._open[site] <= 0:
            del self._open[site]
        self.released(site)

    def released(self, site: str) -> None:
        """A connection went back to the idle pool or closed: wake one waiter."""
        waiters = self._waiters.get(site)
        while waiters:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                break
        if waiters is not None and not waiters:
            del self._waiters[site]

    async def wait(self, site: str, seconds: float) -> bool:
        """Wait up to `seconds` for a connection of this node to the site to come back;
        False at once when this node holds none (the limit is held elsewhere)."""
        if not self._open[site] or seconds <= 0:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(site, deque()).append(future)
        try:
            async with asyncio.timeout(seconds):
                await future
        except TimeoutError:
            return False
        finally:
            if not future.done():
                future.cancel()
        return True
