"""Inspecting queued mail: one message, a scheduled queue, ready queue states, the summary."""

from __future__ import annotations

import datetime as dt
import time

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings, wait_until
from tests.support.scenario import relay_target

INSPECT_MESSAGE = "/api/admin/inspect-message/v1"
INSPECT_QUEUE = "/api/admin/inspect-sched-q/v1"
STATES = "/api/admin/ready-q-states/v1"
SUMMARY = "/api/admin/queue-summary/v1"
MESSAGE = (
    b"From: alice@example.org\r\nTo: bob@example.com\r\nX-Tenant: acme\r\n"
    b"Subject: inspect me\r\n\r\nHello.\r\n"
)
HOURLY_RETRIES = {"retry_interval": "1h", "max_retry_interval": "1h", "max_age": "1d"}
RECIPIENTS = ["bob@example.com", "carol@example.com", "dave@example.net"]


async def test_inspect_queued_mail(tmp_path) -> None:
    relay = relay_target()  # nothing listens: after one attempt, the mail waits an hour
    ready_queue = f"relay:{relay.host}:{relay.port}"
    settings = node_settings(tmp_path, routes=relay.routes, queue=HOURLY_RETRIES)
    async with AdminNode(settings) as node:
        await node.send("alice@example.org", RECIPIENTS, MESSAGE)
        [failure] = await node.wait_for_record("TransientFailure", "dave@example.net")
        await node.wait_for_record("TransientFailure", "bob@example.com")
        await wait_until(node.node.queue.is_idle)
        msg_id = failure["id"]

        bare = await node.ok("GET", INSPECT_MESSAGE, params={"id": msg_id})
        full = await node.ok("GET", INSPECT_MESSAGE, params={"id": msg_id, "want_body": "true"})
        missing = await node.call("GET", INSPECT_MESSAGE, params={"id": "0" * 32})
        queue = await node.ok("GET", INSPECT_QUEUE, params={"queue_name": "acme@example.com"})
        sample = await node.ok(
            "GET",
            INSPECT_QUEUE,
            params={"queue_name": "acme@example.net", "want_body": "true", "limit": "0"},
        )
        no_queue = await node.call("GET", INSPECT_QUEUE, params={"queue_name": "nowhere.test"})
        states = await node.ok("GET", STATES)
        summary = await node.ok("GET", SUMMARY)
        later = node.admin.summary(now=time.time() + 90 * 60)

    assert bare["id"] == msg_id
    info = bare["message"]
    assert info["sender"] == "alice@example.org" and info["recipient"] == RECIPIENTS
    assert info["data"] is None and info["num_attempts"] == 1
    assert info["meta"] == {
        "tenant": "acme",
        "received_from": "127.0.0.1",
        "reception_protocol": "ESMTP",
    }
    assert _seconds_from_now(info["due"]) > 3500
    legs = {leg["queue_name"]: leg for leg in info["queues"]}
    assert legs["acme@example.com"]["recipients"] == ["bob@example.com", "carol@example.com"]
    assert legs["acme@example.net"]["state"] == "scheduled"
    assert legs["acme@example.net"]["last_reply"].startswith("4")
    assert "Subject: inspect me" in full["message"]["data"]
    assert missing == (404, f"no such message {'0' * 32}")

    assert queue["queue_name"] == "acme@example.com" and queue["num_scheduled"] == 1
    [entry] = queue["messages"]
    assert entry["id"] == msg_id and entry["message"]["data"] is None
    assert entry["message"]["recipient"] == ["bob@example.com", "carol@example.com"]
    assert entry["message"]["num_attempts"] == 1 and queue["delayed_metric"] == 1
    assert queue["queue_config"]["retry_interval"] == "1h"
    assert sample["messages"] == [] and sample["num_scheduled"] == 1
    assert no_queue == (404, "no such queue nowhere.test")

    assert states == {
        "states_by_ready_queue": {},
        "counts_by_ready_queue": {ready_queue: {"ready_count": 0, "in_flight": 0}},
    }

    assert summary["ready"] == {}
    com = summary["scheduled"]["acme@example.com"]
    assert (com["count"], com["recipients"], com["ages"]["0-5m"]) == (1, 2, 1)
    assert _seconds_from_now(com["next_due"]) > 3500 and _seconds_from_now(com["oldest"]) < 0
    assert summary["scheduled"]["acme@example.net"]["recipients"] == 1
    assert summary["total"]["count"] == 2 and summary["total"]["recipients"] == 3
    assert summary["buckets"][0] == "0-5m" and summary["buckets"][-1] == "1280m+"
    assert later["total"]["ages"]["80-160m"] == 2 and later["total"]["ages"]["0-5m"] == 0


def _seconds_from_now(rfc3339: str) -> float:
    return dt.datetime.fromisoformat(rfc3339).timestamp() - time.time()
