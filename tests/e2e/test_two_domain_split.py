"""A message for two domains is split: each domain has its own queue, outcome and retries."""

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings


async def test_two_domain_message_is_split(tmp_path, dns_server, sink_factory) -> None:
    mx_a, mx_b = unused_loopback_address(), unused_loopback_address()
    port = free_port(mx_a, mx_b)
    sink_a = await sink_factory(host=mx_a, port=port)
    sink_b = await sink_factory(
        host=mx_b, port=port, data_replies=["451 4.7.0 greylisted, come back later"]
    )
    dns_server.add("a.example", "MX", "10 mx.a.example.")
    dns_server.add("mx.a.example", "A", mx_a)
    dns_server.add("b.example", "MX", "10 mx.b.example.")
    dns_server.add("mx.b.example", "A", mx_b)

    async with InProcessNode(
        node_settings(tmp_path, dns_port=dns_server.port, smtp_port=port)
    ) as node:
        await node.send("alice@example.org", ["one@a.example", "two@a.example", "three@b.example"])
        [at_a] = await sink_a.wait_for_messages(1)
        await node.wait_for_record("TransientFailure", "three@b.example")
        [at_b] = await sink_b.wait_for_messages(1)
        await node.wait_for_record("Delivery", "three@b.example")

    assert sorted(at_a.rcpt_tos) == ["one@a.example", "two@a.example"]
    assert at_b.rcpt_tos == ["three@b.example"]
    deliveries = {r["recipient"]: r for r in node.of_type("Delivery")}
    assert deliveries["one@a.example"]["queue"] == "a.example"
    assert deliveries["three@b.example"]["queue"] == "b.example"
    assert deliveries["one@a.example"]["num_attempts"] == 1
    assert deliveries["three@b.example"]["num_attempts"] == 2
    assert len({r["id"] for r in deliveries.values()}) == 1
    assert len(node.node.spool) == 0
