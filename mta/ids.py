"""Unique ids for messages, queue ids and Message-ID headers, without a syscall per id.

`uuid.uuid4()` reads the kernel's random pool for each id (a few percent of the main thread
at 1,000+ messages a second). An id here is a random 64-bit prefix drawn once per process and a
64-bit counter: unique within the process by the counter, across processes and restarts by the
prefix (a collision needs the same 64 random bits twice). Same shape as before: 32 hex digits.
"""

from __future__ import annotations

import itertools
import os

_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(int.from_bytes(os.urandom(4), "big"))


def unique_hex() -> str:
    """32 lowercase hex digits, never repeated by this process."""
    return f"{_PREFIX}{next(_COUNTER):016x}"


def short_id() -> str:
    """12 hex digits that change with every call (a Received header's queue id)."""
    return f"{next(_COUNTER):012x}"[-12:]
