"""ReadyQueue.suspended: no attempt starts while set, the one in flight finishes, and clearing
it starts workers again."""

from __future__ import annotations

import asyncio

from mta.queue.ready import ReadyQueue


async def test_suspension_stops_new_attempts_and_resuming_restarts_them() -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def attempt(key: str) -> None:
        started.append(key)
        await release.wait()

    ready: ReadyQueue[str] = ReadyQueue("site", max_ready=10, max_workers=1, attempt=attempt)
    ready.put("a")
    await asyncio.sleep(0)
    assert started == ["a"] and ready.busy == 1
    ready.suspended = True
    ready.put("b")
    release.set()  # the attempt in flight finishes...
    await asyncio.sleep(0.01)
    assert started == ["a"] and list(ready) == ["b"] and ready.busy == 0  # ...no new one starts
    ready.suspended = False
    await asyncio.sleep(0.01)
    assert started == ["a", "b"] and len(ready) == 0
    await ready.wait_idle()
