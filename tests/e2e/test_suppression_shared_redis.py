"""With `[redis] url`, the suppression list is the cluster's: a bounce seen by one node makes
the other refuse the recipient; with Redis away, nodes accept the mail (fail open)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings
from tests.support.redis_server import RedisServer
from tests.support.scenario import relay_target

PATH = "/api/admin/suppression/v1"
SENDER = "alice@example.org"
BOB = "bob@example.com"


async def listed(node: AdminNode, want: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while True:
        entries: list[dict[str, Any]] = await node.ok("GET", PATH)
        if len(entries) == want:
            return entries
        assert time.monotonic() < deadline, f"expected {want} entries, have {entries}"
        await asyncio.sleep(0.05)


def settings(tmp_path, name: str, redis_url: str, routes: list[dict[str, Any]]) -> dict[str, Any]:
    return node_settings(
        tmp_path / name,
        routes=routes,
        node={"name": name},
        redis={"url": redis_url, "timeout": "300ms"},
    )


async def test_two_nodes_share_the_list_and_fail_open_without_redis(
    tmp_path, sink_factory, redis_server: RedisServer
) -> None:
    relay = relay_target()
    await relay.start_sink(sink_factory, rcpt_replies={BOB: "550 5.1.1 user unknown"})
    first = AdminNode(settings(tmp_path, "node-a", redis_server.url, relay.routes))
    second = AdminNode(settings(tmp_path, "node-b", redis_server.url, relay.routes))
    async with first, second:
        await first.send(SENDER, [BOB])
        await first.wait_for_record("Bounce", BOB)
        [entry] = await listed(second, 1)  # read from Redis by the other node
        assert (entry["recipient"], entry["classification"]) == (BOB, "InvalidRecipient")

        refused, _ = await second.send(SENDER, [BOB, "carol@example.com"])
        assert refused == {BOB: (550, "5.1.1 recipient suppressed: 550 5.1.1 user unknown")}

        # Removed through one node, gone for both.
        status, _ = await second.call("DELETE", PATH, params={"recipient": BOB})
        assert status == 200
        assert await first.ok("GET", PATH) == []

        await second.ok("POST", PATH, {"recipient": BOB, "reason": "by hand"})
        refused, _ = await first.send(SENDER, [BOB, "dave@example.com"])
        assert refused == {BOB: (550, "5.1.1 recipient suppressed: by hand")}

        redis_server.kill()
        try:
            refused, _ = await first.send(SENDER, [BOB])
            assert refused == {}  # fail open: Redis must never block injection
            status, text = await first.call("GET", PATH)
            assert (status, text) == (503, "suppression store unavailable")
            _, metrics = await first.call("GET", "/metrics")
            assert "mta_suppression_fail_open_total 1.0" in metrics
        finally:
            redis_server.start()
        refused, _ = await first.send(SENDER, [BOB])
        assert refused == {}  # the restarted Redis (no persistence) has forgotten bob
