"""Cancellation and large messages: a cancelled delivery leaves nothing behind."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.delivery.delivery_support import (
    EngineFactory,
    MxLayout,
    SinkFactory,
    job,
    mx1_delivery,
)


async def test_cancelled_delivery_drops_its_session(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx, sink_factory, make_engine, stall="RCPT", stall_seconds=5
    )

    task = asyncio.create_task(engine.deliver(site, job("a@example.com")))
    for _ in range(500):  # until the session is stalled at RCPT
        if any(cmd.startswith("RCPT") for cmd in sink.commands):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert engine.idle_connections(site.name) == 0
    sink.stall = None
    outcome = (await engine.deliver(site, job("b@example.com", msg_id="m2")))["b@example.com"]
    assert outcome.kind == "delivered"
    assert sink.connections == 2


async def test_large_message_arrives_intact(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine)
    line = b"." + b"x" * 76 + b"\r\n"  # every line needs stuffing
    data = b"Subject: big\r\n\r\n" + line * 60_000  # about 4.7 MB

    outcome = (await engine.deliver(site, job("a@example.com", data=data)))["a@example.com"]

    assert outcome.kind == "delivered"
    assert sink.messages[0].data == data


async def test_message_over_the_advertised_size_is_not_sent(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine, data_size_limit=1000)

    outcomes = await engine.deliver(site, job("a@example.com", data=b"x" * 2000 + b"\r\n"))

    assert (outcomes["a@example.com"].kind, outcomes["a@example.com"].reply.enhanced) == (
        "permanent",
        "5.3.4",
    )
    assert not any(cmd.startswith("MAIL") for cmd in sink.commands)
