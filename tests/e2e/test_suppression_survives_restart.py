"""The node-local suppression list is durable: entries survive a SIGKILL of `mta serve`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from mta.client import AdminClient
from tests.support.node import NodeProcess, node_settings, send, simple_message
from tests.support.scenario import relay_target

SENDER = "alice@example.org"
BOB = "bob@example.com"
REFUSAL = (550, "5.1.1 recipient suppressed: 550 5.1.1 user unknown")


async def entries(node: NodeProcess, want: int) -> list[dict[str, Any]]:
    client = AdminClient(node.http_url, timeout=5)
    deadline = time.monotonic() + 15
    while True:
        found: list[dict[str, Any]] = await asyncio.to_thread(client.suppression_list)
        if len(found) == want:
            return found
        assert time.monotonic() < deadline, f"expected {want} entries, have {found}"
        await asyncio.sleep(0.05)


async def test_entries_survive_sigkill(tmp_path, sink_factory) -> None:
    relay = relay_target()
    await relay.start_sink(sink_factory, rcpt_replies={BOB: "550 5.1.1 user unknown"})
    settings = node_settings(tmp_path, routes=relay.routes)
    first = NodeProcess(settings, _workdir(tmp_path, "first"))
    try:
        await first.start()
        await send(first.address, SENDER, [BOB, "carol@example.com"], simple_message())
        await first.wait_for_record("Bounce", BOB)
        [before] = await entries(first, 1)
        first.kill()  # SIGKILL: nothing is flushed on the way out
    finally:
        await first.close()

    second = NodeProcess(settings, _workdir(tmp_path, "second"))  # the same spool directory
    try:
        await second.start()
        [after] = await entries(second, 1)
        assert after == before
        refused, _ = await send(second.address, SENDER, [BOB, "dave@example.com"], simple_message())
        assert refused == {BOB: REFUSAL}
        assert await second.terminate() == 0
    finally:
        await second.close()


def _workdir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path
