"""SERVFAIL is a transient failure: the message stays queued and is delivered once DNS works."""

from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import mx_sink


async def test_servfail_is_retried(tmp_path, dns_server, sink_factory) -> None:
    target = await mx_sink(dns_server, sink_factory, "example.com")
    sink, port = target.sink, target.port
    dns_server.fail("example.com", "SERVFAIL")

    async with InProcessNode(
        node_settings(tmp_path, dns_port=dns_server.port, smtp_port=port)
    ) as node:
        await node.send("alice@example.org", ["bob@example.com"])
        [transient] = await node.wait_for_record("TransientFailure", "bob@example.com")
        assert transient["response"]["code"] // 100 == 4
        assert len(node.node.spool) == 1
        assert sink.messages == []
        dns_server.clear_failure("example.com")
        [received] = await sink.wait_for_messages(1)
        await node.wait_for_record("Delivery", "bob@example.com")

    assert received.rcpt_tos == ["bob@example.com"]
    assert node.of_type("Bounce") == []
