"""`[[queue.rates]]`: a tenant's scheduled queue moves at its own rate (not an attempt), while
another tenant's queue to the same domain is not held back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.node import InProcessNode, node_settings, wait_until
from tests.support.scenario import mx_sink

DOMAIN = "rated.example"


def message(tenant: str, n: int) -> bytes:
    return (
        f"From: s@example.org\r\nTo: u{n}@{DOMAIN}\r\nX-Tenant: {tenant}\r\n"
        f"Subject: {tenant}-{n}\r\n\r\nbody\r\n"
    ).encode()


async def test_a_tenant_queue_is_held_to_its_rate(
    tmp_path: Path, dns_server: Any, sink_factory: Any
) -> None:
    target = await mx_sink(dns_server, sink_factory, DOMAIN)
    settings = node_settings(
        tmp_path,
        dns_port=dns_server.port,
        smtp_port=target.port,
        queue={"rates": [{"tenant": "slow", "max_message_rate": "2/s,max_burst=1"}]},
    )

    async with InProcessNode(settings) as node:
        for n in range(5):
            await node.send("s@example.org", [f"s{n}@{DOMAIN}"], message("slow", n))
            await node.send("s@example.org", [f"f{n}@{DOMAIN}"], message("fast", n))
        await wait_until(lambda: len(node.of_type("Delivery")) == 10, 20, "all ten delivered")

        deliveries = node.of_type("Delivery")
        assert {d["queue"] for d in deliveries} == {f"slow@{DOMAIN}", f"fast@{DOMAIN}"}
        assert all(d["num_attempts"] == 1 for d in deliveries)  # waiting was not an attempt
        assert not node.of_type("TransientFailure")

    slow = sorted(d["timestamp"] for d in deliveries if d["queue"] == f"slow@{DOMAIN}")
    fast = sorted(d["timestamp"] for d in deliveries if d["queue"] == f"fast@{DOMAIN}")
    assert slow[-1] - slow[0] >= 4 * 0.5 - 0.1  # 5 messages at 2/s, burst 1: >= 2 s apart
    assert fast[-1] - fast[0] < slow[-1] - slow[0]  # the other tenant was not held
