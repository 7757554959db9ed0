"""Due legs waiting for room in a full ready queue (mta/queue/overflow.py), and the ready
queue's `on_room` hook that moves them in."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mta.queue.overflow import Overflow
from mta.queue.ready import ReadyQueue


def test_refill_moves_oldest_first_until_refused() -> None:
    overflow: Overflow[str] = Overflow()
    for key in "abcd":
        overflow.add("site", key)
    taken: list[str] = []

    overflow.refill("site", lambda key: len(taken) < 2 and not taken.append(key))

    assert taken == ["a", "b"]
    assert len(overflow) == 2 and "c" in overflow and "a" not in overflow
    overflow.refill("site", lambda key: not taken.append(key))
    assert taken == ["a", "b", "c", "d"] and len(overflow) == 0


def test_a_key_waits_once_and_discarded_keys_are_skipped() -> None:
    overflow: Overflow[str] = Overflow()
    overflow.add("site", "a")
    overflow.add("site", "a")  # promoted again while waiting: still one entry
    overflow.add("site", "b")
    overflow.add("other", "c")
    overflow.discard("b")  # held or bounced by an administrator meanwhile
    taken: list[str] = []

    overflow.refill("site", lambda key: not taken.append(key))

    assert taken == ["a"]
    assert len(overflow) == 1 and "c" in overflow  # another site's legs stay


def filled(
    overflow: Overflow[str], attempt: Callable[[str], Awaitable[None]], *, max_ready: int, keys: str
) -> ReadyQueue[str]:
    """A suspended ready queue of `max_ready` whose extra `keys` wait in `overflow`."""
    ready: ReadyQueue[str] = ReadyQueue(
        "site",
        max_ready=max_ready,
        max_workers=1,
        attempt=attempt,
        on_room=lambda put: overflow.refill("site", put),
    )
    ready.suspended = True
    for key in keys:
        if not ready.put(key):
            overflow.add("site", key)
    return ready


async def test_ready_queue_calls_on_room_as_entries_leave() -> None:
    overflow: Overflow[str] = Overflow()
    attempted: list[str] = []

    async def attempt(key: str) -> None:
        attempted.append(key)
        await asyncio.sleep(0)

    ready = filled(overflow, attempt, max_ready=2, keys="abcde")
    assert list(ready) == ["a", "b"] and len(overflow) == 3

    ready.suspended = False  # the workers start
    for _ in range(50):
        if len(attempted) == 5:
            break
        await asyncio.sleep(0)
    await ready.wait_idle()

    assert attempted == ["a", "b", "c", "d", "e"]
    assert len(overflow) == 0


def test_a_larger_max_ready_lets_waiting_legs_in() -> None:
    overflow: Overflow[str] = Overflow()

    async def attempt(key: str) -> None:
        raise AssertionError("suspended: no attempt")

    ready = filled(overflow, attempt, max_ready=1, keys="abc")

    ready.configure(max_ready=3, max_workers=1)

    assert list(ready) == ["a", "b", "c"] and len(overflow) == 0
