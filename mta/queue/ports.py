"""What the queue manager needs from its neighbours, and what it offers its administrator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

Key = tuple[str, str]  # (message id, recipient domain): one leg
RecoveryHandler = Callable[[str, dict[str, Any]], None]


class SpoolLike(Protocol):
    async def update(self, msg_id: str, meta: Any) -> None: ...
    def remove_soon(self, msg_id: str) -> asyncio.Future[None]: ...
    def read(self, msg_id: str) -> bytes: ...


class AdminGate(Protocol):
    """An administrator's rules; True means the rule took the leg (bounced or held it)."""

    async def take(self, key: Key) -> bool: ...  # at promotion and when a worker takes it

    async def take_requeued(self, key: Key) -> bool: ...  # before a retry is scheduled

    def ready_suspended(self, name: str) -> bool: ...


class RecoveredLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def meta(self) -> dict[str, Any]: ...
