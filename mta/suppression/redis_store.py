"""The suppression list in Redis, shared by every node of a cluster (`[redis] url`).

One hash per tenant, `mta:suppression` for the default tenant and `mta:suppression:<tenant>`
for the others; field = normalized recipient, value = the entry as JSON with its expiry time.
Redis 7.0 has no per-field TTL (HEXPIRE came in 7.4), so an expired field is ignored when read
and deleted then; each hash also gets a key TTL of its longest entry, so a tenant that stops
sending leaves nothing behind. Every call is bounded by `timeout` and raises StoreUnavailable.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from redis.exceptions import RedisError

from mta.suppression.entry import Entry, StoreUnavailable
from mta.suppression.store import ALL_TENANTS, TenantFilter

logger = logging.getLogger(__name__)

KEY_PREFIX = "mta:suppression"
SCAN_COUNT = 100
T = TypeVar("T")


def tenant_hash(tenant: str | None) -> str:
    """The hash holding `tenant`'s entries."""
    return f"{KEY_PREFIX}:{tenant}" if tenant else KEY_PREFIX


class RedisStore:
    """Entries in Redis hashes (see the module docstring); `client` is a redis.asyncio client."""

    def __init__(self, client: Any, *, timeout: float) -> None:
        self._client = client
        self._timeout = timeout

    async def open(self) -> None:
        """Nothing to load: a node starts even while Redis is away."""

    async def close(self) -> None:
        """The client belongs to the node's egress limits, which close it."""

    async def get(self, tenant: str | None, recipient: str, now: float) -> Entry | None:
        key = tenant_hash(tenant)
        raw = await self._call(lambda: self._client.hget(key, recipient))
        entry = _decode(raw)
        if entry is not None and entry.expired(now):
            await self._call(lambda: self._client.hdel(key, recipient))
            return None
        return entry

    async def put(self, entry: Entry) -> None:
        key = tenant_hash(entry.tenant)
        ttl = max(1, int(entry.expires - entry.created) + 1)

        async def write() -> None:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hset(key, entry.recipient, orjson.dumps(entry.to_storage()))
                # NX sets a TTL on a new hash; GT lengthens it for a longer-lived entry.
                pipe.expire(key, ttl, nx=True)
                pipe.expire(key, ttl, gt=True)
                await pipe.execute()

        await self._call(write)

    async def remove(self, tenant: str | None, recipient: str) -> bool:
        removed = await self._call(lambda: self._client.hdel(tenant_hash(tenant), recipient))
        return bool(removed)

    async def entries(self, tenant: TenantFilter, recipient: str | None, now: float) -> list[Entry]:
        keys = await self._keys() if tenant is ALL_TENANTS else [tenant_hash(tenant)]
        found: list[Entry] = []
        for key in keys:
            values = await self._call(functools.partial(self._values, key, recipient))
            entries = (_decode(value) for value in values)
            found.extend(e for e in entries if e is not None and not e.expired(now))
        return found

    async def _values(self, key: str, recipient: str | None) -> list[Any]:
        if recipient is not None:
            return [await self._client.hget(key, recipient)]
        return list((await self._client.hgetall(key)).values())

    async def purge(self, now: float) -> int:
        """Expired fields are deleted as they are read; nothing to sweep here."""
        return 0

    async def _keys(self) -> list[str]:
        async def scan() -> list[str]:
            keys = [KEY_PREFIX]
            async for key in self._client.scan_iter(match=f"{KEY_PREFIX}:*", count=SCAN_COUNT):
                keys.append(key.decode() if isinstance(key, bytes) else str(key))
            return keys

        return await self._call(scan)

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                return await operation()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc


def _decode(raw: Any) -> Entry | None:
    if raw is None:
        return None
    try:
        return Entry.from_storage(orjson.loads(raw))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        logger.warning("ignoring an unreadable suppression entry in Redis: %s", exc)
        return None
