"""An `enforce` MTA-STS policy served over HTTPS: the node delivers only to the matching MX,
with a verified certificate, and the Delivery record says which TLS it used."""

from pathlib import Path

from tests.integration.delivery.sts_support import PolicyServer, TestPki, policy_text, publish
from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings


async def test_mta_sts_enforce(tmp_path: Path, dns_server, sink_factory) -> None:
    pki = TestPki(tmp_path)
    mx1, mx2 = unused_loopback_address(), unused_loopback_address()
    port = free_port(mx1, mx2)
    preferred = await sink_factory(host=mx1, port=port, starttls=pki.server_context("mx1.a.test"))
    allowed = await sink_factory(host=mx2, port=port, starttls=pki.server_context("mx2.a.test"))
    dns_server.add("a.test", "MX", "10 mx1.a.test.", "20 mx2.a.test.")
    dns_server.add("mx1.a.test", "A", mx1)
    dns_server.add("mx2.a.test", "A", mx2)
    policy = policy_text("enforce", "mx2.a.test")
    async with PolicyServer(pki.server_context("mta-sts.a.test"), policy) as server:
        publish(dns_server, "a.test", server, "20240101")
        settings = node_settings(
            tmp_path,
            dns_port=dns_server.port,
            smtp_port=port,
            delivery={"tls_ca_file": str(pki.ca_file), "mta_sts_port": server.port},
        )
        async with InProcessNode(settings) as node:
            await node.send("alice@example.org", ["bob@a.test"])
            [delivery] = await node.wait_for_record("Delivery", "bob@a.test")

    assert delivery["peer_address"]["name"] == "mx2.a.test"
    assert delivery["site"] == "mx1.a.test|mx2.a.test@mta-sts"
    assert delivery["tls_protocol_version"] in ("TLSv1.2", "TLSv1.3")
    assert delivery["tls_cipher"]
    assert preferred.connections == 0
    [message] = allowed.messages
    assert message.tls and message.rcpt_tos == ["bob@a.test"]
    assert server.hits == 1
