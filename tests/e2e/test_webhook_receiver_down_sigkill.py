"""Webhook events survive a SIGKILL of the node: receiver down, node killed, both back up.

Five deliveries reach the receiver while it is up. It goes down; ten more deliveries are
queued on disk (the node says so in `mta_webhook_queued_total`); the node is SIGKILLed.
With the receiver and the node back, every one of the fifteen Delivery events has arrived,
each once, in the order the node logged them.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.node import NodeProcess, node_settings, send, simple_message
from tests.support.scenario import relay_target
from tests.support.smtp_sink import ScriptedSink
from tests.support.webhook_receiver import WebhookReceiver

SENDER = "alice@example.org"
QUEUED = re.compile(r'^mta_webhook_queued_total\{webhook="events"\} (\S+)$', re.MULTILINE)


async def _queued(node: NodeProcess) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(node.http_url + "/metrics") as response,
    ):
        match = QUEUED.search(await response.text())
    return int(float(match[1])) if match else 0


async def _wait_queued(node: NodeProcess, count: int, timeout: float = 20.0) -> None:
    """Poll the node's metrics until `count` records are on disk (bounded in time)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (queued := await _queued(node)) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"only {queued} of {count} webhook records reached the disk")
        await asyncio.sleep(0.05)


async def _send(node: NodeProcess, first: int, count: int) -> None:
    for n in range(first, first + count):
        await send(node.address, SENDER, [f"r{n}@example.com"], simple_message())


async def test_no_event_is_lost_across_a_sigkill(tmp_path, sink_factory) -> None:
    relay = relay_target()
    sink = await relay.start_sink(sink_factory)
    receiver = WebhookReceiver()
    settings = node_settings(tmp_path, routes=relay.routes)
    settings["webhooks"] = [
        {"name": "events", "url": receiver.url, "types": ["Delivery"], "batch_size": 4,
         "max_delay": "0.1s", "retry_interval": "0.1s", "max_retry_interval": "0.5s"},
    ]  # fmt: skip
    try:
        delivered = await _kill_with_a_backlog(settings, tmp_path, receiver, sink)
        restarted = NodeProcess(settings, tmp_path)
        try:
            await receiver.start()  # on the same port, keeping what it got before
            await restarted.start()
            await receiver.wait_for_records(15)
            assert await restarted.terminate() == 0
        finally:
            await restarted.close()
    finally:
        await receiver.stop()
    keys = [(r["id"], r["recipient"]) for r in receiver.records]
    assert keys == [(r["id"], r["recipient"]) for r in delivered]  # all, once, in order


async def _kill_with_a_backlog(
    settings: dict[str, Any], tmp_path: Path, receiver: WebhookReceiver, sink: ScriptedSink
) -> list[dict[str, Any]]:
    """Five events sent, ten more queued on disk with the receiver down, then SIGKILL."""
    node = NodeProcess(settings, tmp_path)
    try:
        await receiver.start()
        await node.start()
        await _send(node, 0, 5)
        await receiver.wait_for_records(5)
        await receiver.stop()

        await _send(node, 5, 10)
        await sink.wait_for_messages(15)
        await _wait_queued(node, 15)
        node.kill()
    finally:
        await node.close()
    delivered = [r for r in node.records if r["type"] == "Delivery"]
    assert len(delivered) == 15
    return delivered
