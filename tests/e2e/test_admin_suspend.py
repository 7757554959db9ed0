"""A scheduled-queue suspension holds matching mail (451 4.4.4 logged) until cancelled or over."""

from __future__ import annotations

import asyncio
import time

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings, wait_until
from tests.support.scenario import relay_target

SUSPEND = "/api/admin/suspend/v1"
SUMMARY = "/api/admin/queue-summary/v1"
SENDER = "alice@example.org"
QUIET_SECONDS = 0.5  # long enough for an unsuspended message to be delivered several times


async def test_suspension_holds_mail_until_deleted(tmp_path, sink_factory) -> None:
    relay = relay_target()
    sink = await relay.start_sink(sink_factory)
    async with AdminNode(node_settings(tmp_path, routes=relay.routes)) as node:
        body = {"domain": "Example.COM", "reason": "postmaster asked", "duration": "1h"}
        created = await node.ok("POST", SUSPEND, body)
        await node.send(SENDER, ["bob@example.com", "zed@example.org"])

        [held] = await node.wait_for_record("TransientFailure", "bob@example.com")
        [other] = await sink.wait_for_messages(1)
        await asyncio.sleep(QUIET_SECONDS)
        assert len(sink.messages) == 1
        summary = await node.ok("GET", SUMMARY)
        [rule] = await node.ok("GET", SUSPEND)

        status, text = await node.call("DELETE", SUSPEND, {"id": created["id"]})
        assert (status, text) == (200, f"removed {created['id']}")
        assert await node.call("DELETE", SUSPEND, {"id": created["id"]}) == (
            404,
            f"suspend entry {created['id']} not found",
        )
        [_, bob] = await sink.wait_for_messages(2)
        [delivery] = await node.wait_for_record("Delivery", "bob@example.com")

    assert other.rcpt_tos == ["zed@example.org"]
    assert held["response"]["code"] == 451
    assert held["response"]["enhanced_code"] == {"class": 4, "subject": 4, "detail": 4}
    assert held["response"]["content"] == "scheduled queue is suspended: postmaster asked"
    assert held["queue"] == "example.com"
    assert rule["domain"] == "example.com" and rule["reason"] == "postmaster asked"
    assert rule["duration"].startswith("59m ")
    assert summary["scheduled"]["example.com"]["count"] == 1
    assert bob.rcpt_tos == ["bob@example.com"]
    assert delivery["num_attempts"] == 1  # being held is not a delivery attempt


async def test_suspension_ends_by_itself(tmp_path, sink_factory) -> None:
    relay = relay_target()
    sink = await relay.start_sink(sink_factory)
    async with AdminNode(node_settings(tmp_path, routes=relay.routes)) as node:
        started = time.monotonic()
        await node.ok("POST", SUSPEND, {"tenant": "acme", "reason": "pause", "duration": 1})
        await node.send(SENDER, ["bob@example.com"], _message(tenant="acme"))
        await node.send(SENDER, ["carol@example.com"], _message(tenant="other"))
        [held] = await node.wait_for_record("TransientFailure", "bob@example.com")
        [carol] = await sink.wait_for_messages(1)
        [_, bob] = await sink.wait_for_messages(2)
        elapsed = time.monotonic() - started
        assert await node.ok("GET", SUSPEND) == []

    assert held["queue"] == "acme@example.com"
    assert carol.rcpt_tos == ["carol@example.com"] and bob.rcpt_tos == ["bob@example.com"]
    assert elapsed >= 1.0  # released when the suspension was over, not before
    assert node.of_type("TransientFailure", "carol@example.com") == []


def _message(tenant: str) -> bytes:
    return (
        f"From: alice@example.org\r\nTo: x@example.com\r\nX-Tenant: {tenant}\r\n"
        "Subject: test\r\n\r\nHello.\r\n"
    ).encode()


async def test_mail_already_in_a_ready_queue_is_held_when_a_worker_takes_it(
    tmp_path, sink_factory
) -> None:
    relay = relay_target()
    ready_queue = f"relay:{relay.host}:{relay.port}"
    sink = await relay.start_sink(sink_factory)
    async with AdminNode(node_settings(tmp_path, routes=relay.routes)) as node:
        paused = node.admin.suspend_ready(ready_queue, reason="pause", expires=time.time() + 60)
        await node.send(SENDER, ["bob@example.com"])
        await wait_until(lambda: node.node.queue.ready_queues().get(ready_queue) == 1)
        await node.ok("POST", SUSPEND, {"domain": "example.com", "reason": "hold", "duration": 60})
        node.admin.cancel_ready_suspension(paused.id)
        [held] = await node.wait_for_record("TransientFailure", "bob@example.com")
        await asyncio.sleep(QUIET_SECONDS)
        summary = await node.ok("GET", SUMMARY)

    assert held["response"]["content"] == "scheduled queue is suspended: hold"
    assert sink.messages == []
    assert summary["scheduled"]["example.com"]["count"] == 1 and summary["ready"] == {}
