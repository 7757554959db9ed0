"""A durable, bounded, append-only outbox of log records for one TSA URL.

Records are JSON lines in small segment files named by the absolute index of their first
record (``00000000000000001000.jsonl``), in one directory per URL. A ``head`` file holds the
index of the first record not yet acknowledged, so a restart neither resends what the TSA took
nor loses what it did not. Every batch is fsynced before :meth:`Outbox.append` returns, and all
file work runs in a worker thread so the event loop never waits on the disk.

Crash safety: a crash can leave a torn last line; lines that do not parse are skipped on
reopen, and a reopened segment is never appended to again (new records go to a fresh
segment), so line positions stay stable. Bound: beyond ``max_records`` unacknowledged records
the oldest are dropped (counted in ``dropped``) rather than letting a dead TSA fill the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, ParamSpec, TypeVar

import orjson

logger = logging.getLogger("shaping.tsa")

SEGMENT_RECORDS: Final = 1_000  # records per segment file before a new one is started
SEGMENT_SUFFIX: Final = ".jsonl"
HEAD_FILE: Final = "head"
URL_FILE: Final = "url"  # the URL in clear, for operators looking at the directory

P = ParamSpec("P")
T = TypeVar("T")


def outbox_directory(root: Path, url: str) -> Path:
    """The directory that holds the outbox of ``url`` under ``root``."""
    return root / hashlib.sha256(url.encode()).hexdigest()[:32]


@dataclasses.dataclass
class _Segment:
    first: int  # absolute index of the first record
    count: int  # complete, parseable records
    path: Path

    @property
    def end(self) -> int:
        return self.first + self.count


class Outbox:
    """Unsent records of one URL, oldest first; see the module docstring.

    Use :meth:`open`. :meth:`peek` returns the oldest records and :meth:`ack` drops the first
    ``n`` of them once sent; records dropped by the bound while a batch is in flight are simply
    skipped by the ack. Safe to use from several tasks (one operation at a time).
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_records: int,
        segment_records: int = SEGMENT_RECORDS,
        what: str = "TSA outbox",  # how log lines name it (the outbox also serves webhooks)
    ) -> None:
        if max_records < 1 or segment_records < 1:
            raise ValueError("max_records and segment_records must be at least 1")
        self.directory = directory
        self.what = what
        self.max_records = max_records
        self.dropped = 0  # records dropped by the bound since this object was made
        self._segment_records = segment_records
        self._segments: list[_Segment] = []
        self._head = 0  # absolute index of the first unacknowledged record
        self._next = 0  # absolute index the next appended record gets
        self._tail: IO[bytes] | None = None  # open file of the last segment, if appendable
        self._cache: tuple[int, list[bytes]] | None = None  # (segment first, its lines)
        self._peeked_ends: list[int] = []  # index after each record of the last peek
        self._lock = threading.Lock()  # worker threads may outlive a cancelled caller

    @classmethod
    async def open(
        cls,
        root: Path,
        url: str,
        *,
        max_records: int,
        segment_records: int = SEGMENT_RECORDS,
    ) -> Outbox:
        """Open (creating if needed) the outbox of ``url`` under ``root``."""
        outbox = cls(
            outbox_directory(root, url),
            max_records=max_records,
            segment_records=segment_records,
        )
        await asyncio.to_thread(outbox.load, url)
        return outbox

    @property
    def backlog(self) -> int:
        """Records appended and not yet acknowledged (nor dropped)."""
        return sum(max(0, seg.end - max(seg.first, self._head)) for seg in self._segments)

    async def append(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append ``records`` durably (fsynced) after all earlier ones."""
        await self.append_lines([orjson.dumps(record, default=str) for record in records])

    async def append_lines(self, lines: Sequence[bytes]) -> None:
        """Append already-encoded records (compact JSON, no newline) durably."""
        if lines:
            await asyncio.to_thread(self._locked, self._append, lines)

    async def peek(self, n: int) -> list[dict[str, Any]]:
        """Up to ``n`` of the oldest unacknowledged records, decoded."""
        return [orjson.loads(line) for line in await self.peek_lines(n)]

    async def peek_lines(self, n: int) -> list[bytes]:
        """Up to ``n`` of the oldest unacknowledged records, as JSON text."""
        return await asyncio.to_thread(self._locked, self._peek, n)

    async def ack(self, n: int) -> None:
        """Acknowledge the first ``n`` records of the last peek: they are never returned again."""
        await asyncio.to_thread(self._locked, self._ack, n)

    async def close(self) -> None:
        """Close the open segment file; the outbox can be reopened later."""
        await asyncio.to_thread(self._locked, self._close_tail)

    def load(self, url: str) -> None:
        """Read the directory (blocking; :meth:`open` runs it in a thread)."""
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            url_file = self.directory / URL_FILE
            if not url_file.exists():
                url_file.write_text(url + "\n")
            self._head = _read_head(self.directory / HEAD_FILE)
            self._segments = _scan(self.directory)
            if self._segments:
                self._head = max(self._head, self._segments[0].first)
                self._next = max(self._head, self._segments[-1].end)
            else:
                self._next = self._head
            self._delete_acknowledged()
            self._enforce_bound()

    # The rest runs in worker threads, under self._lock.

    def _locked(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._lock:
            return fn(*args, **kwargs)

    def _append(self, lines: Sequence[bytes]) -> None:
        segment, tail = self._writable_segment()
        data = b"".join(line + b"\n" for line in lines)
        position = tail.tell()
        try:
            tail.write(data)
            tail.flush()
            os.fsync(tail.fileno())
        except OSError:
            # Leave no partial line behind, and never write to this file again.
            with contextlib.suppress(OSError):
                tail.truncate(position)
            self._close_tail()
            raise
        self._extend_cache(segment, lines)
        segment.count += len(lines)
        self._next = segment.end
        self._enforce_bound()

    def _extend_cache(self, segment: _Segment, lines: Sequence[bytes]) -> None:
        # A cached tail segment stays whole, so peeking at fresh records needs no re-read.
        cache = self._cache
        if cache is not None and cache[0] == segment.first and len(cache[1]) == segment.count:
            cache[1].extend(lines)

    def _writable_segment(self) -> tuple[_Segment, IO[bytes]]:
        if self._tail is not None and self._segments[-1].count < self._segment_records:
            return self._segments[-1], self._tail
        self._close_tail()
        segment = _Segment(self._next, 0, self.directory / _segment_name(self._next))
        self._tail = segment.path.open("ab")
        fsync_directory(self.directory)  # the new name must survive a crash too
        self._segments.append(segment)
        return segment, self._tail

    def _peek(self, n: int) -> list[bytes]:
        found: list[bytes] = []
        self._peeked_ends = []
        for segment in self._segments:
            if len(found) >= n:
                break
            start = max(0, self._head - segment.first)
            chosen = self._lines(segment)[start : start + n - len(found)]
            found.extend(chosen)
            first = segment.first + start
            self._peeked_ends.extend(range(first + 1, first + 1 + len(chosen)))
        return found

    def _lines(self, segment: _Segment) -> list[bytes]:
        if self._cache is None or self._cache[0] != segment.first:
            self._cache = (segment.first, [])
        if len(self._cache[1]) < segment.count:  # the tail segment may have grown
            self._cache = (segment.first, _good_lines(segment.path.read_bytes()))
        return self._cache[1][: segment.count]

    def _ack(self, n: int) -> None:
        if n < 0 or n > len(self._peeked_ends):
            raise ValueError(f"cannot acknowledge {n} of {len(self._peeked_ends)} peeked records")
        if n:
            self._advance_head(self._peeked_ends[n - 1])
        self._peeked_ends = self._peeked_ends[n:]

    def _enforce_bound(self) -> None:
        excess = self.backlog - self.max_records
        if excess <= 0:
            return
        self.dropped += excess
        logger.warning(
            "%s %s over %d records: dropped the %d oldest",
            self.what,
            self.directory,
            self.max_records,
            excess,
        )
        self._advance_head(self._index_after(excess))

    def _index_after(self, count: int) -> int:
        """The absolute index just past the ``count`` oldest unacknowledged records."""
        for segment in self._segments:
            available = max(0, segment.end - max(segment.first, self._head))
            if count <= available:
                return max(segment.first, self._head) + count
            count -= available
        return self._next

    def _advance_head(self, index: int) -> None:
        if index <= self._head:
            return
        self._head = index
        _write_head(self.directory, index)
        self._delete_acknowledged()

    def _delete_acknowledged(self) -> None:
        while self._segments and self._segments[0].end <= self._head:
            segment = self._segments.pop(0)
            if not self._segments:
                self._close_tail()
            if self._cache is not None and self._cache[0] == segment.first:
                self._cache = None
            segment.path.unlink(missing_ok=True)

    def _close_tail(self) -> None:
        tail, self._tail = self._tail, None
        if tail is not None:
            tail.close()


def _segment_name(first: int) -> str:
    return f"{first:020d}{SEGMENT_SUFFIX}"


def _good_lines(data: bytes) -> list[bytes]:
    """Complete lines that parse as JSON: a torn or zero-filled end after a crash is skipped."""
    lines = data.split(b"\n")[:-1]  # whatever follows the last newline is an unfinished line
    return [line for line in lines if _parses(line)]


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _scan(directory: Path) -> list[_Segment]:
    """The segments holding at least one record, oldest first; empty ones are deleted."""
    segments = []
    for path in directory.glob("*" + SEGMENT_SUFFIX):
        try:
            first = int(path.name.removesuffix(SEGMENT_SUFFIX))
        except ValueError:
            continue
        count = len(_good_lines(path.read_bytes()))
        if count:
            segments.append(_Segment(first, count, path))
        else:
            path.unlink()
    return sorted(segments, key=lambda seg: seg.first)


def _read_head(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except FileNotFoundError:
        return 0
    except ValueError:  # unreadable: resending is better than losing
        logger.warning("TSA outbox head file %s is unreadable; starting from its oldest", path)
        return 0


def _write_head(directory: Path, index: int) -> None:
    # Write-then-rename so the head is always either the old or the new value.
    temporary = directory / (HEAD_FILE + ".tmp")
    with temporary.open("w") as handle:
        handle.write(f"{index}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, directory / HEAD_FILE)
    fsync_directory(directory)


def fsync_directory(directory: Path) -> None:
    """Make entries created, renamed or removed in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
