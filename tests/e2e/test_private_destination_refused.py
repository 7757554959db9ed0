"""Without `allowed_private_networks`, an MX or an address literal in a private or local range
is bounced (550 5.4.4) and never connected to; a relay route there still works."""

from pathlib import Path

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings


async def test_private_destination_refused(tmp_path: Path, dns_server, sink_factory) -> None:
    host = unused_loopback_address()
    port = free_port(host)
    sink = await sink_factory(host=host, port=port)
    relayed = await sink_factory()
    dns_server.add("a.test", "MX", "10 mx.a.test.")
    dns_server.add("mx.a.test", "A", host)
    settings = node_settings(
        tmp_path,
        dns_port=dns_server.port,
        smtp_port=port,
        delivery={"allowed_private_networks": []},
        routes=[{"domains": ["routed.test"], "relay": f"127.0.0.1:{relayed.port}"}],
    )
    literal = f"carol@[{host}]"

    async with InProcessNode(settings) as node:
        await node.send("alice@example.org", ["bob@a.test", literal, "dave@routed.test"])
        [bounce] = await node.wait_for_record("Bounce", "bob@a.test")
        [literal_bounce] = await node.wait_for_record("Bounce", literal)
        await node.wait_for_record("Delivery", "dave@routed.test")

    for record in (bounce, literal_bounce):
        assert (record["response"]["code"], record["num_attempts"]) == (550, 1)
        assert record["response"]["enhanced_code"] == {"class": 5, "subject": 4, "detail": 4}
        assert "Destination address not allowed" in record["response"]["content"]
        assert record["peer_address"]["addr"] == host
    assert sink.connections == 0
    assert len(relayed.messages) == 1
