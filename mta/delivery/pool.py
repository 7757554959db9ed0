"""Idle SMTP sessions kept per site for reuse, each closed after its idle timeout."""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar


class Reusable(Protocol):
    @property
    def reusable(self) -> bool: ...

    async def quit(self) -> None: ...


S = TypeVar("S", bound=Reusable)


class _Idle(Generic[S]):
    __slots__ = ("session", "timer")

    def __init__(self, session: S) -> None:
        self.session = session
        self.timer: asyncio.TimerHandle | None = None


class SessionPool(Generic[S]):
    """Per-site stacks of idle sessions; the most recently used is reused first, so the
    others get the chance to idle out when traffic drops.

    Each `take` hands a session to exactly one caller, so concurrent deliveries for one
    site never share a session. Retired sessions say QUIT in background tasks that
    `close` waits for.
    """

    def __init__(self, idle_timeout: float) -> None:
        self._idle_timeout = idle_timeout
        self._idle: dict[str, list[_Idle[S]]] = {}
        self._quitting: set[asyncio.Task[None]] = set()
        self._closed = False

    def take(self, site: str) -> S | None:
        """An idle live session for `site`, or None; dead ones found on the way are dropped."""
        entries = self._idle.get(site, [])
        while entries:
            entry = entries.pop()
            if entry.timer is not None:
                entry.timer.cancel()
            if entry.session.reusable:
                self._forget_if_empty(site)
                return entry.session
            self.retire(entry.session)
        self._forget_if_empty(site)
        return None

    def put(self, site: str, session: S) -> None:
        """Keep `session` for reuse, or retire it if it cannot be reused."""
        if self._closed or not session.reusable:
            self.retire(session)
            return
        entry = _Idle(session)
        loop = asyncio.get_running_loop()
        entry.timer = loop.call_later(self._idle_timeout, self._expire, site, entry)
        self._idle.setdefault(site, []).append(entry)

    def retire(self, session: S) -> None:
        """QUIT and close in the background."""
        task = asyncio.get_running_loop().create_task(session.quit())
        self._quitting.add(task)
        task.add_done_callback(self._quitting.discard)

    def idle(self, site: str) -> int:
        return sum(1 for entry in self._idle.get(site, []) if entry.session.reusable)

    async def close(self) -> None:
        """Retire every idle session and wait for all the QUITs under way."""
        self._closed = True
        for site in list(self._idle):
            for entry in self._idle.pop(site):
                if entry.timer is not None:
                    entry.timer.cancel()
                self.retire(entry.session)
        if self._quitting:
            await asyncio.gather(*self._quitting)

    def _expire(self, site: str, entry: _Idle[S]) -> None:
        entries = self._idle.get(site, [])
        if entry in entries:
            entries.remove(entry)
            self._forget_if_empty(site)
            self.retire(entry.session)

    def _forget_if_empty(self, site: str) -> None:
        if site in self._idle and not self._idle[site]:
            del self._idle[site]
