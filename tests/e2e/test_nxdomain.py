"""A recipient domain that does not exist bounces at once."""

from tests.support.node import InProcessNode, node_settings


async def test_nxdomain_bounces(tmp_path, dns_server) -> None:
    async with InProcessNode(node_settings(tmp_path, dns_port=dns_server.port)) as node:
        await node.send("", ["someone@does-not-exist.example"])
        [bounce] = await node.wait_for_record("Bounce", "someone@does-not-exist.example")

    assert bounce["response"]["code"] == 550
    assert bounce["response"]["enhanced_code"] == {"class": 5, "subject": 1, "detail": 2}
    assert node.of_type("TransientFailure") == []
    assert len(node.node.spool) == 0
