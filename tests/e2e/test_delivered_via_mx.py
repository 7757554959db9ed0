"""A message accepted over SMTP is delivered to the MX the test DNS server names."""

from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import mx_sink


async def test_delivered_via_mx(tmp_path, dns_server, sink_factory) -> None:
    target = await mx_sink(dns_server, sink_factory, "example.com")
    sink, port = target.sink, target.port

    async with InProcessNode(
        node_settings(tmp_path, dns_port=dns_server.port, smtp_port=port)
    ) as node:
        refused, reply = await node.send("alice@example.org", ["bob@example.com"])
        assert refused == {}
        assert reply.startswith("2.0.0 OK queued as ")
        [received] = await sink.wait_for_messages(1)
        delivery = (await node.wait_for_record("Delivery", "bob@example.com"))[0]

    assert received.mail_from == "alice@example.org"
    assert received.rcpt_tos == ["bob@example.com"]
    assert received.data.startswith(b"Received: from ")
    assert b"Subject: test" in received.data
    assert b"\r\nMessage-ID: <" in received.data or b"\r\nMessage-Id: <" in received.data
    reception = node.of_type("Reception", "bob@example.com")[0]
    assert reception["id"] == delivery["id"]
    assert reply.endswith(delivery["id"])
    assert delivery["queue"] == "example.com"
    assert delivery["site"] == "mx.example.com"
    assert delivery["response"]["code"] == 250
    assert delivery["peer_address"] == {"name": "mx.example.com", "addr": target.host}
    assert len(node.node.spool) == 0
