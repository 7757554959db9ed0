"""Rebuild the index from the segment files at startup, quarantining torn data.

Blocking; the Spool runs it in a worker thread.
"""

from __future__ import annotations

import logging
import mmap
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from spool import records
from spool.index import Index
from spool.segments import fsync_dir, list_segments, segment_name

logger = logging.getLogger("spool")


@dataclass
class Recovered:
    """What recovery rebuilt: the index (where each live message's latest meta is), counters.

    The metas themselves are not kept: with a million messages they would be hundreds of
    megabytes held at once; the Spool reads each back when the caller gets to it.
    """

    index: Index = field(default_factory=Index)
    quarantined: int = 0
    highest_segment: int = 0


def recover(segments_dir: Path, quarantine_dir: Path, *, fsync: bool) -> Recovered:
    """Replay every segment in order; torn tails and bad segments go to quarantine."""
    return _Recovery(segments_dir, quarantine_dir, fsync).run()


class _Recovery:
    def __init__(self, segments_dir: Path, quarantine_dir: Path, fsync: bool) -> None:
        self._segments_dir = segments_dir
        self._quarantine_dir = quarantine_dir
        self._fsync = fsync
        self._result = Recovered()

    def run(self) -> Recovered:
        for number in list_segments(self._segments_dir):
            self._result.highest_segment = number
            path = self._segments_dir / segment_name(number)
            problem = self._replay_segment(path, number)
            if problem is not None:
                self._quarantine_segment(path, problem)
        self._result.index.mark_all_dirty()
        return self._result

    def _replay_segment(self, path: Path, number: int) -> str | None:
        """Replay one segment; return a problem when its header is unusable."""
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            problem = records.segment_header_problem(file.read(records.SEGMENT_HEADER_SIZE))
            if problem is not None:
                return problem
            self._result.index.add_segment(number, size)
            if size == records.SEGMENT_HEADER_SIZE:
                return None
            end, torn = self._replay_body(file.fileno(), number)
        if torn is not None:
            self._result.index.segments[number].size = end
            self._quarantine_tail(path, end, torn)
        return None

    def _replay_body(self, fd: int, number: int) -> tuple[int, str | None]:
        """Replay the records after the header; return where they end and why, if torn."""
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                scanner = records.RecordScanner(view, records.SEGMENT_HEADER_SIZE, with_meta=False)
                _replay_records(scanner, number, self._result)
            finally:
                view.release()  # mmap.close() refuses while a view is exported
        return scanner.offset, scanner.torn

    def _quarantine_tail(self, path: Path, offset: int, problem: str) -> None:
        """Copy a segment's bytes from ``offset`` to quarantine, then truncate it there."""
        target = _unique(self._quarantine_dir / f"{path.stem}.{offset}.torn")
        with open(path, "r+b") as src, open(target, "xb") as dst:
            src.seek(offset)
            shutil.copyfileobj(src, dst)
            dst.flush()
            self._sync(dst.fileno(), self._quarantine_dir)
            src.truncate(offset)
            self._sync(src.fileno(), None)
        self._result.quarantined += 1
        logger.warning(
            "spool segment %s is torn at offset %d (%s); quarantined the tail as %s",
            path,
            offset,
            problem,
            target,
        )

    def _quarantine_segment(self, path: Path, problem: str) -> None:
        target = _unique(self._quarantine_dir / path.name)
        os.rename(path, target)
        if self._fsync:
            fsync_dir(self._quarantine_dir)
            fsync_dir(self._segments_dir)
        self._result.quarantined += 1
        logger.warning("spool segment %s is unusable (%s); moved it to %s", path, problem, target)

    def _sync(self, fd: int, directory: Path | None) -> None:
        if not self._fsync:
            return
        os.fsync(fd)
        if directory is not None:
            fsync_dir(directory)


def _replay_records(scanner: records.RecordScanner, number: int, result: Recovered) -> None:
    # The hot loop of recovery: locals instead of attribute lookups.
    index = result.index
    apply_data, apply_meta, apply_remove = index.apply_data, index.apply_meta, index.apply_remove
    data_type, meta_type = records.DATA, records.META
    for rtype, offset, length, msg_id, _meta, data_len in scanner:
        if rtype == data_type:
            apply_data(msg_id, number, offset, length, data_len)
        elif rtype == meta_type:
            apply_meta(msg_id, number, offset)  # ignored for unknown ids
        else:
            apply_remove(msg_id, number)


def _unique(path: Path) -> Path:
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate
