"""Idle SMTP sessions kept per site for reuse, each closed after its idle timeout."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, Protocol, TypeVar


class Reusable(Protocol):
    @property
    def reusable(self) -> bool: ...

    async def quit(self) -> None: ...


S = TypeVar("S", bound=Reusable)


class _SiteIdle(Generic[S]):
    """One site's idle sessions, oldest first, each with the loop time it expires at.

    Sessions are appended as they are put back, so expiry times only grow along the
    deque: one timer, for the oldest, serves them all. A timer per session would cost
    a call_later and a cancel on every delivery.
    """

    __slots__ = ("sessions", "timer")

    def __init__(self) -> None:
        self.sessions: deque[tuple[float, S]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class SessionPool(Generic[S]):
    """Per-site stacks of idle sessions; the most recently used is reused first, so the
    others get the chance to idle out when traffic drops.

    Each `take` hands a session to exactly one caller, so concurrent deliveries for one
    site never share a session. Retired sessions say QUIT in background tasks that
    `close` waits for.
    """

    def __init__(self, idle_timeout: float) -> None:
        self._idle_timeout = idle_timeout
        self._idle: dict[str, _SiteIdle[S]] = {}
        self._quitting: set[asyncio.Task[None]] = set()
        self._closed = False

    def take(self, site: str) -> S | None:
        """An idle live session for `site`, or None; dead ones found on the way are dropped."""
        entry = self._idle.get(site)
        if entry is None:
            return None
        sessions = entry.sessions
        found: S | None = None
        while sessions:
            _, session = sessions.pop()
            if session.reusable:
                found = session
                break
            self.retire(session)
        # An emptied site keeps its entry and timer: under steady traffic each delivery takes
        # the session the previous one put back, and a new entry and timer per message would
        # cost more than the timer firing once per idle timeout to find nothing (`_expire`).
        return found

    def put(self, site: str, session: S, idle_timeout: float | None = None) -> None:
        """Keep `session` for reuse (for `idle_timeout` seconds, default the pool's: keep
        it the same for a site, expiries must grow along its deque), or retire it if it
        cannot be reused."""
        if self._closed or not session.reusable:
            self.retire(session)
            return
        loop = asyncio.get_running_loop()
        expires = loop.time() + (self._idle_timeout if idle_timeout is None else idle_timeout)
        entry = self._idle.get(site)
        if entry is None:
            entry = self._idle[site] = _SiteIdle()
        entry.sessions.append((expires, session))
        if entry.timer is None:
            entry.timer = loop.call_at(expires, self._expire, site)

    def retire(self, session: S) -> None:
        """QUIT and close in the background."""
        task = asyncio.get_running_loop().create_task(session.quit())
        self._quitting.add(task)
        task.add_done_callback(self._quitting.discard)

    def idle(self, site: str) -> int:
        entry = self._idle.get(site)
        if entry is None:
            return 0
        return sum(1 for _, session in entry.sessions if session.reusable)

    def idle_total(self) -> int:
        """Sessions kept for reuse, every site together (dead ones not yet noticed too)."""
        return sum(len(entry.sessions) for entry in self._idle.values())

    async def close(self) -> None:
        """Retire every idle session and wait for all the QUITs under way."""
        self._closed = True
        for site in list(self._idle):
            entry = self._idle.pop(site)
            entry.cancel_timer()
            for _, session in entry.sessions:
                self.retire(session)
        if self._quitting:
            await asyncio.gather(*self._quitting)

    def _expire(self, site: str) -> None:
        """Retire the sessions whose idle time is up; wake again for the next oldest."""
        entry = self._idle.get(site)
        if entry is None:
            return
        entry.timer = None
        loop = asyncio.get_running_loop()
        sessions = entry.sessions
        while sessions and sessions[0][0] <= loop.time():
            self.retire(sessions.popleft()[1])
        if sessions:
            entry.timer = loop.call_at(sessions[0][0], self._expire, site)
        else:
            del self._idle[site]
