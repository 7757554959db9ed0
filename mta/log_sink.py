"""The segment-file sink of the record log: writes from the writer thread, housekeeping in a task.

`RecordLog` calls `write()` from its writer thread and `notify()` on the loop after each batch.
A housekeeping task closes segments that reached their age, compresses closed ones and deletes
old ones; all file work runs in worker threads and none of it holds up the writer, so a large
segment being compressed never fills the record buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from mta.log_segments import (
    SegmentPolicy,
    SegmentWriter,
    apply_retention,
    compress_segment,
    plain_segments,
    remove_temporaries,
)

_log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL: Final = 60.0  # seconds between retention passes (and after rotations)


class SegmentSink:
    """Rotating, compressed segment files under one directory (see `mta.log_segments`)."""

    def __init__(
        self, directory: Path, policy: SegmentPolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = directory
        self.policy = policy
        self.compressed = 0  # segments compressed since start
        self.deleted = 0  # segments deleted by retention since start
        self.errors = 0  # failed compressions or deletions (the files stay)
        self._clock = clock
        self._writer = SegmentWriter(directory, policy, clock)
        self._leftovers: list[Path] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._planned: float | None = None  # the rotation deadline the task sleeps towards
        self._next_retention = 0.0  # clock time of the next retention pass

    @property
    def current(self) -> Path | None:
        """The open segment, if any."""
        return self._writer.current

    def write(self, data: bytes) -> None:
        """Append whole lines (blocking; called from the record log's writer thread)."""
        self._writer.write(data)

    def notify(self) -> None:
        """A batch was written (call on the loop): wake housekeeping if a segment was closed
        or a new one opened (its age deadline is new); otherwise there is nothing to do."""
        writer = self._writer
        if self._wake is not None and (writer.has_closed or writer.deadline() != self._planned):
            self._wake.set()

    async def start(self) -> None:
        """Start housekeeping; segments a crash left plain are compressed first."""
        if self._task is not None:
            return
        await asyncio.to_thread(remove_temporaries, self.directory)
        self._leftovers = await asyncio.to_thread(plain_segments, self.directory)
        self._closing = False
        self._wake = asyncio.Event()
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="record-log-housekeeping")

    async def close(self) -> None:
        """Stop housekeeping, close the open segment and compress it. Idempotent."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            assert self._wake is not None
            self._wake.set()
            await asyncio.wait({task})  # it finishes the pass it is in (no half-done file)
        self._wake = None
        await asyncio.to_thread(self._writer.close)
        await self._housekeep()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sleep()):
                    await self._wake.wait()
            self._wake.clear()
            await self._housekeep()

    def _sleep(self) -> float:
        deadline = self._planned = self._writer.deadline()
        if deadline is None:
            return HOUSEKEEPING_INTERVAL
        return max(0.0, min(HOUSEKEEPING_INTERVAL, deadline - self._clock()))

    async def _housekeep(self) -> None:
        await asyncio.to_thread(self._writer.rotate_if_older)
        closed, self._leftovers = self._leftovers + self._writer.take_closed(), []
        for path in closed:
            await self._compress(path)
        if closed or self._clock() >= self._next_retention:  # not a directory scan per batch
            self._next_retention = self._clock() + HOUSEKEEPING_INTERVAL
            await self._retain()

    async def _compress(self, path: Path) -> None:
        try:
            await asyncio.to_thread(compress_segment, path)
        except OSError:
            self.errors += 1  # the plain file stays readable; the next start tries again
            _log.exception("compressing log segment %s failed", path)
        else:
            self.compressed += 1

    async def _retain(self) -> None:
        try:
            removed = await asyncio.to_thread(
                apply_retention,
                self.directory,
                self.policy.retention,
                self._clock(),
                self._writer.current,
            )
        except OSError:
            self.errors += 1
            _log.exception("deleting old log segments in %s failed", self.directory)
        else:
            self.deleted += len(removed)
