"""Connection limits as leases: a holder counts against a limit until it releases its
lease or the lease expires, so a node that dies holding leases frees them after ``ttl``.

A holder extends its lease while the connection lives (every ttl/3 is plenty).
:class:`RedisLeases` keeps one sorted set per key (member: lease token, score: expiry
in ms by the Redis clock), as KumoMTA does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Final, Literal, Protocol

from redis.asyncio import Redis

from .redis_throttle import DEFAULT_REDIS_TIMEOUT

Clock = Callable[[], float]
Backend = Literal["memory", "redis"]
MS: Final = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Lease:
    """One held slot of ``key``; ``backend`` says which store holds it."""

    key: str
    token: str
    ttl: float
    backend: Backend


class Leases(Protocol):
    """Counted, expiring leases keyed by name."""

    async def acquire(self, key: str, limit: int, ttl: float) -> Lease | None:
        """A lease on ``key`` valid for ``ttl`` seconds, or None when ``limit`` are held."""
        ...

    async def extend(self, lease: Lease) -> bool:
        """Push the lease's expiry to now + ttl; False when it had already expired (its
        slot may have been taken by someone else)."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the slot back. Releasing twice, or an expired lease, is harmless."""
        ...

    async def count(self, key: str) -> int:
        """Leases currently held on ``key`` (for metrics and tests)."""
        ...


def new_token() -> str:
    return uuid.uuid4().hex


def check_lease_args(limit: int, ttl: float) -> None:
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    if ttl <= 0:
        raise ValueError(f"lease ttl must be positive, got {ttl}")


class MemoryLeases:
    """Leases in process memory (the embedded default and the Redis fallback)."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._sets: dict[str, dict[str, float]] = {}  # key -> token -> expires_at

    async def acquire(self, key: str, limit: int, ttl: float) -> Lease | None:
        check_lease_args(limit, ttl)
        members = self._live(key)
        if len(members) >= limit:
            return None
        lease = Lease(key, new_token(), ttl, "memory")
        members[lease.token] = self._clock() + ttl
        self._sets[key] = members
        return lease

    async def extend(self, lease: Lease) -> bool:
        members = self._live(lease.key)
        if lease.token not in members:
            return False
        members[lease.token] = self._clock() + lease.ttl
        return True

    async def release(self, lease: Lease) -> None:
        members = self._sets.get(lease.key)
        if members is not None:
            members.pop(lease.token, None)
            if not members:
                del self._sets[lease.key]

    async def count(self, key: str) -> int:
        return len(self._live(key))

    def _live(self, key: str) -> dict[str, float]:
        """The key's unexpired members (expired ones are dropped on the way)."""
        now = self._clock()
        members = {t: exp for t, exp in self._sets.get(key, {}).items() if exp > now}
        if members:
            self._sets[key] = members
        else:
            self._sets.pop(key, None)
        return members


# Shared prelude: `now` in ms from the Redis clock, so all nodes agree on expiry.
_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function keep_until_last(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', key, last[2]) end
end
"""
# KEYS[1] set; ARGV: limit, ttl_ms, token -> 1 acquired, 0 full. Atomic, so concurrent
# acquirers on any node can never push the count past the limit.
ACQUIRE_LUA: Final = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'NX', now + tonumber(ARGV[2]), ARGV[3])
keep_until_last(KEYS[1])
return 1
"""
)
# KEYS[1] set; ARGV: ttl_ms, token -> 1 extended, 0 lost (expired or released).
EXTEND_LUA: Final = (
    _NOW_MS
    + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score or tonumber(score) <= now then
  redis.call('ZREM', KEYS[1], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
keep_until_last(KEYS[1])
return 1
"""
)
COUNT_LUA: Final = _NOW_MS + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')\n"


class RedisLeases:
    """Leases shared by all nodes through Redis sorted sets; calls time out after
    ``timeout`` seconds (wrap in :class:`shaping.fallback.ResilientLeases`)."""

    def __init__(
        self, client: Redis, *, timeout: float = DEFAULT_REDIS_TIMEOUT, prefix: str = ""
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._prefix = prefix
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._extend = client.register_script(EXTEND_LUA)
        self._count = client.register_script(COUNT_LUA)

    async def acquire(self, key: str, limit: int, ttl: float) -> Lease | None:
        check_lease_args(limit, ttl)
        lease = Lease(key, new_token(), ttl, "redis")
        async with asyncio.timeout(self._timeout):
            got = await self._acquire(keys=[self._name(key)], args=[limit, _ms(ttl), lease.token])
        return lease if got else None

    async def extend(self, lease: Lease) -> bool:
        async with asyncio.timeout(self._timeout):
            kept = await self._extend(
                keys=[self._name(lease.key)], args=[_ms(lease.ttl), lease.token]
            )
        return bool(kept)

    async def release(self, lease: Lease) -> None:
        async with asyncio.timeout(self._timeout):
            await self._client.zrem(self._name(lease.key), lease.token)

    async def count(self, key: str) -> int:
        async with asyncio.timeout(self._timeout):
            return int(await self._count(keys=[self._name(key)]))

    def _name(self, key: str) -> str:
        return self._prefix + key


def _ms(seconds: float) -> int:
    return max(1, round(seconds * MS))
