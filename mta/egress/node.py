"""A node's egress side, built from the config: live shaping rules, throttles and leases
(memory or Redis), and automation (on the node, or through TSA daemons)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mta.config import Config

from .limits import build_limits
from .rules import NodeRules

logger = logging.getLogger(__name__)


class Egress:
    """Owns what the delivery engine consults before each connection and message."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules = NodeRules(config)
        self.limits = build_limits(config.redis)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.rules.watch(), name="shaping-files"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.limits.close()
