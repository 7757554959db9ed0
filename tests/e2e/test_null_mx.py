"""A domain with a null MX (RFC 7505) bounces at once with 5.1.10, without any connection."""

from tests.support.node import InProcessNode, node_settings


async def test_null_mx_bounces(tmp_path, dns_server) -> None:
    dns_server.add("nomail.example", "MX", "0 .")

    async with InProcessNode(node_settings(tmp_path, dns_port=dns_server.port)) as node:
        await node.send("", ["someone@nomail.example"])
        [bounce] = await node.wait_for_record("Bounce", "someone@nomail.example")

    assert bounce["response"]["code"] == 556
    assert bounce["response"]["enhanced_code"] == {"class": 5, "subject": 1, "detail": 10}
    assert bounce["bounce_classification"] == "BadDomain"
    assert bounce["num_attempts"] == 1
    assert node.of_type("TransientFailure") == []
    assert len(node.node.spool) == 0
