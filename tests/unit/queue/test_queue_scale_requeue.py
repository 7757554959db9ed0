"""A node re-queues what its spool recovered in the background: SMTP takes mail meanwhile,
and every recovered message ends up queued with its stored state."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mta.queue.meta import new_meta
from spool import Spool
from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings

MESSAGES = 20_000  # enough that the re-queueing takes many turns of the event loop
BATCH = 2_000


async def _fill(path: str, later: float) -> None:
    spool = Spool(path, fsync=False)
    await spool.open()
    meta = new_meta(
        sender="a@example.org",
        recipients=["b@example.com"],
        created=time.time(),
        size=16,
        reception_protocol="ESMTP",
        peer="127.0.0.1",
        tenant=None,
        campaign=None,
        default_domain="mta.test",
    )
    leg = meta["legs"]["example.com"]
    leg.update(due=later, attempts=2, last_reply="451 4.4.1 try later")
    for start in range(0, MESSAGES, BATCH):
        ids = range(start, min(start + BATCH, MESSAGES))
        await asyncio.gather(*(spool.store(f"m{i}", meta, b"Subject: x\r\n\r\nx\r\n") for i in ids))
    await spool.close()


async def test_smtp_accepts_while_recovered_messages_are_queued_again(tmp_path: Path) -> None:
    relay = f"{unused_loopback_address()}:{free_port()}"  # never reached: all due later
    settings = node_settings(tmp_path, routes=[{"domains": ["*"], "relay": relay}])
    later = time.time() + 3600
    await _fill(settings["spool"]["path"], later)
    node = InProcessNode(settings)
    await node.node.start()
    try:
        recovering_at_start = node.node.queue.recovering
        _, reply = await node.send("c@example.org", ["d@example.com"])
        await asyncio.wait_for(node.node.queue.wait_recovered(), 50)
        queue = node.node.queue
        assert not queue.recovering
        assert recovering_at_start  # start() returned before the re-queueing ended
        assert "queued" in reply.lower() or reply.startswith("2")
        assert len(queue.messages) == MESSAGES + 1
        waiting = [queue.scheduled((f"m{i}", "example.com")) for i in range(MESSAGES)]
        assert all(entry is not None and entry.due == later for entry in waiting)
        leg = queue.messages["m7"]["legs"]["example.com"]
        assert (leg["attempts"], leg["last_reply"], leg["due"]) == (2, "451 4.4.1 try later", later)
    finally:
        await node.node.stop()
