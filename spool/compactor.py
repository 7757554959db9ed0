"""Background compaction: move the few needed records out of mostly-dead segments.

A closed segment whose live DATA is under a quarter of its size gets its live
messages (DATA with latest meta), current META records and still-shadowing REMOVEs
rewritten into the active segment through the normal group commit; it then holds
nothing needed and the writer deletes it. The rate is bounded so compaction never
crowds out stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple

from spool import ops, records, segments
from spool.errors import SpoolError
from spool.index import META_OFF, META_SEG, NO_SEGMENT, REC_LEN, REC_OFF, SEG, Index
from spool.ops import Op

logger = logging.getLogger("spool")

LIVE_RATIO: Final = 0.25  # compact a closed segment when live DATA is below this share
CHUNK_BYTES: Final = 1024 * 1024  # records rewritten per group of commits
BYTES_PER_SECOND: Final = 32 * 1024 * 1024  # compaction write rate ceiling
RETRY_SECONDS: Final = 5.0  # back-off for a segment that could not be emptied
POLL_SECONDS: Final = 1.0  # re-check for candidates even without commits
SCAN_INTERVAL_SECONDS: Final = 0.05  # at most this often: a scan walks every segment
_SMALL_RECORD: Final = 256  # size estimate for META/REMOVE copies when chunking


class _Item(NamedTuple):
    kind: int
    msg_id: str
    expect: ops.Expectation
    estimate: int


class _Copy(NamedTuple):
    item: _Item
    meta: bytes
    data: bytes


class Compactor:
    """Runs as a task; poke() after commits so it looks for work promptly."""

    def __init__(self, index: Index, directory: Path, submit: Callable[[Op], None]) -> None:
        self._index = index
        self._directory = directory
        self._submit = submit
        self._wakeup = asyncio.Event()
        self.compacted = 0  # records rewritten

    def poke(self) -> None:
        """Note that segment accounting changed."""
        self._wakeup.set()

    async def run(self) -> None:
        """Compact candidates forever (cancel to stop)."""
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self._round()
            except Exception:  # compaction is an optimisation: never let it die
                logger.exception("spool compaction failed")
            await asyncio.sleep(SCAN_INTERVAL_SECONDS)

    async def _round(self) -> None:
        while (seg := self._candidate()) is not None:
            try:
                await self._compact(seg)
            finally:
                info = self._index.segments.get(seg)
                if info is not None:  # not emptied (raced with updates, or re-stored ids)
                    info.compact_not_before = time.monotonic() + RETRY_SECONDS

    def _candidate(self) -> int | None:
        now = time.monotonic()
        for number, info in self._index.segments.items():
            if number == self._index.active or not info.needed():
                continue
            if info.compact_not_before <= now and info.live_bytes < LIVE_RATIO * info.size:
                return number
        return None

    async def _compact(self, seg: int) -> None:
        for chunk in _chunks(self._plan(seg)):
            copies = await asyncio.to_thread(_read_copies, self._directory, chunk)
            if not await self._rewrite(copies):
                return
            await asyncio.sleep(sum(item.estimate for item in chunk) / BYTES_PER_SECOND)

    def _plan(self, seg: int) -> list[_Item]:
        info, entries = self._index.segments[seg], self._index.entries
        items = []
        for msg_id in info.data_ids:
            e = entries[msg_id]
            expect = (e[SEG], e[REC_OFF], e[META_SEG], e[META_OFF])
            items.append(_Item(ops.COPY_DATA, msg_id, expect, e[REC_LEN]))
        for msg_id in info.meta_ids:
            e = entries[msg_id]
            if e[SEG] != seg:  # otherwise the DATA copy carries the latest meta
                items.append(_Item(ops.COPY_META, msg_id, (seg, e[META_OFF]), _SMALL_RECORD))
        for msg_id in self._index.removal_shadows(seg):
            if msg_id not in entries:  # re-stored since: its REMOVE must stay where it is
                items.append(_Item(ops.COPY_REMOVE, msg_id, (seg,), _SMALL_RECORD))
        return items

    async def _rewrite(self, copies: list[_Copy]) -> bool:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = []
        for item, meta, data in copies:
            future = loop.create_future()
            self._submit(
                Op(item.kind, item.msg_id, future, meta=meta, data=data, expect=item.expect)
            )
            futures.append(future)
        results = await asyncio.gather(*futures, return_exceptions=True)
        self.compacted += sum(result is True for result in results)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed and not isinstance(failed[0], SpoolError):
            raise failed[0]
        return not failed


def _chunks(items: list[_Item]) -> Iterator[list[_Item]]:
    chunk: list[_Item] = []
    nbytes = 0
    for item in items:
        chunk.append(item)
        nbytes += item.estimate
        if nbytes >= CHUNK_BYTES:
            yield chunk
            chunk, nbytes = [], 0
    if chunk:
        yield chunk


def _read_copies(directory: Path, chunk: list[_Item]) -> list[_Copy]:
    """Read what each item rewrites; items whose records vanished are skipped.

    Segments are opened by path rather than through the Spool's fds, which the
    writer may close concurrently when it deletes a segment.
    """
    fds: dict[int, int] = {}
    try:
        return [copy for item in chunk if (copy := _read_copy(directory, fds, item))]
    finally:
        for fd in fds.values():
            os.close(fd)


def _read_copy(directory: Path, fds: dict[int, int], item: _Item) -> _Copy | None:
    def record(seg: int, offset: int) -> records.DecodedRecord:
        if seg not in fds:
            fds[seg] = segments.open_segment(directory, seg)
        return segments.read_record(fds[seg], offset)

    try:
        if item.kind == ops.COPY_REMOVE:
            return _Copy(item, b"", b"")
        if item.kind == ops.COPY_META:
            return _Copy(item, record(*item.expect).meta, b"")
        seg, rec_off, meta_seg, meta_off = item.expect
        data_record = record(seg, rec_off)
        meta = data_record.meta if meta_seg == NO_SEGMENT else record(meta_seg, meta_off).meta
        return _Copy(item, meta, data_record.data)
    except (OSError, ValueError) as exc:
        # Stale plan (segment deleted meanwhile); the commit-time check would drop it anyway.
        logger.debug("compaction skipped %s: %s", item.msg_id, exc)
        return None
