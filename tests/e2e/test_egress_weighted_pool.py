"""Deployment 3: bulk sending from dedicated IPs. A pool of two sources weighted 3:1 (bound
to 127.0.0.2 and 127.0.0.3) splits 400 legs about 3:1, as the sink sees it; each leg waits in
the ready queue "source->site" and its records name the pool and source; an automation
suspension of one source's ready queue reaches exactly that queue."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from shaping.tsa import ReadyQueueSuspension
from tests.support.node import InProcessNode, node_settings
from tests.support.smtp_sink import ScriptedSink

LEGS = 400
# 3:1 over 400 legs: 300 expected, standard deviation ~8.7; +-45 is over five of them,
# while an even split (200) or a reversed one (100) is far outside.
TOLERANCE = 45


def settings(tmp_path: Path, port: int) -> dict[str, Any]:
    egress = {
        "sources": {
            "ip-1": {"source_address": "127.0.0.2", "ehlo_domain": "ip-1.mta.test"},
            "ip-2": {"source_address": "127.0.0.3", "ehlo_domain": "ip-2.mta.test"},
        },
        "pools": {"bulk": {"sources": [{"name": "ip-1", "weight": 3}, {"name": "ip-2"}]}},
        "default_pool": "bulk",
    }
    route = {"domains": ["*"], "relay": [f"127.0.0.1:{port}"], "tls": "none"}
    return node_settings(tmp_path, routes=[route], egress=egress, smtp={"max_recipients": LEGS})


async def test_weighted_split_and_source_queues(tmp_path: Path) -> None:
    async with ScriptedSink() as sink, InProcessNode(settings(tmp_path, sink.port)) as node:
        recipients = [f"user@d{i}.example" for i in range(LEGS)]  # one leg per domain
        await node.send("bulk@example.org", recipients)
        await sink.wait_for_messages(LEGS, timeout=50)
        deliveries = await node.wait_for_record("Delivery", count=LEGS, timeout=20)
        queues = set(node.node.queue.ready_queues())
    by_peer = Counter((message.peer, message.ehlo) for message in sink.messages)
    assert set(by_peer) == {("127.0.0.2", "ip-1.mta.test"), ("127.0.0.3", "ip-2.mta.test")}
    assert abs(by_peer["127.0.0.2", "ip-1.mta.test"] - LEGS * 3 / 4) <= TOLERANCE, by_peer
    by_source = Counter((r["egress_pool"], r["egress_source"]) for r in deliveries)
    assert by_source[("bulk", "ip-1")] == by_peer["127.0.0.2", "ip-1.mta.test"]
    assert by_source[("bulk", "ip-2")] == by_peer["127.0.0.3", "ip-2.mta.test"]
    site = f"relay:127.0.0.1:{sink.port}"
    assert queues == {f"ip-1->{site}", f"ip-2->{site}"}
    assert {r["site"] for r in deliveries} == queues


async def test_suspension_with_a_source_reaches_its_ready_queue(tmp_path: Path) -> None:
    async with ScriptedSink() as sink, InProcessNode(settings(tmp_path, sink.port)) as node:
        site = f"relay:127.0.0.1:{sink.port}"
        applier = node.node.egress.applier
        assert applier is not None
        applier.apply(
            ReadyQueueSuspension(
                rule_hash="r1", reason="4.7.28 rate", expires=2e9, site_name=site, source="ip-2"
            )
        )
        admin = node.node.api.admin
        assert admin.ready_suspended(f"ip-2->{site}")
        assert not admin.ready_suspended(f"ip-1->{site}") and not admin.ready_suspended(site)
