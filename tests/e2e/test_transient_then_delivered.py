"""A 4xx is retried after the configured interval and then delivered."""

from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import mx_sink


async def test_transient_then_delivered(tmp_path, dns_server, sink_factory) -> None:
    target = await mx_sink(
        dns_server, sink_factory, "example.com", data_replies=["451 4.3.0 try again later"]
    )
    sink, port = target.sink, target.port

    async with InProcessNode(
        node_settings(tmp_path, dns_port=dns_server.port, smtp_port=port)
    ) as node:
        await node.send("alice@example.org", ["bob@example.com"])
        [transient] = await node.wait_for_record("TransientFailure", "bob@example.com")
        assert transient["response"]["code"] == 451
        assert len(node.node.spool) == 1
        [received] = await sink.wait_for_messages(1)
        [delivery] = await node.wait_for_record("Delivery", "bob@example.com")

    assert received.rcpt_tos == ["bob@example.com"]
    assert delivery["num_attempts"] == 2
    assert delivery["timestamp"] - transient["timestamp"] >= 1 - 0.01  # retry_interval = 1s
    assert len(node.node.spool) == 0
