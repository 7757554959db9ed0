"""Group commit: one writer task appends every pending record with one write and one fsync."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Final

from spool import ops, records, segments
from spool.errors import SpoolUnavailable
from spool.index import Index
from spool.ops import Op

logger = logging.getLogger("spool")

MAX_BATCH_BYTES: Final = 16 * 1024 * 1024  # bounds one commit's latency and memory
PROBE_INTERVAL_SECONDS: Final = 1.0  # after a write error, how often to try a fresh segment


class Writer:
    """Owns appends to the active segment and segment rollover and deletion."""

    def __init__(
        self,
        index: Index,
        files: segments.SegmentFiles,
        *,
        segment_bytes: int,
        next_segment: int,
        on_commit: Callable[[], None],
    ) -> None:
        self._index = index
        self._files = files
        self._segment_bytes = segment_bytes
        self._on_commit = on_commit
        self._queue: deque[Op] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._roll_needed = False
        self._next_segment = next_segment
        self._task: asyncio.Task[None] | None = None
        self.error: str | None = None  # set by a failed write, cleared by a later success
        self.commits = 0

    def start(self) -> None:
        """Start the writer task (after the first roll())."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="spool-writer")

    def submit(self, op: Op) -> None:
        """Queue ``op``; its future resolves once it is durable (or fails)."""
        if self._closing:
            raise SpoolUnavailable("spool is closed")
        self._queue.append(op)
        self._wakeup.set()

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await asyncio.wait([self._task])

    async def roll(self) -> None:
        """Make a new, empty segment the active one."""
        number = self._next_segment
        fd = await asyncio.to_thread(
            segments.create_segment, self._files.directory, number, fsync=self._files.fsync
        )
        self._next_segment += 1
        self._files.adopt(number, fd)
        self._index.add_segment(number, records.SEGMENT_HEADER_SIZE)
        self._index.set_active(number)
        self._roll_needed = False

    async def _run(self) -> None:
        try:
            while self._queue or not self._closing:
                if self._queue:
                    await self._commit(self._take())
                else:
                    await self._idle()
        except Exception:
            logger.exception("spool writer crashed")
            self.error = "spool writer crashed"
        finally:
            self._closing = True
            self._fail(list(self._queue), self.error or "spool is closed")
            self._queue.clear()

    async def _idle(self) -> None:
        self._wakeup.clear()
        if self.error is None or self._closing:
            await self._wakeup.wait()
            return
        try:
            async with asyncio.timeout(PROBE_INTERVAL_SECONDS):
                await self._wakeup.wait()
        except TimeoutError:
            await self._probe()

    async def _probe(self) -> None:
        # Nothing to write, but a write error is pending: a fresh segment is the test.
        try:
            await self.roll()
        except OSError as exc:
            self.error = f"spool write failed: {exc}"
        else:
            logger.info("spool writes work again")
            self.error = None
            await self._delete(self._index.take_deletable())

    def _take(self) -> list[Op]:
        batch = [self._queue.popleft()]
        nbytes = batch[0].size
        while self._queue and nbytes + self._queue[0].size <= MAX_BATCH_BYTES:
            op = self._queue.popleft()
            batch.append(op)
            nbytes += op.size
        return batch

    async def _commit(self, batch: list[Op]) -> None:
        accepted = ops.select(batch, self._index)
        if not accepted:
            return
        try:
            seg, base = await self._append(accepted)
        except asyncio.CancelledError:
            self._fail(accepted, "spool writer cancelled")
            raise
        except OSError as exc:
            self._write_failed(accepted, exc)
            return
        self._committed(accepted, seg, base)
        await self._delete(self._index.take_deletable())
        self._on_commit()

    def _write_failed(self, accepted: list[Op], exc: OSError) -> None:
        self.error = f"spool write failed: {exc}"
        # Never append to that segment again: after a failed fsync the kernel may have
        # dropped dirty pages, and the truncation back may itself have failed.
        self._roll_needed = True
        logger.error("%s; failing %d writes", self.error, len(accepted))
        self._fail(accepted, self.error)

    def _committed(self, accepted: list[Op], seg: int, base: int) -> None:
        offset = base
        for op in accepted:
            ops.apply(op, self._index, seg, offset)
            offset += op.size
        self._index.grow(seg, offset - base)
        self.commits += 1
        self.error = None
        for op in accepted:
            ops.settle(op)

    async def _append(self, accepted: list[Op]) -> tuple[int, int]:
        seg = self._index.active
        if self._roll_needed or self._index.segments[seg].size >= self._segment_bytes:
            await self.roll()
            seg = self._index.active
        base = self._index.segments[seg].size
        await asyncio.to_thread(self._write, self._files.fd(seg), base, accepted)
        return seg, base

    def _write(self, fd: int, base: int, accepted: list[Op]) -> None:
        segments.append(fd, base, [op.encode() for op in accepted], fsync=self._files.fsync)

    async def _delete(self, numbers: list[int]) -> None:
        # Runs before the next batch so deletions are durable in dependency order.
        if not numbers:
            return
        self._files.forget(numbers)
        try:
            await asyncio.to_thread(
                segments.unlink_segments, self._files.directory, numbers, fsync=self._files.fsync
            )
        except OSError:
            # Left-over files are safe: recovery re-derives what is needed.
            logger.exception("could not delete spool segments %s", numbers)

    @staticmethod
    def _fail(failed: list[Op], reason: str) -> None:
        for op in failed:
            if not op.future.done():
                op.future.set_exception(SpoolUnavailable(reason))
