"""SIGTERM with `[node] drain_to` right after `deferred_generation` requests: every batch,
also those still waiting for their turn, is expanded before the spool is handed over, so the
peer gets every recipient's message and nothing stays behind in the leaving node's spool."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from spool import Spool
from tests.e2e.test_drain_sigterm_under_load import _workdir, settings_pair
from tests.e2e.test_inject_deferred_sigkill import deferred_request
from tests.support.node import NodeProcess

BATCHES = 4  # twice the batches the service expands at a time: two wait their turn
PER_BATCH = 250
RECIPIENTS = BATCHES * PER_BATCH


def batch_request(n: int) -> dict[str, Any]:
    body = deferred_request()
    body["recipients"] = [
        {"email": f"rcpt{n}x{i}@example.com", "name": f"R{i}", "substitutions": {"n": i}}
        for i in range(PER_BATCH)
    ]
    return body


async def test_deferred_batch_is_expanded_then_drained(tmp_path: Path, sink_factory: Any) -> None:
    sink = await sink_factory(data_reply="451 4.3.0 try again later")  # nothing delivered yet
    leaving_settings, peer_settings = settings_pair(tmp_path, sink)
    peer = NodeProcess(peer_settings, _workdir(tmp_path, "peer-run"))
    leaving = NodeProcess(leaving_settings, _workdir(tmp_path, "leaving-run"))
    try:
        await peer.start()
        await leaving.start()
        async with aiohttp.ClientSession() as session:
            for n in range(BATCHES):
                url = leaving.http_url + "/api/inject/v1"
                async with session.post(url, json=batch_request(n)) as reply:
                    assert reply.status == 200
        code = await leaving.terminate()  # right after the 200s: two batches not started
        assert code == 0, leaving.stderr()

        sink.data_reply = None  # the destination recovers
        await peer.wait_for_record("Delivery", count=RECIPIENTS, timeout=45)
    finally:
        await leaving.close()
        await peer.close()
    delivered = Counter(r for m in sink.messages for r in m.rcpt_tos)
    assert delivered == Counter(
        f"rcpt{n}x{i}@example.com" for n in range(BATCHES) for i in range(PER_BATCH)
    )
    spool = Spool(leaving_settings["spool"]["path"])
    try:
        assert list(await spool.open()) == []  # no batch left behind
    finally:
        await spool.close()
