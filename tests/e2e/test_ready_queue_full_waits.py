"""Due legs that find their ready queue full wait for room, in order, instead of going back
to the scheduled queue (where every one was re-promoted each second while the site was slow)."""

from __future__ import annotations

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings, wait_until
from tests.support.scenario import relay_target

SUSPEND_READY = "/api/admin/suspend-ready-q/v1"
SENDER = "alice@example.org"


async def test_legs_wait_for_room_and_are_delivered_in_order(tmp_path, sink_factory) -> None:
    relay = relay_target()
    name = f"relay:{relay.host}:{relay.port}"
    sink = await relay.start_sink(sink_factory)
    settings = node_settings(tmp_path, routes=relay.routes, delivery={"max_ready": 2})
    rcpts = [f"r{n}@example.com" for n in range(6)]
    async with AdminNode(settings) as node:
        queue = node.node.queue
        rule = await node.ok(
            "POST", SUSPEND_READY, {"name": name, "reason": "x", "duration": "10m"}
        )
        for rcpt in rcpts:
            await node.send(SENDER, [rcpt])
        await wait_until(lambda: queue.stats()["due"] == 4, what="four legs waiting for room")
        waiting = queue.stats()
        await node.call("DELETE", SUSPEND_READY, {"id": rule["id"]})
        delivered = await sink.wait_for_messages(len(rcpts))
        await wait_until(queue.is_idle)

    assert (waiting["ready"], waiting["scheduled"]) == (2, 0)  # none put off for later
    assert [m.rcpt_tos for m in delivered] == [[rcpt] for rcpt in rcpts]  # in arrival order
    assert node.of_type("TransientFailure") == []
