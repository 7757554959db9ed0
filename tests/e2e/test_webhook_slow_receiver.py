"""A webhook endpoint that hangs does not slow mail: every message is delivered while the
first POST is still waiting for its answer; once the endpoint answers, every event follows."""

from __future__ import annotations

from tests.support.node import InProcessNode, node_settings, wait_until
from tests.support.scenario import relay_target
from tests.support.webhook_receiver import WebhookReceiver

MESSAGES = 30


async def test_a_hanging_endpoint_does_not_hold_deliveries(tmp_path, sink_factory) -> None:
    relay = relay_target()
    sink = await relay.start_sink(sink_factory)
    settings = node_settings(tmp_path, routes=relay.routes)
    async with WebhookReceiver() as receiver:
        receiver.stall = True  # every request waits until `release` is set
        settings["webhooks"] = [
            {"name": "slow", "url": receiver.url, "batch_size": 5, "max_delay": "0.1s",
             "timeout": "50s"},
        ]  # fmt: skip
        async with InProcessNode(settings) as node:
            for n in range(MESSAGES):
                await node.send("alice@example.org", [f"r{n}@example.com"])
            await sink.wait_for_messages(MESSAGES)
            await node.wait_for_record("Delivery", count=MESSAGES)
            await wait_until(lambda: receiver.requests == 1, what="the first POST in flight")
            stats = node.node.webhooks.stats()["slow"]
            # All delivered, while the endpoint has not acknowledged a single event.
            assert receiver.batches == []
            assert stats.sent == 0 and stats.backlog == MESSAGES

            receiver.release.set()
            await receiver.wait_for_records(MESSAGES)
            await wait_until(lambda: node.node.webhooks.stats()["slow"].backlog == 0)
    assert len(receiver.keys()) == MESSAGES and set(receiver.keys().values()) == {1}
