"""A domain without MX records but with an A record is its own mail host (RFC 5321 5.1)."""

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings


async def test_implicit_mx(tmp_path, dns_server, sink_factory) -> None:
    host = unused_loopback_address()
    port = free_port(host)
    sink = await sink_factory(host=host, port=port)
    dns_server.add("plain.example", "A", host)

    async with InProcessNode(
        node_settings(tmp_path, dns_port=dns_server.port, smtp_port=port)
    ) as node:
        await node.send("alice@example.org", ["bob@plain.example"])
        [received] = await sink.wait_for_messages(1)
        [delivery] = await node.wait_for_record("Delivery", "bob@plain.example")

    assert received.rcpt_tos == ["bob@plain.example"]
    assert delivery["peer_address"] == {"name": "plain.example", "addr": host}
