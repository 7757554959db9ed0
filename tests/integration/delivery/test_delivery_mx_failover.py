"""Delivery through MX records to real sinks, and failover between MX hosts in one attempt."""

from __future__ import annotations

import pytest

from mta.config import RouteConfig
from mta.delivery import PeerAddress, SiteError
from tests.integration.delivery.delivery_support import (
    EngineFactory,
    MxLayout,
    SinkFactory,
    job,
)
from tests.support.dns_server import TestDNSServer
from tests.support.net import free_port, unused_loopback_address


async def test_delivered_to_the_most_preferred_mx(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    mx1 = await sink_factory(host=mx.mx1, port=mx.port)
    mx2 = await sink_factory(host=mx.mx2, port=mx.port)
    engine = make_engine(mx.port)

    site = await engine.site_for("example.com", None)
    outcomes = await engine.deliver(site, job("rcpt@example.com"))

    outcome = outcomes["rcpt@example.com"]
    assert outcome.kind == "delivered"
    assert outcome.command == "."
    assert outcome.peer == PeerAddress("mx1.example.com", mx.mx1)
    [message] = mx1.messages
    assert (message.mail_from, message.rcpt_tos, message.ehlo) == (
        "sender@origin.test",
        ["rcpt@example.com"],
        "mta.test",
    )
    assert message.data == b"Subject: test\r\n\r\nHello\r\n"
    assert mx2.connections == 0


async def test_refused_connection_fails_over_to_mx2(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    mx2 = await sink_factory(host=mx.mx2, port=mx.port)  # nothing listens on mx1
    engine = make_engine(mx.port)

    site = await engine.site_for("example.com", None)
    outcomes = await engine.deliver(site, job("rcpt@example.com"))

    assert outcomes["rcpt@example.com"].kind == "delivered"
    assert outcomes["rcpt@example.com"].peer == PeerAddress("mx2.example.com", mx.mx2)
    assert len(mx2.messages) == 1


@pytest.mark.parametrize(
    "script",
    [
        {"greeting": "421 4.3.2 busy"},
        {"greeting": "554 5.7.1 no service"},
        {"drop_after": "CONNECT"},
        {"drop_after": "EHLO"},
        {"ehlo_reply": "421 4.3.2 going away"},
        {"stall": "CONNECT", "stall_seconds": 5},
    ],
    ids=["greeting-421", "greeting-554", "drop-connect", "drop-ehlo", "ehlo-421", "stall"],
)
async def test_unusable_mx1_fails_over_to_mx2_in_one_attempt(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, script: dict[str, object]
) -> None:
    mx1 = await sink_factory(host=mx.mx1, port=mx.port, **script)
    mx2 = await sink_factory(host=mx.mx2, port=mx.port)
    engine = make_engine(mx.port, connect_timeout=0.5)

    site = await engine.site_for("example.com", None)
    outcomes = await engine.deliver(site, job("rcpt@example.com"))

    assert outcomes["rcpt@example.com"].kind == "delivered"
    assert mx1.connections == 1 and not mx1.messages
    assert len(mx2.messages) == 1


async def test_every_mx_refusing_gives_a_transient_outcome_naming_the_host(
    mx: MxLayout, make_engine: EngineFactory
) -> None:
    engine = make_engine(mx.port)  # no sink anywhere

    site = await engine.site_for("example.com", None)
    outcomes = await engine.deliver(site, job("a@example.com", "b@example.com"))

    assert set(outcomes) == {"a@example.com", "b@example.com"}
    outcome = outcomes["a@example.com"]
    assert outcome.kind == "transient"
    assert (outcome.reply.code, outcome.reply.enhanced) == (451, "4.4.1")
    # mx2 is tried last: its error is the one reported
    assert outcome.reply.text == f"connection refused by mx2.example.com[{mx.mx2}]"
    assert outcome.peer == PeerAddress("mx2.example.com", mx.mx2)


async def test_permanent_greetings_from_every_mx_stay_transient(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    await sink_factory(host=mx.mx1, port=mx.port, greeting="554 5.7.1 go away")
    await sink_factory(host=mx.mx2, port=mx.port, greeting="554 5.7.1 go away")
    engine = make_engine(mx.port)

    site = await engine.site_for("example.com", None)
    outcome = (await engine.deliver(site, job("rcpt@example.com")))["rcpt@example.com"]

    assert outcome.kind == "transient"
    assert (outcome.reply.code, outcome.reply.enhanced) == (451, "4.7.1")
    assert "refused to talk to me: 554 5.7.1 go away" in outcome.reply.text
    assert outcome.command == "connect"


async def test_mx_host_without_address_is_skipped(
    dns_server: TestDNSServer, mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    dns_server.fail("mx1.example.com", "SERVFAIL")
    mx2 = await sink_factory(host=mx.mx2, port=mx.port)
    engine = make_engine(mx.port)

    site = await engine.site_for("example.com", None)
    outcomes = await engine.deliver(site, job("rcpt@example.com"))

    assert outcomes["rcpt@example.com"].kind == "delivered"
    assert len(mx2.messages) == 1


async def test_equal_preference_hosts_share_the_load(
    dns_server: TestDNSServer, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    first, second = unused_loopback_address(), unused_loopback_address()
    port = free_port(first, second)
    dns_server.add("equal.test", "MX", "10 a.equal.test.", "10 b.equal.test.")
    dns_server.add("a.equal.test", "A", first)
    dns_server.add("b.equal.test", "A", second)
    sinks = [await sink_factory(host=h, port=port) for h in (first, second)]
    engine = make_engine(port, max_deliveries_per_connection=1)

    site = await engine.site_for("equal.test", None)
    assert site.hosts == (("a.equal.test", "b.equal.test"),)
    for n in range(16):
        await engine.deliver(site, job("rcpt@equal.test", msg_id=f"m{n}"))

    # 16 fresh connections picking at random: both hosts are used (p(miss) = 2**-15)
    assert all(sink.connections > 0 for sink in sinks)
    assert sum(len(sink.messages) for sink in sinks) == 16


async def test_implicit_mx_delivers_to_the_domain_address(
    dns_server: TestDNSServer, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    address = unused_loopback_address()
    port = free_port(address)
    dns_server.add("nomx.test", "A", address)
    sink = await sink_factory(host=address, port=port)
    engine = make_engine(port)

    site = await engine.site_for("nomx.test", None)
    outcomes = await engine.deliver(site, job("rcpt@nomx.test"))

    assert site.name == "nomx.test"
    assert site.hosts == (("nomx.test",),)
    assert outcomes["rcpt@nomx.test"].kind == "delivered"
    assert len(sink.messages) == 1


async def test_relay_route_skips_mx_lookup(
    dns_server: TestDNSServer, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    relay = await sink_factory(host="127.0.0.1", port=0)
    engine = make_engine(25)
    route = RouteConfig(domains=("*",), relay=f"127.0.0.1:{relay.port}")

    site = await engine.site_for("anywhere.test", route)
    outcomes = await engine.deliver(site, job("rcpt@anywhere.test"))

    assert site.name == f"relay:127.0.0.1:{relay.port}"
    assert (site.hosts, site.port) == ((("127.0.0.1",),), relay.port)
    assert outcomes["rcpt@anywhere.test"].kind == "delivered"
    assert sum(dns_server.queries.values()) == 0


async def test_relay_host_name_uses_the_system_resolver(
    dns_server: TestDNSServer, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    # "localhost" comes from the hosts file, which the MX resolver never reads
    relay = await sink_factory(host="127.0.0.1", port=0)
    engine = make_engine(25)

    site = await engine.site_for("anywhere.test", RouteConfig(relay=f"localhost:{relay.port}"))
    outcome = (await engine.deliver(site, job("rcpt@anywhere.test")))["rcpt@anywhere.test"]

    assert site.name == f"relay:localhost:{relay.port}"
    assert outcome.kind == "delivered"
    assert outcome.peer == PeerAddress("localhost", "127.0.0.1")
    assert sum(dns_server.queries.values()) == 0


async def test_relay_pointing_at_this_node_is_a_mail_loop(make_engine: EngineFactory) -> None:
    engine = make_engine(25, own_addresses=[("0.0.0.0", 2525)])

    with pytest.raises(SiteError) as caught:
        await engine.site_for("anywhere.test", RouteConfig(relay="127.0.0.1:2525"))

    assert caught.value.reply.enhanced == "5.4.6"
