"""A ready-queue suspension stops attempts from that ready queue until cancelled or over."""

from __future__ import annotations

import asyncio
import time

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings, wait_until
from tests.support.scenario import relay_target

SUSPEND_READY = "/api/admin/suspend-ready-q/v1"
STATES = "/api/admin/ready-q-states/v1"
SENDER = "alice@example.org"
QUIET_SECONDS = 0.5


async def test_ready_queue_suspension_until_deleted(tmp_path, sink_factory) -> None:
    relay = relay_target()
    name = f"relay:{relay.host}:{relay.port}"  # the ready queue: the relay site
    sink = await relay.start_sink(sink_factory)
    async with AdminNode(node_settings(tmp_path, routes=relay.routes)) as node:
        body = {"name": name, "reason": "blocked by the peer", "duration": "10m"}
        created = await node.ok("POST", SUSPEND_READY, body)
        await node.send(SENDER, ["bob@example.com"])
        await wait_until(lambda: node.node.queue.ready_queues().get(name) == 1, what="ready")
        await asyncio.sleep(QUIET_SECONDS)
        assert sink.messages == [] and sink.connections == 0
        states = await node.ok("GET", STATES)
        [listed] = await node.ok("GET", SUSPEND_READY)

        assert await node.call("DELETE", SUSPEND_READY, {"id": created["id"]}) == (
            200,
            f"removed {created['id']}",
        )
        [bob] = await sink.wait_for_messages(1)
        await node.wait_for_record("Delivery", "bob@example.com")
        await wait_until(node.node.queue.is_idle)
        after = await node.ok("GET", STATES, params={"queues": name})

    suspended = states["states_by_ready_queue"][name]["suspended"]
    assert suspended["context"] == "blocked by the peer"
    assert states["counts_by_ready_queue"][name] == {"ready_count": 1, "in_flight": 0}
    assert listed["id"] == created["id"] and listed["name"] == name
    assert listed["duration"].startswith("9m ") and listed["expires"].endswith("Z")
    assert bob.rcpt_tos == ["bob@example.com"]
    assert after["states_by_ready_queue"] == {}
    assert after["counts_by_ready_queue"] == {name: {"ready_count": 0, "in_flight": 0}}


async def test_ready_queue_suspension_ends_by_itself(tmp_path, sink_factory) -> None:
    relay = relay_target()
    name = f"relay:{relay.host}:{relay.port}"
    sink = await relay.start_sink(sink_factory)
    async with AdminNode(node_settings(tmp_path, routes=relay.routes)) as node:
        started = time.monotonic()
        await node.ok("POST", SUSPEND_READY, {"name": name, "reason": "pause", "duration": "1s"})
        await node.send(SENDER, ["bob@example.com", "carol@example.com"])
        [message] = await sink.wait_for_messages(1)
        elapsed = time.monotonic() - started
        assert await node.ok("GET", SUSPEND_READY) == []

    assert sorted(message.rcpt_tos) == ["bob@example.com", "carol@example.com"]
    assert elapsed >= 1.0
    assert node.of_type("TransientFailure") == []  # a ready queue suspension logs nothing
