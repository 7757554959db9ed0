"""Within one attempt, delivery walks to the next MX when the first refuses or says 421."""

import pytest

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings


@pytest.mark.parametrize("failure", ["refused", "421 greeting", "dropped"])
async def test_mx_failover(tmp_path, dns_server, sink_factory, failure) -> None:
    mx1, mx2 = unused_loopback_address(), unused_loopback_address()
    port = free_port(mx1, mx2)
    second = await sink_factory(host=mx2, port=port)
    if failure == "421 greeting":
        first = await sink_factory(host=mx1, port=port, greeting="421 4.3.2 busy")
    elif failure == "dropped":
        first = await sink_factory(host=mx1, port=port, drop_after="EHLO")
    else:
        first = None  # nothing listens on mx1: connection refused
    dns_server.add("example.com", "MX", "10 mx1.example.com.", "20 mx2.example.com.")
    dns_server.add("mx1.example.com", "A", mx1)
    dns_server.add("mx2.example.com", "A", mx2)

    async with InProcessNode(
        node_settings(tmp_path, dns_port=dns_server.port, smtp_port=port)
    ) as node:
        await node.send("alice@example.org", ["bob@example.com"])
        [received] = await second.wait_for_messages(1)
        [delivery] = await node.wait_for_record("Delivery", "bob@example.com")

    assert received.rcpt_tos == ["bob@example.com"]
    assert delivery["peer_address"]["name"] == "mx2.example.com"
    assert delivery["num_attempts"] == 1  # the failover happened inside the first attempt
    assert node.of_type("TransientFailure") == []
    if first is not None:
        assert first.connections >= 1
        assert first.messages == []
