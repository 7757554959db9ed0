"""Queueing again, at start, the messages the spool recovered, without holding the event loop.

A million recovered messages take seconds of Python work; done in one go, SMTP and HTTP would
not answer meanwhile. The work is cut in slices of a few milliseconds, so that a client sees
at most a slice of delay per step of its transaction.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sized
from typing import Any

from mta.queue.ports import RecoveredLike

logger = logging.getLogger(__name__)

RECOVERY_SLICE = 0.002  # seconds of re-queueing between two turns of the event loop
RECOVERY_CHECK_EVERY = 64  # messages between two looks at the clock
QUIET_GC_MIN = 10_000  # recovered messages from which the cyclic GC pauses meanwhile

Recover = Callable[[str, dict[str, Any]], Awaitable[None]]


async def requeue(recovered: Iterable[RecoveredLike], recover: Recover) -> int:
    """`recover(id, meta)` each message, yielding to the loop every RECOVERY_SLICE; returns
    how many were handed over (a message `recover` fails on is logged and stays spooled)."""
    # The cyclic GC would rescan the growing queue again and again (a full pass over a
    # million messages stalls the loop for a second) while finding no garbage in it: for a
    # large queue it is off meanwhile, and what exists at the end is frozen (never scanned
    # again; freed as usual when its last reference goes).
    quiet = gc.isenabled() and isinstance(recovered, Sized) and len(recovered) >= QUIET_GC_MIN
    if quiet:
        gc.disable()
    started = time.monotonic()
    count = 0
    try:
        count = await _requeue_all(recovered, recover)
    finally:
        if quiet:
            gc.freeze()
            gc.enable()
    logger.info("%d recovered messages queued in %.1fs", count, time.monotonic() - started)
    return count


async def _requeue_all(recovered: Iterable[RecoveredLike], recover: Recover) -> int:
    count = 0
    give_back = time.monotonic() + RECOVERY_SLICE
    for message in recovered:
        try:
            await recover(message.id, message.meta)
        except Exception:  # one bad message must not leave the rest unqueued
            logger.exception("message %s left in the spool: cannot queue it", message.id)
        count += 1
        if count % RECOVERY_CHECK_EVERY == 0 and time.monotonic() >= give_back:
            await asyncio.sleep(0)
            give_back = time.monotonic() + RECOVERY_SLICE
    return count
