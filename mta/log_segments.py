"""Local log segment files: rotated by size and age, compressed when closed, deleted by age.

Layout under `[log] path`: one open segment `records-YYYYMMDD-HHMMSS-ffffff.jsonl` (UTC time
it was opened, so names sort by time) being appended to, and closed segments compressed to
`<name>.jsonl.zst` (zstd) or `<name>.jsonl.gz` (gzip, when the zstandard package is missing).
A `records.jsonl` left by older versions is read by search and otherwise left alone.

Writes are line-buffered batches without fsync (a record log is not the spool: a crash may
lose the last batch, never the mail). A segment left uncompressed by a crash is compressed at
the next start. Compression writes `<name>.tmp`, renames it into place and only then deletes
the plain file, so a reader that sees both names prefers the compressed one and never reads
a record twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

try:
    import zstandard
except ImportError:  # pragma: no cover - a dependency; gzip keeps a bare install working
    zstandard = None  # type: ignore[assignment]

_log = logging.getLogger(__name__)

LEGACY_FILE: Final = "records.jsonl"  # the single file written before segments existed
PREFIX: Final = "records-"
OPEN_SUFFIX: Final = ".jsonl"
ZSTD_SUFFIX: Final = ".jsonl.zst"
GZIP_SUFFIX: Final = ".jsonl.gz"
TEMP_SUFFIX: Final = ".tmp"
NAME_FORMAT: Final = "%Y%m%d-%H%M%S-%f"  # fixed width: lexical order is time order
ZSTD_LEVEL: Final = 3  # zstd's default: ~10x on JSON lines at hundreds of MB/s
GZIP_LEVEL: Final = 6
COPY_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class SegmentPolicy:
    """When to close a segment and how long to keep closed ones (0 = keep forever)."""

    max_bytes: int = 100 * 1024 * 1024
    max_age: float = 3600.0
    retention: float = 7 * 86400.0

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_age <= 0 or self.retention < 0:
            raise ValueError("segment max_bytes and max_age must be positive, retention >= 0")


def compressed_suffix() -> str:
    """The suffix closed segments get: zstd when available, else gzip."""
    return ZSTD_SUFFIX if zstandard is not None else GZIP_SUFFIX


class SegmentWriter:
    """The open segment of one directory. Blocking; every method is thread-safe.

    `write()` rotates by size before writing; `rotate_if_older()` by age. Closed plain
    segments wait in `take_closed()` for the caller to compress them off the writer's path.
    """

    def __init__(
        self, directory: Path, policy: SegmentPolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = directory
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._size = 0
        self._closed: list[Path] = []

    @property
    def current(self) -> Path | None:
        """The open segment, if any."""
        return self._path

    @property
    def has_closed(self) -> bool:
        """Whether segments wait in `take_closed()`."""
        return bool(self._closed)

    def deadline(self) -> float | None:
        """When the open segment gets too old (clock time); None when none is open."""
        return None if self._file is None else self._opened_at + self.policy.max_age

    def write(self, data: bytes) -> None:
        """Append `data` (whole lines) to the open segment, rotating first when full."""
        with self._lock:
            if self._file is not None and self._size + len(data) > self.policy.max_bytes:
                self._close_locked()
            if self._file is None:
                self._open_locked()
            assert self._file is not None
            self._file.write(data)
            self._file.flush()  # visible to `mta log search` after each batch
            self._size += len(data)

    def rotate_if_older(self, now: float | None = None) -> bool:
        """Close the open segment if it reached `max_age`; True if one was closed."""
        with self._lock:
            deadline = self.deadline()
            if deadline is None or (self._clock() if now is None else now) < deadline:
                return False
            self._close_locked()
            return True

    def close(self) -> None:
        """Close the open segment (it joins `take_closed()`)."""
        with self._lock:
            self._close_locked()

    def take_closed(self) -> list[Path]:
        """Plain segments closed since the last call, oldest first."""
        with self._lock:
            closed, self._closed = self._closed, []
            return closed

    def _open_locked(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        now = self._clock()
        path = _free_name(self.directory, now)
        self._file = path.open("xb")
        self._path, self._opened_at, self._size = path, now, 0

    def _close_locked(self) -> None:
        file, self._file = self._file, None
        if file is None:
            return
        try:
            file.close()
        finally:
            assert self._path is not None
            if self._size:
                self._closed.append(self._path)
            else:  # nothing was written (the first write failed): no empty files left behind
                self._path.unlink(missing_ok=True)
            self._path = None


def _free_name(directory: Path, now: float) -> Path:
    """A segment name for `now` that no plain or compressed segment has taken yet."""
    stamp = dt.datetime.fromtimestamp(now, dt.UTC)
    while True:
        stem = PREFIX + stamp.strftime(NAME_FORMAT)
        names = (stem + OPEN_SUFFIX, stem + ZSTD_SUFFIX, stem + GZIP_SUFFIX)
        if not any((directory / name).exists() for name in names):
            return directory / names[0]
        stamp += dt.timedelta(microseconds=1)


def compress_segment(path: Path) -> Path:
    """Compress a closed plain segment next to itself; returns the new path (blocking)."""
    target = path.with_name(path.name.removesuffix(OPEN_SUFFIX) + compressed_suffix())
    temporary = target.with_name(target.name + TEMP_SUFFIX)
    try:
        with path.open("rb") as source, _compressed_writer(temporary) as sink:
            shutil.copyfileobj(source, sink, COPY_CHUNK)
        stat = path.stat()
        os.utime(temporary, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # retention and --since
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    path.unlink()
    return target


@contextlib.contextmanager
def _compressed_writer(path: Path) -> Iterator[IO[bytes]]:
    with path.open("xb") as raw:
        if zstandard is not None:
            with zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw) as writer:
                yield writer
        else:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL) as writer:
                yield writer


def plain_segments(directory: Path, exclude: Path | None = None) -> list[Path]:
    """Uncompressed segments other than `exclude`: at start, the ones a crash left open."""
    if not directory.is_dir():
        return []
    found = [
        path
        for path in directory.glob(PREFIX + "*" + OPEN_SUFFIX)
        if path != exclude and not _compressed_twin(path).exists()
    ]
    return sorted(found)


def _compressed_twin(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(OPEN_SUFFIX) + compressed_suffix())


def remove_temporaries(directory: Path) -> None:
    """Delete half-written compressed files left by a crash (their plain file still exists)."""
    if directory.is_dir():
        for path in directory.glob(PREFIX + "*" + TEMP_SUFFIX):
            path.unlink(missing_ok=True)


def apply_retention(
    directory: Path, retention: float, now: float, exclude: Path | None = None
) -> list[Path]:
    """Delete segments last written more than `retention` seconds ago (0: keep all)."""
    if retention <= 0 or not directory.is_dir():
        return []
    removed = []
    for path in segment_files(directory):
        if path == exclude or path.name == LEGACY_FILE:
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < now - retention:
                path.unlink()
                removed.append(path)
    return removed


def segment_files(directory: Path) -> list[Path]:
    """Every record file of `directory` in time order: the legacy file, then segments."""
    if not directory.is_dir():
        return []
    by_stem: dict[str, Path] = {}
    for path in directory.iterdir():
        stem = _segment_stem(path.name)
        if stem is not None and (stem not in by_stem or path.suffix != ".jsonl"):
            by_stem[stem] = path  # a compressed twin wins over its plain original
    legacy = directory / LEGACY_FILE
    return ([legacy] if legacy.is_file() else []) + [by_stem[s] for s in sorted(by_stem)]


def _segment_stem(name: str) -> str | None:
    if not name.startswith(PREFIX):
        return None
    for suffix in (ZSTD_SUFFIX, GZIP_SUFFIX, OPEN_SUFFIX):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return None


def read_lines(path: Path) -> Iterator[bytes]:
    """The complete lines of a record file, plain or compressed (a torn last line skipped).

    A plain segment compressed while being read is followed to its compressed twin.
    """
    try:
        with _reader(path) as stream:
            yield from _complete_lines(stream)
    except FileNotFoundError:
        twin = _compressed_twin(path)
        if path.suffix != ".jsonl" or not twin.exists():
            raise
        yield from read_lines(twin)


@contextlib.contextmanager
def _reader(path: Path) -> Iterator[IO[bytes]]:
    if path.name.endswith(ZSTD_SUFFIX):
        if zstandard is None:  # pragma: no cover - zstandard is a dependency
            raise OSError(f"{path}: zstandard is not installed")
        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as reader:
            yield io.BufferedReader(reader)
    elif path.name.endswith(GZIP_SUFFIX):
        with gzip.open(path, "rb") as reader:
            yield reader  # type: ignore[misc]  # GzipFile is a binary IO in all but name
    else:
        with path.open("rb") as reader:
            yield reader


def _complete_lines(stream: IO[bytes]) -> Iterator[bytes]:
    for line in stream:
        if line.endswith(b"\n"):
            yield line
        elif line:
            _log.debug("skipping an unfinished last line (%d bytes)", len(line))
