"""The Spool: a durable, log-structured message store with group commit."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from spool import ops, records, segments
from spool.compactor import Compactor
from spool.errors import SpoolError, SpoolUnavailable, UnknownMessage
from spool.health import FreeSpace
from spool.index import DATA_LEN, META_OFF, META_SEG, NO_SEGMENT, REC_OFF, SEG, Index, data_location
from spool.lock import DirectoryLock
from spool.ops import Op
from spool.recovery import Recovered, recover
from spool.writer import Writer

logger = logging.getLogger("spool")

DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024
HEADER_SIZE: Final = records.RECORD_HEADER_SIZE
META_READ_AHEAD: Final = 2048  # bytes read at a record to get its meta, usually all of it
_NEW, _OPEN, _CLOSED = "new", "open", "closed"


@dataclass(frozen=True, slots=True)
class RecoveredMessage:
    """A live message found by Spool.open()."""

    id: str
    meta: dict[str, Any]
    size: int  # message bytes length


class RecoveredMessages:
    """The live messages found by Spool.open(), oldest first, read as they are iterated.

    Each message's latest meta is read back from its segment and decoded only when the
    iteration reaches it, so that a million recovered messages are never all in memory at
    once. Messages removed since open() are skipped; those stored since are not included.
    """

    def __init__(self, spool: Spool, ids: list[str]) -> None:
        self._spool = spool
        self._ids = ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[RecoveredMessage]:
        for msg_id in self._ids:
            message = self._spool._recovered(msg_id)
            if message is not None:
                yield message


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """A snapshot of the spool's counters."""

    messages: int
    segments: int
    bytes_on_disk: int
    quarantined: int  # segments or tails quarantined since open()
    commits: int = 0  # group commits (one write + one fsync each)
    compacted: int = 0  # records rewritten by compaction since open()


