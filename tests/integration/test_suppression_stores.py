"""The suppression stores on real parts: SQLite files (across a SIGKILL) and a real Redis."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from mta.config import RedisConfig, SuppressionConfig
from mta.egress.limits import redis_client
from mta.suppression import ALL_TENANTS, Entry, LocalStore, RedisStore, Suppression
from mta.suppression.redis_store import tenant_hash
from mta.units import Duration
from tests.support.redis_server import RedisServer

NOW = 1_700_000_000.0
TIMEOUT = 0.3


def entry(recipient: str, tenant: str | None = None, ttl: float = 3600.0) -> Entry:
    return Entry(tenant, recipient, "550 5.1.1 user unknown", "InvalidRecipient", "bounce",
                 NOW, NOW + ttl)  # fmt: skip


async def test_local_store_keeps_entries_across_reopening(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    await store.open()
    await store.put(entry("bob@example.com"))
    await store.put(entry("bob@example.com", tenant="acme", ttl=10))
    await store.put(entry("carol@example.com"))
    assert await store.remove(None, "carol@example.com")
    assert not await store.remove(None, "carol@example.com")
    await store.close()

    again = LocalStore(tmp_path)
    await again.open()
    assert len(again) == 2
    assert await again.get(None, "bob@example.com", NOW) == entry("bob@example.com")
    assert await again.get("acme", "bob@example.com", NOW + 9) is not None
    assert await again.get("acme", "bob@example.com", NOW + 10) is None  # expired
    assert await again.get("other", "bob@example.com", NOW) is None  # tenants are apart
    assert await again.get(None, "carol@example.com", NOW) is None
    assert [e.tenant for e in await again.entries(ALL_TENANTS, None, NOW)] == [None, "acme"]
    assert await again.purge(NOW + 10) == 1
    await again.close()

    third = LocalStore(tmp_path)
    await third.open()
    assert [e.recipient for e in await third.entries(ALL_TENANTS, None, NOW)] == ["bob@example.com"]
    await third.close()


def test_local_store_entry_survives_sigkill(tmp_path: Path) -> None:
    """The write is durable when put() returns: the process dies at once, by SIGKILL."""
    child = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from pathlib import Path
        from mta.suppression import Entry, LocalStore

        async def main():
            store = LocalStore(Path({str(tmp_path)!r}))
            await store.open()
            await store.put(Entry(None, "bob@example.com", "gone", "InvalidRecipient",
                                  "bounce", 1.0, 4e9))
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", child], timeout=30, check=False)
    assert result.returncode == -9

    async def read() -> Entry | None:
        store = LocalStore(tmp_path)
        await store.open()
        try:
            return await store.get(None, "bob@example.com", NOW)
        finally:
            await store.close()

    found = asyncio.run(read())
    assert found is not None and found.reason == "gone"


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = redis_client(RedisConfig(url=redis_server.url, timeout=Duration(TIMEOUT)))
    assert isinstance(client, Redis)
    yield client
    await client.aclose()


async def test_redis_store_per_tenant_hashes(redis: Redis) -> None:
    store = RedisStore(redis, timeout=TIMEOUT)
    await store.put(entry("bob@example.com"))
    await store.put(entry("bob@example.com", tenant="acme", ttl=60))
    await store.put(entry("dave@example.com", tenant="acme", ttl=7200))

    assert await store.get(None, "bob@example.com", NOW) == entry("bob@example.com")
    assert await store.get("zeta", "bob@example.com", NOW) is None
    assert await redis.hlen(tenant_hash("acme")) == 2
    # The hash lives as long as its longest entry (GT lengthened the first TTL).
    assert 3600 < await redis.ttl(tenant_hash("acme")) <= 7201

    listed = await store.entries(ALL_TENANTS, None, NOW)
    assert sorted((e.tenant or "", e.recipient) for e in listed) == [
        ("", "bob@example.com"),
        ("acme", "bob@example.com"),
        ("acme", "dave@example.com"),
    ]
    assert [e.tenant for e in await store.entries("acme", "dave@example.com", NOW)] == ["acme"]
    assert await store.entries(None, "dave@example.com", NOW) == []

    # An expired field is not returned, and is deleted when read.
    assert await store.get("acme", "bob@example.com", NOW + 60) is None
    assert await redis.hexists(tenant_hash("acme"), "bob@example.com") == 0
    assert await store.remove("acme", "dave@example.com")
    assert not await store.remove("acme", "dave@example.com")


async def test_suppression_fails_open_while_redis_is_away(
    redis: Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    suppression = Suppression(SuppressionConfig(), RedisStore(redis, timeout=TIMEOUT))
    await suppression.start()
    try:
        await suppression.add("Bob@Example.com", None, "550 5.1.1 user unknown", "InvalidRecipient")
        found = await suppression.check("bob@example.com", None)
        assert found is not None and found.recipient == "bob@example.com"
        assert suppression.refused == 1

        redis_server.pause()  # a hung server: only the timeout ends each call
        try:
            with caplog.at_level(logging.WARNING, logger="mta.suppression.service"):
                assert await suppression.check("bob@example.com", None) is None
                assert await suppression.check("bob@example.com", None) is None
        finally:
            redis_server.resume()
        assert suppression.fail_open == 2
        assert suppression.errors["lookup"] == 2
        unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(unavailable) == 1  # once per outage

        assert await suppression.check("bob@example.com", None) is not None
        assert any("available again" in r.getMessage() for r in caplog.records)
    finally:
        await suppression.close()
