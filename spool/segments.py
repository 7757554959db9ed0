"""Segment files on disk: naming, creation, appending with fsync, reading, deleting.

Every function here blocks; the Spool calls them from worker threads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from spool import records

SEGMENT_SUFFIX: Final = ".seg"
_NAME_DIGITS: Final = 12
_TMP_SUFFIX: Final = ".tmp"


def segment_name(number: int) -> str:
    """File name of segment ``number``."""
    return f"{number:0{_NAME_DIGITS}d}{SEGMENT_SUFFIX}"


def segment_number(name: str) -> int | None:
    """The number in a segment file name, or None for any other name."""
    stem, dot, suffix = name.partition(".")
    if dot and "." + suffix == SEGMENT_SUFFIX and len(stem) == _NAME_DIGITS and stem.isdigit():
        return int(stem)
    return None


def list_segments(directory: Path) -> list[int]:
    """Numbers of the segment files in ``directory``, ascending; drops unfinished creations."""
    numbers = []
    for name in os.listdir(directory):
        if name.endswith(SEGMENT_SUFFIX + _TMP_SUFFIX):
            os.unlink(directory / name)  # a crash during create_segment; never acknowledged
        elif (number := segment_number(name)) is not None:
            numbers.append(number)
    return sorted(numbers)


def fsync_dir(directory: Path) -> None:
    """Make entries created, renamed or removed in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_segment(directory: Path, number: int, *, fsync: bool) -> int:
    """Create segment ``number`` with its header and return a read/write fd.

    The header is written to a temporary name first so that a segment file never
    exists without a complete header.
    """
    final = directory / segment_name(number)
    tmp = final.with_name(final.name + _TMP_SUFFIX)
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        write_all(fd, records.encode_segment_header(), 0)
        if fsync:
            os.fdatasync(fd)
        os.rename(tmp, final)
        if fsync:
            fsync_dir(directory)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd


def open_segment(directory: Path, number: int) -> int:
    """A read-only fd of an existing segment."""
    return os.open(directory / segment_name(number), os.O_RDONLY | os.O_CLOEXEC)


def write_all(fd: int, buf: bytes, offset: int) -> None:
    """pwrite ``buf`` at ``offset``, retrying short writes."""
    view = memoryview(buf)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def append(fd: int, offset: int, chunks: list[bytes], *, fsync: bool) -> None:
    """Write ``chunks`` at ``offset`` and make them durable.

    On failure the file is truncated back to ``offset`` (best effort) so no torn
    record remains, and the original error is re-raised.
    """
    try:
        write_all(fd, b"".join(chunks), offset)
        if fsync:
            os.fdatasync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, offset)
            if fsync:
                os.fdatasync(fd)
        raise


def read_exact(fd: int, size: int, offset: int, *, at_least: int | None = None) -> bytes:
    """pread exactly ``size`` bytes; OSError when the file is shorter.

    With ``at_least``, up to ``size`` bytes: fewer only where the file ends, but never
    fewer than ``at_least``.
    """
    if at_least is not None:
        data = os.pread(fd, size, offset)
        if len(data) >= at_least:
            return data
        return data + read_exact(fd, at_least - len(data), offset + len(data))
    parts = [b""]
    while size > 0:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            raise OSError(f"segment ended {size} bytes early at offset {offset}")
        parts.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return parts[-1] if len(parts) <= 2 else b"".join(parts)


def read_record(fd: int, offset: int) -> records.DecodedRecord:
    """Read and check the whole record at ``offset``; ValueError if it is corrupt."""
    header = read_exact(fd, records.RECORD_HEADER_SIZE, offset)
    payload = read_exact(fd, records.payload_length(header), offset + len(header))
    return records.decode_record(header + payload)


def unlink_segments(directory: Path, numbers: Iterable[int], *, fsync: bool) -> None:
    """Delete segments in the given order, each durably before the next.

    Order matters: a segment holding REMOVEs is only deleted after the older
    segments it shadows, so a crash in between never resurrects a message.
    """
    for number in numbers:
        os.unlink(directory / segment_name(number))
        if fsync:
            fsync_dir(directory)


class SegmentFiles:
    """Open fds of the segments, opened lazily for reading; the active one is read/write."""

    def __init__(self, directory: Path, *, fsync: bool) -> None:
        self.directory = directory
        self.fsync = fsync
        self._fds: dict[int, int] = {}

    def fd(self, number: int) -> int:
        """An fd for reading segment ``number`` (opened on first use)."""
        fd = self._fds.get(number)
        if fd is None:
            fd = self._fds[number] = open_segment(self.directory, number)
        return fd

    def adopt(self, number: int, fd: int) -> None:
        """Keep ``fd`` (from create_segment) as the fd of segment ``number``."""
        self._fds[number] = fd

    def forget(self, numbers: Iterable[int]) -> None:
        """Close the fds of segments about to be deleted."""
        for number in numbers:
            fd = self._fds.pop(number, None)
            if fd is not None:
                os.close(fd)

    def close_all(self) -> None:
        """Close every fd."""
        self.forget(list(self._fds))