class Spool:
    """Durable store of (message id, JSON meta, message bytes) on a local directory.

    Layout: ``spool.lock``, ``segments/NNNNNNNNNNNN.seg`` (append-only logs) and
    ``quarantine/`` (torn or unreadable data found at recovery). Writes are group
    committed: every store/update/remove returns only once its record is fsynced.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        min_free_bytes: int = 0,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
    ) -> None:
        self._path = Path(path)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._free_space = FreeSpace(self._path, min_free_bytes)
        self._lock = DirectoryLock(self._path)
        self._files = segments.SegmentFiles(self._path / "segments", fsync=fsync)
        self._index = Index()
        self._state = _NEW
        self._quarantined = 0
        self._writer: Writer | None = None
        self._compactor: Compactor | None = None
        self._compactor_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        """The spool directory."""
        return self._path

    async def open(self) -> RecoveredMessages:
        """Lock the directory, recover its contents and start accepting writes.

        Returns the live messages, whose latest meta is read as they are iterated (see
        `RecoveredMessages`). Raises SpoolLocked when another process holds the directory.
        """
        if self._state != _NEW:
            raise SpoolError("a Spool can be opened only once")
        recovered = await asyncio.to_thread(self._open_sync)
        messages = RecoveredMessages(self, list(recovered.index.entries))
        try:
            await self._start(recovered)
        except BaseException:
            self._files.close_all()
            self._lock.release()
            raise
        self._state = _OPEN
        return messages

    def unhealthy_reason(self) -> str | None:
        """Why stores would fail right now, or None; cheap enough to call per MAIL."""
        if self._state != _OPEN:
            return "spool is not open" if self._state == _NEW else "spool is closed"
        assert self._writer is not None
        return self._writer.error or self._free_space.problem()

    async def store(self, msg_id: str, meta: Mapping[str, Any], data: bytes) -> None:
        """Store a new message; returns once it is durable.

        Raises SpoolUnavailable when unhealthy or when the write fails, SpoolError
        when ``msg_id`` is already live.
        """
        reason = self.unhealthy_reason()
        if reason is not None:
            raise SpoolUnavailable(reason)
        if msg_id in self._index.entries:
            raise SpoolError(f"message {msg_id!r} is already in the spool")
        await self._commit(ops.STORE, msg_id, records.encode_meta(meta), bytes(data))

    async def update(self, msg_id: str, meta: Mapping[str, Any]) -> None:
        """Replace a message's meta; returns once durable. UnknownMessage if absent."""
        self._require_open()
        if msg_id not in self._index.entries:
            raise UnknownMessage(msg_id)
        await self._commit(ops.UPDATE, msg_id, records.encode_meta(meta))

    async def remove(self, msg_id: str) -> None:
        """Remove a message; returns once durable. No error if it is already gone."""
        await self.remove_soon(msg_id)

    def remove_soon(self, msg_id: str) -> asyncio.Future[None]:
        """Queue a removal and return at once (a delivered message's last write: losing it to a
        crash means one more delivery, never a lost message). The future resolves once the
        removal is durable; later writes to the spool are committed in order after it."""
        self._require_open()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submit(Op(ops.REMOVE, msg_id, future))
        return future

    def read(self, msg_id: str) -> bytes:
        """The message bytes (a synchronous pread). UnknownMessage if absent."""
        self._require_open()
        entry = self._index.entries.get(msg_id)
        if entry is None:
            raise UnknownMessage(msg_id)
        seg, offset, length = data_location(entry)
        try:
            return segments.read_exact(self._files.fd(seg), length, offset)
        except OSError as exc:
            raise SpoolError(f"cannot read message {msg_id!r}: {exc}") from exc

    def read_meta(self, msg_id: str) -> dict[str, Any]:
        """The message's latest meta (a synchronous pread). UnknownMessage if absent,
        SpoolError if it cannot be read or is not a JSON object."""
        self._require_open()
        entry = self._index.entries.get(msg_id)
        if entry is None:
            raise UnknownMessage(msg_id)
        if entry[META_SEG] == NO_SEGMENT:
            seg, offset = entry[SEG], entry[REC_OFF]  # the meta inside the DATA record
        else:
            seg, offset = entry[META_SEG], entry[META_OFF]
        try:
            fd = self._files.fd(seg)
            head = segments.read_exact(fd, META_READ_AHEAD, offset, at_least=HEADER_SIZE)
            id_len, meta_len = records.id_and_meta_lengths(head)
            start = HEADER_SIZE + id_len
            if start + meta_len <= len(head):  # one read for the usual meta of a few hundred bytes
                return records.decode_meta(head[start : start + meta_len])
            return records.decode_meta(segments.read_exact(fd, meta_len, offset + start))
        except (OSError, ValueError) as exc:
            raise SpoolError(f"cannot read the meta of message {msg_id!r}: {exc}") from exc

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self._index.entries

    def __len__(self) -> int:
        return len(self._index.entries)

    def stats(self) -> SpoolStats:
        """Counters for monitoring and tests."""
        segs = self._index.segments.values()
        return SpoolStats(
            messages=len(self._index.entries),
            segments=len(segs),
            bytes_on_disk=sum(info.size for info in segs),
            quarantined=self._quarantined,
            commits=self._writer.commits if self._writer else 0,
            compacted=self._compactor.compacted if self._compactor else 0,
        )

    async def close(self) -> None:
        """Commit pending writes, stop background work and release the lock; idempotent."""
        if self._close_task is None:
            if self._state != _OPEN:
                self._state = _CLOSED
                return
            self._state = _CLOSED
            self._close_task = asyncio.get_running_loop().create_task(self._shutdown())
        await asyncio.shield(self._close_task)

    def _open_sync(self) -> Recovered:
        # Recovery allocates millions of long-lived objects; the cyclic GC would rescan
        # them over and over (doubling recovery time) while finding no garbage.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._recover_sync()
        finally:
            if gc_was_enabled:
                gc.enable()

    def _recover_sync(self) -> Recovered:
        for directory in (self._path, self._files.directory, self._path / "quarantine"):
            directory.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            recovered = recover(self._files.directory, self._path / "quarantine", fsync=self._fsync)
            segments.unlink_segments(
                self._files.directory, recovered.index.take_deletable(), fsync=self._fsync
            )
            if self._fsync:
                segments.fsync_dir(self._path)
            return recovered
        except BaseException:
            self._lock.release()
            raise

    async def _start(self, recovered: Recovered) -> None:
        self._index = recovered.index
        self._quarantined = recovered.quarantined
        self._compactor = Compactor(self._index, self._files.directory, self._submit)
        self._writer = Writer(
            self._index,
            self._files,
            segment_bytes=self._segment_bytes,
            next_segment=recovered.highest_segment + 1,
            on_commit=self._compactor.poke,
        )
        await self._writer.roll()  # always append to a fresh segment after a restart
        self._writer.start()
        self._compactor_task = asyncio.get_running_loop().create_task(
            self._compactor.run(), name="spool-compactor"
        )

    def _recovered(self, msg_id: str) -> RecoveredMessage | None:
        """One message of `RecoveredMessages`; None once it is gone."""
        entry = self._index.entries.get(msg_id)
        if entry is None or self._state != _OPEN:
            return None
        try:
            meta = self.read_meta(msg_id)
        except SpoolError as exc:
            # A CRC-valid record with bad JSON is a bug, not a crash artefact; keep the
            # message and let the caller's meta validation decide what to do with it.
            logger.error("message %s has unreadable meta in the spool: %s", msg_id, exc)
            meta = {}
        return RecoveredMessage(msg_id, meta, entry[DATA_LEN])

    def _require_open(self) -> None:
        if self._state != _OPEN:
            raise SpoolUnavailable(
                "spool is closed" if self._state == _CLOSED else "spool is not open"
            )

    def _submit(self, op: Op) -> None:
        assert self._writer is not None
        self._writer.submit(op)

    async def _commit(self, kind: int, msg_id: str, meta: bytes = b"", data: bytes = b"") -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submit(Op(kind, msg_id, future, meta=meta, data=data))
        await future

    async def _shutdown(self) -> None:
        if self._compactor_task is not None:
            self._compactor_task.cancel()
            await asyncio.wait([self._compactor_task])
        if self._writer is not None:
            await self._writer.close()
        self._files.close_all()
        self._lock.release()
