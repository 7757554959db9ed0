"""At a site's connection limit, a delivery waits for one of this node's connections to come
back instead of putting its message off for the lease's retry time (handoff.py)."""

from __future__ import annotations

import asyncio

import pytest

from mta.delivery import PathThrottled
from shaping.gate import connection_limit_key
from tests.integration.delivery.delivery_support import (
    EngineFactory,
    MxLayout,
    SinkFactory,
    job,
)


async def test_waits_for_a_pooled_connection_at_the_limit(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(host=mx.mx1, port=mx.port, stall="DATA", stall_seconds=0.2)
    engine = make_engine(mx.port, connection_limit=1)
    site = await engine.site_for("example.com", None)

    results = await asyncio.gather(
        *(engine.deliver(site, job(f"r{n}@example.com", msg_id=f"m{n}")) for n in range(3))
    )

    assert [next(iter(r.values())).kind for r in results] == ["delivered"] * 3
    assert sink.connections == 1  # each waited for the one connection, none was refused
    assert len(sink.messages) == 3


async def test_waits_for_a_retired_connection_to_close(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(host=mx.mx1, port=mx.port)
    engine = make_engine(mx.port, connection_limit=1, max_deliveries_per_connection=1)
    site = await engine.site_for("example.com", None)

    results = await asyncio.gather(
        *(engine.deliver(site, job(f"r{n}@example.com", msg_id=f"m{n}")) for n in range(3))
    )

    assert [next(iter(r.values())).kind for r in results] == ["delivered"] * 3
    assert sink.connections == 3  # one at a time: each opened once the previous had quit
    assert sink.commands.count("QUIT") >= 2


async def test_limit_held_elsewhere_is_refused_at_once(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(host=mx.mx1, port=mx.port)
    engine = make_engine(mx.port, connection_limit=1)
    site = await engine.site_for("example.com", None)
    # Another node of the cluster holds the only place: nothing of ours will free it.
    lease = await engine.shaper.leases.acquire(connection_limit_key(site.name, None), 1, 60.0)
    assert lease is not None

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(PathThrottled):
        await engine.deliver(site, job("a@example.com"))

    assert loop.time() - started < 0.5
    assert sink.connections == 0
