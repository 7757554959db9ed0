"""Shared fixtures: a scriptable DNS server and SMTP sinks on loopback."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # make `tests.support` importable however pytest is run
    sys.path.insert(0, _ROOT)

from tests.support.dns_server import TestDNSServer  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.smtp_sink import ScriptedSink  # noqa: E402

SinkFactory = Callable[..., Awaitable[ScriptedSink]]


@pytest.fixture
async def dns_server() -> AsyncIterator[TestDNSServer]:
    """A started TestDNSServer on 127.0.0.1 (UDP+TCP, one port), stopped after the test."""
    async with TestDNSServer() as server:
        yield server


@pytest.fixture
async def sink_factory() -> AsyncIterator[SinkFactory]:
    """``await sink_factory(host="127.0.0.1", port=0, **script)`` -> a started ScriptedSink.

    Every sink made is stopped at teardown.
    """
    sinks: list[ScriptedSink] = []

    async def make(host: str = "127.0.0.1", port: int = 0, **script: Any) -> ScriptedSink:
        sink = ScriptedSink(host, port, **script)
        await sink.start()
        sinks.append(sink)
        return sink

    yield make
    for sink in reversed(sinks):
        await sink.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started redis-server on 127.0.0.1 and a free port (no persistence), stopped at
    teardown; the test may ``kill()``/``stop()`` and ``start()`` it again on that port."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()
