"""Due legs that find their ready queue full wait for room, in order, instead of going back
to the scheduled queue (where every one was re-promoted each second while the site was slow)."""

from __future__ import annotations

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings, wait_until
from tests.support.scenario import relay_target

SUSPEND_READY = "/api/admin/suspend-ready-q/v1"
INSPECT_MESSAGE = "/api/admin/inspect-message/v1"
BOUNCE = "/api/admin/bounce/v1"
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


async def test_waiting_legs_are_inspected_and_bounced_like_scheduled_ones(
    tmp_path, sink_factory
) -> None:
    relay = relay_target()
    name = f"relay:{relay.host}:{relay.port}"
    sink = await relay.start_sink(sink_factory)
    settings = node_settings(tmp_path, routes=relay.routes, delivery={"max_ready": 1})
    async with AdminNode(settings) as node:
        queue = node.node.queue
        rule = await node.ok(
            "POST", SUSPEND_READY, {"name": name, "reason": "x", "duration": "10m"}
        )
        await node.send(SENDER, ["first@example.com"])  # takes the one place
        await node.send(SENDER, ["second@example.net"])  # waits for room
        await wait_until(lambda: queue.stats()["due"] == 1, what="one leg waiting for room")
        [waiting] = [m for m, meta in queue.messages.items() if "example.net" in meta["legs"]]
        inspected = await node.ok("GET", INSPECT_MESSAGE, params={"id": waiting})

        await node.ok("POST", BOUNCE, {"domain": "example.net", "reason": "gone", "duration": "1m"})
        await node.wait_for_record("AdminBounce", "second@example.net")
        await node.call("DELETE", SUSPEND_READY, {"id": rule["id"]})
        [delivered] = await sink.wait_for_messages(1)
        await wait_until(queue.is_idle)

    [leg] = inspected["message"]["queues"]
    assert leg["state"] == "scheduled" and leg["queue_name"] == "example.net"
    assert delivered.rcpt_tos == ["first@example.com"]  # the bounced leg never went out
    assert len(sink.messages) == 1 and len(node.node.spool) == 0
