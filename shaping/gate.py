"""What the delivery engine asks before opening a connection and before each message.

``path`` is the ready queue's name (egress source and site, e.g. ``"ip-1->mx.example"``);
limits named in ``additional_*`` options (and provider limits) are shared by every path
that names them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from types import TracebackType
from typing import Final

from .leases import Lease, Leases
from .options import EgressPathConfig
from .throttle import Throttle, ThrottleResult

logger = logging.getLogger("shaping")

# A connection lease outlives a dead node by at most this long; holders extend it every
# third of it, so one missed extension (a slow Redis) does not lose the slot.
DEFAULT_LEASE_TTL: Final = 60.0
EXTEND_EVERY: Final = 1 / 3
# When every slot is taken, nothing says when one frees up: poll again after this long
# (KumoMTA waits 3 s between attempts).
LEASE_RETRY_AFTER: Final = 3.0
UNLIMITED: Final = ThrottleResult(
    throttled=False, retry_after=0.0, remaining=2**31, reset_after=0.0
)


def connection_limit_key(path: str, name: str | None) -> str:
    return f"mta.connection_limit.{path}" if name is None else name


def connection_rate_key(path: str) -> str:
    return f"mta.max_connection_rate.{path}"


def message_rate_key(path: str, name: str | None) -> str:
    return f"mta.max_message_rate.{path}" if name is None else name


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """No connection now: ``reason`` for the queue state, retry after ``retry_after`` s;
    ``at_limit`` when a connection limit refused (a connection closing frees a place)."""

    reason: str
    retry_after: float
    at_limit: bool = False


class ConnectionGrant:
    """The leases behind one open connection.

    Use as ``async with grant:`` around the connection's life: it extends the leases in
    the background and releases them at the end. ``lost`` turns true if a lease expired
    under us (the connection should finish its message and close).
    """

    def __init__(self, leases: Leases, held: list[Lease], ttl: float) -> None:
        self._leases = leases
        self.held = tuple(held)
        self._ttl = ttl
        self._keeper: asyncio.Task[None] | None = None
        self.lost = False

    async def __aenter__(self) -> ConnectionGrant:
        if self.held:
            self._keeper = asyncio.create_task(self._keep_alive(), name="shaping-lease-keeper")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        await asyncio.shield(self.release())

    async def extend(self) -> bool:
        """Extend every lease now; False if any had been lost."""
        kept = [await self._leases.extend(lease) for lease in self.held]
        self.lost = self.lost or not all(kept)
        return all(kept)

    async def release(self) -> None:
        held, self.held = self.held, ()
        for lease in held:
            await self._leases.release(lease)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self._ttl * EXTEND_EVERY)
            was_lost = self.lost
            if not await self.extend() and not was_lost:
                logger.warning("connection lease lost: %s", ", ".join(x.key for x in self.held))


class Shaper:
    """Connection and message admission for egress paths, over a throttle and leases
    (memory ones for a single node; the Resilient* Redis ones for a cluster)."""

    def __init__(
        self, throttle: Throttle, leases: Leases, *, lease_ttl: float = DEFAULT_LEASE_TTL
    ) -> None:
        self.throttle = throttle
        self.leases = leases
        self.lease_ttl = lease_ttl

    async def acquire_connection(
        self, path: str, config: EgressPathConfig
    ) -> ConnectionGrant | Refusal:
        """Before opening a connection: take a lease of every connection limit (smallest
        first), then pass ``max_connection_rate``. Gives back what it took on refusal."""
        taken: list[Lease] = []
        for name, limit in config.connection_limits():
            key = connection_limit_key(path, name)
            lease = await self.leases.acquire(key, limit, self.lease_ttl)
            if lease is None:
                await ConnectionGrant(self.leases, taken, self.lease_ttl).release()
                return Refusal(
                    f"connection limit {key} ({limit}) reached", LEASE_RETRY_AFTER, at_limit=True
                )
            taken.append(lease)
        grant = ConnectionGrant(self.leases, taken, self.lease_ttl)
        spec = config.max_connection_rate
        if spec is not None:
            rate = await self.throttle.check(connection_rate_key(path), spec)
            if rate.throttled:
                await grant.release()
                return Refusal(f"max_connection_rate {spec}", rate.retry_after)
        return grant

    async def check_message(
        self, path: str, config: EgressPathConfig, quantity: int = 1
    ) -> ThrottleResult:
        """Before sending a message (``quantity``: messages in the batch): every message
        rate of the path, slowest first; the first that throttles is returned."""
        result = UNLIMITED
        for name, spec in config.message_throttles():
            result = await self.throttle.check(message_rate_key(path, name), spec, quantity)
            if result.throttled:
                return result
        return result
