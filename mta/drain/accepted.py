"""The ids of the messages this node took over from a draining peer: bounded and durable.

While a handed-over message waits in our spool, its id in the spool is enough to recognise a
retry. Once delivered it is gone from the spool; a drain that crashed after our 200 and before
its own removal sends it again later, and this record answers "already accepted" instead of
delivering it twice. It is an append-only file of one id per line, group committed (one
write and one fsync for every id that arrived meanwhile), rewritten with the newest
`keep` ids once it holds twice as many.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Final

FILE_NAME: Final = "drain-accepted.ids"
KEEP: Final = 65_536  # far more than the messages in flight of any drain run


class AcceptedIds:
    """A bounded set of message ids, durable once `add` returns."""

    def __init__(self, path: Path, *, keep: int = KEEP, fsync: bool = True) -> None:
        self.path = path
        self._keep = keep
        self._fsync = fsync
        self._ids: dict[str, None] = {}  # insertion ordered: the oldest first
        self._lines = 0  # lines in the file
        self._pending: list[str] = []
        self._batch: asyncio.Future[None] | None = None  # what `_pending` waits for
        self._lock = asyncio.Lock()

    def load(self) -> None:
        """Read the file (blocking; at start). A torn last line (a crash) is ignored."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError:
            return
        lines = text.split("\n")
        complete = lines[:-1]  # after the last newline: empty, or a torn write
        self._lines = len(complete)
        self._ids = dict.fromkeys(line for line in complete[-self._keep :] if line)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    async def add(self, msg_id: str) -> None:
        """Record `msg_id`; returns once it is on disk. Raises OSError when it cannot be."""
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
        written = self._batch
        self._pending.append(msg_id)
        async with self._lock:
            if not written.done():  # else the previous holder wrote ours too
                await self._flush(written)
        written.result()

    async def _flush(self, written: asyncio.Future[None]) -> None:
        batch, self._pending, self._batch = self._pending, [], None
        try:
            await asyncio.to_thread(self._write, batch)
        except BaseException as exc:
            # Everyone waiting on this batch learns it failed (a cancel included).
            written.set_exception(exc if isinstance(exc, OSError) else OSError(str(exc)))
            written.exception()  # retrieved here: the waiters may all be gone
            raise
        for done in batch:
            self._ids[done] = None
        while len(self._ids) > self._keep:
            del self._ids[next(iter(self._ids))]
        written.set_result(None)

    def _write(self, batch: list[str]) -> None:
        if self._lines + len(batch) > 2 * self._keep:
            self._rewrite([*self._ids, *batch][-self._keep :])
            return
        with self.path.open("a", encoding="ascii") as file:
            file.write("".join(f"{msg_id}\n" for msg_id in batch))
            file.flush()
            if self._fsync:
                os.fsync(file.fileno())
        self._lines += len(batch)

    def _rewrite(self, ids: list[str]) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="ascii") as file:
            file.write("".join(f"{msg_id}\n" for msg_id in ids))
            file.flush()
            if self._fsync:
                os.fsync(file.fileno())
        os.replace(temporary, self.path)
        if self._fsync:  # the rename itself must survive a crash
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        self._lines = len(ids)
