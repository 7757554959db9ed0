"""Destinations in private or local ranges are refused unless allowed or routed."""

from __future__ import annotations

from mta.config import RouteConfig
from tests.integration.delivery.delivery_support import EngineFactory, MxLayout, SinkFactory, job


async def test_an_mx_that_resolves_to_loopback_is_refused_permanently(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    mx1 = await sink_factory(host=mx.mx1, port=mx.port)
    mx2 = await sink_factory(host=mx.mx2, port=mx.port)
    engine = make_engine(mx.port, allowed_private_networks=())
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "permanent"
    assert (outcome.reply.code, outcome.reply.enhanced) == (550, "5.4.4")
    assert "Destination address not allowed" in outcome.reply.text
    assert outcome.peer is not None and outcome.peer.addr in (mx.mx1, mx.mx2)
    assert (mx1.connections, mx2.connections) == (0, 0)  # never even connected


async def test_allowed_private_networks_open_only_what_they_list(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    mx1 = await sink_factory(host=mx.mx1, port=mx.port)
    mx2 = await sink_factory(host=mx.mx2, port=mx.port)
    engine = make_engine(mx.port, allowed_private_networks=(f"{mx.mx2}/32",))
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered"
    assert outcome.peer is not None and outcome.peer.name == "mx2.example.com"
    assert (mx1.connections, len(mx2.messages)) == (0, 1)


async def test_a_refused_host_next_to_one_that_is_down_is_transient(
    mx: MxLayout, make_engine: EngineFactory
) -> None:
    # mx1 is refused, mx2 is allowed but nothing listens there: mx2 may come back.
    engine = make_engine(mx.port, allowed_private_networks=(f"{mx.mx2}/32",))
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert (outcome.kind, outcome.reply.enhanced) == ("transient", "4.4.1")


async def test_an_address_literal_follows_the_same_rule(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(host=mx.mx1, port=mx.port)
    refusing = make_engine(mx.port, allowed_private_networks=())
    allowing = make_engine(mx.port)  # the helper allows 127.0.0.0/8
    rcpt = f"a@[{mx.mx1}]"

    refused = await refusing.deliver(await refusing.site_for(f"[{mx.mx1}]", None), job(rcpt))
    delivered = await allowing.deliver(await allowing.site_for(f"[{mx.mx1}]", None), job(rcpt))

    assert (refused[rcpt].kind, refused[rcpt].reply.enhanced) == ("permanent", "5.4.4")
    assert delivered[rcpt].kind == "delivered"
    assert sink.connections == 1


async def test_a_relay_route_is_an_operator_choice_and_allowed(
    sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory()
    engine = make_engine(sink.port, allowed_private_networks=())
    site = await engine.site_for("x.test", RouteConfig(relay=f"127.0.0.1:{sink.port}"))

    outcome = (await engine.deliver(site, job("a@x.test")))["a@x.test"]

    assert outcome.kind == "delivered" and len(sink.messages) == 1
