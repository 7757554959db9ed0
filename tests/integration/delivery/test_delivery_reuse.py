"""Connection reuse: pooled sessions per site, their limits, idle timeout and dead sessions."""

from __future__ import annotations

import asyncio

from mta.config import RouteConfig
from tests.integration.delivery.delivery_support import (
    EngineFactory,
    MxLayout,
    SinkFactory,
    job,
    mx1_delivery,
)
from tests.support.smtp_sink import ScriptedSink


async def test_two_jobs_share_one_connection(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine)

    first = await engine.deliver(site, job("a@example.com", msg_id="m1"))
    assert engine.idle_connections(site.name) == 1
    second = await engine.deliver(site, job("b@example.com", msg_id="m2"))

    assert first["a@example.com"].kind == second["b@example.com"].kind == "delivered"
    assert len(sink.messages) == 2
    assert sink.connections == 1
    assert "RSET" not in sink.commands  # a completed transaction needs no reset


async def test_max_deliveries_per_connection(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(host=mx.mx1, port=mx.port)
    engine = make_engine(mx.port, max_deliveries_per_connection=1)
    site = await engine.site_for("example.com", None)

    await engine.deliver(site, job("a@example.com", msg_id="m1"))
    assert engine.idle_connections(site.name) == 0
    await engine.deliver(site, job("b@example.com", msg_id="m2"))

    assert len(sink.messages) == 2
    assert sink.connections == 2


async def test_concurrent_deliveries_use_separate_sessions(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx, sink_factory, make_engine, stall="DATA", stall_seconds=0.3
    )

    results = await asyncio.gather(
        *(engine.deliver(site, job(f"r{n}@example.com", msg_id=f"m{n}")) for n in range(3))
    )

    assert [next(iter(r.values())).kind for r in results] == ["delivered"] * 3
    assert sink.connections == 3
    assert engine.idle_connections(site.name) == 3
    sink.stall = None
    await engine.deliver(site, job("again@example.com", msg_id="m4"))
    assert sink.connections == 3  # reused one of the three


async def test_server_421_ends_reuse(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx, sink_factory, make_engine, data_replies=["421 4.7.0 too many messages, bye"]
    )

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]
    assert (outcome.kind, outcome.reply.code) == ("transient", 421)
    assert engine.idle_connections(site.name) == 0

    outcome = (await engine.deliver(site, job("a@example.com", msg_id="m2")))["a@example.com"]
    assert outcome.kind == "delivered"
    assert sink.connections == 2


async def test_idle_sessions_are_closed_after_idle_timeout(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(host=mx.mx1, port=mx.port)
    engine = make_engine(mx.port, idle_timeout=0.2)
    site = await engine.site_for("example.com", None)

    await engine.deliver(site, job("a@example.com"))
    assert engine.idle_connections(site.name) == 1
    await asyncio.sleep(0.5)

    assert engine.idle_connections(site.name) == 0
    assert sink.commands[-1] == "QUIT"


async def test_close_quits_pooled_sessions(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine)
    await engine.deliver(site, job("a@example.com"))

    await engine.close()

    assert engine.idle_connections(site.name) == 0
    assert sink.commands[-1] == "QUIT"


async def test_pooled_session_closed_by_the_server_is_replaced(
    mx: MxLayout, make_engine: EngineFactory
) -> None:
    engine = make_engine(mx.port)
    site = await engine.site_for("example.com", None)
    async with ScriptedSink(mx.mx1, mx.port) as first:
        await engine.deliver(site, job("a@example.com"))
        assert engine.idle_connections(site.name) == 1
    # the server went away (and came back) while the session sat in the pool
    async with ScriptedSink(mx.mx1, mx.port) as second:
        outcome = (await engine.deliver(site, job("b@example.com", msg_id="m2")))["b@example.com"]

        assert outcome.kind == "delivered"
        assert [m.rcpt_tos for m in first.messages] == [["a@example.com"]]
        assert [m.rcpt_tos for m in second.messages] == [["b@example.com"]]


async def test_pooled_session_refused_at_mail_is_retried_on_a_new_connection(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine)
    await engine.deliver(site, job("a@example.com"))

    sink.mail_replies = ["421 4.4.2 idle too long, closing"]
    outcome = (await engine.deliver(site, job("b@example.com", msg_id="m2")))["b@example.com"]

    assert outcome.kind == "delivered"
    assert sink.connections == 2
    assert [m.rcpt_tos for m in sink.messages] == [["a@example.com"], ["b@example.com"]]


async def test_pools_are_per_site(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    mx1 = await sink_factory(host=mx.mx1, port=mx.port)
    relay = await sink_factory(host="127.0.0.1", port=0)
    engine = make_engine(mx.port)

    mx_site = await engine.site_for("example.com", None)
    relay_site = await engine.site_for("x.test", RouteConfig(relay=f"127.0.0.1:{relay.port}"))
    await engine.deliver(mx_site, job("a@example.com"))
    await engine.deliver(relay_site, job("b@x.test"))

    assert engine.idle_connections(mx_site.name) == 1
    assert engine.idle_connections(relay_site.name) == 1
    assert (len(mx1.messages), len(relay.messages)) == (1, 1)
