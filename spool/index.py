"""In-memory index of live messages and per-segment accounting of which records are needed.

A segment may be deleted once nothing in it can change what recovery rebuilds:
 * live DATA: the current copy of a live message;
 * current META: the latest meta of a live message, when it is not inside its DATA record;
 * shadowing REMOVE: a REMOVE whose message still has a DATA copy in an older segment
   on disk (deleting the REMOVE first would resurrect that message at recovery).
Older DATA copies left behind by compaction are remembered per entry (``OLD``) so a
later REMOVE shadows them too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

NO_SEGMENT: Final = -1  # META_SEG when the latest meta is the one inside the DATA record


# An index entry is a plain tuple: tuples of ints are untracked by the cyclic GC and
# small, which matters with a million live messages. Field positions:
SEG: Final = 0  # segment of the current DATA record
REC_OFF: Final = 1  # offset of that record
REC_LEN: Final = 2  # its total length
DATA_LEN: Final = 3  # length of the message bytes at its end
META_SEG: Final = 4  # segment of the META record with the latest meta, or NO_SEGMENT
META_OFF: Final = 5  # offset of that META record
OLD: Final = 6  # older segments still holding (dead) DATA copies, from compaction
Entry = tuple[int, int, int, int, int, int, tuple[int, ...]]


def data_location(entry: Entry) -> tuple[int, int, int]:
    """(segment, offset, length) of the message bytes."""
    seg, rec_off, rec_len, data_len = entry[:4]
    return seg, rec_off + rec_len - data_len, data_len


class SegmentInfo:
    """What one segment holds that is still needed."""

    __slots__ = (
        "compact_not_before",
        "data_ids",
        "live_bytes",
        "meta_ids",
        "number",
        "shadowed_by",
        "shadows",
        "size",
    )

    def __init__(self, number: int, size: int) -> None:
        self.number = number
        self.size = size
        self.live_bytes = 0  # bytes of live DATA records
        self.data_ids: set[str] = set()
        self.meta_ids: set[str] = set()
        self.shadows: dict[int, set[str]] = {}  # older segment -> ids whose REMOVE is here
        self.shadowed_by: set[int] = set()  # newer segments with REMOVEs shadowing this one
        self.compact_not_before = 0.0

    def needed(self) -> bool:
        """True while deleting the segment could change what recovery rebuilds."""
        return bool(self.data_ids or self.meta_ids or self.shadows)


class Index:
    """Live messages by id, and the segments they (and their tombstones) pin."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.segments: dict[int, SegmentInfo] = {}  # in ascending segment order
        self.active = NO_SEGMENT
        self._dirty: set[int] = set()  # segments that lost a reason to be kept

    def add_segment(self, number: int, size: int) -> None:
        """Track a segment; later calls must use higher numbers."""
        self.segments[number] = SegmentInfo(number, size)

    def set_active(self, number: int) -> None:
        """Make ``number`` the append target; the previous one becomes deletable."""
        self._dirty.add(self.active)
        self.active = number

    def grow(self, number: int, nbytes: int) -> None:
        """Account for bytes appended to a segment."""
        self.segments[number].size += nbytes

    def apply_data(self, msg_id: str, seg: int, rec_off: int, rec_len: int, data_len: int) -> None:
        """A DATA record: a new message, or a (compaction) copy replacing the current one."""
        old: tuple[int, ...] = ()
        previous = self.entries.get(msg_id)
        if previous is not None:
            self._unpin(msg_id, previous)
            old = self._on_disk((*previous[OLD], previous[SEG]), below=seg)
        self.entries[msg_id] = (seg, rec_off, rec_len, data_len, NO_SEGMENT, 0, old)
        info = self.segments[seg]
        info.data_ids.add(msg_id)
        info.live_bytes += rec_len

    def apply_meta(self, msg_id: str, seg: int, rec_off: int) -> None:
        """A META record: it becomes the message's latest meta (ignored for unknown ids)."""
        entry = self.entries.get(msg_id)
        if entry is None:
            return
        self._unpin_meta(msg_id, entry)
        self.entries[msg_id] = (*entry[:META_SEG], seg, rec_off, entry[OLD])
        self.segments[seg].meta_ids.add(msg_id)

    def apply_remove(self, msg_id: str, seg: int) -> None:
        """A REMOVE record: drop the message; the record shadows its older DATA copies."""
        entry = self.entries.pop(msg_id, None)
        if entry is None:
            return
        self._unpin(msg_id, entry)
        self._add_shadows(msg_id, seg, self._on_disk((entry[SEG], *entry[OLD]), below=seg))

    def move_remove(self, msg_id: str, source: int, target: int) -> None:
        """A REMOVE rewritten by compaction from ``source`` into ``target``."""
        info = self.segments.get(source)
        if info is None:
            return
        older = [seg for seg, ids in info.shadows.items() if msg_id in ids]
        for seg in older:
            self._drop_shadow(source, seg, msg_id)
        self._add_shadows(msg_id, target, self._on_disk(older, below=target))

    def shadows_removal(self, seg: int, msg_id: str) -> bool:
        """True when a REMOVE of ``msg_id`` in ``seg`` still shadows older data."""
        info = self.segments.get(seg)
        return info is not None and any(msg_id in ids for ids in info.shadows.values())

    def removal_shadows(self, seg: int) -> dict[str, int]:
        """Ids whose REMOVE in ``seg`` still shadows older data, with an older segment each."""
        info = self.segments.get(seg)
        if info is None:
            return {}
        return {msg_id: older for older, ids in info.shadows.items() for msg_id in ids}

    def take_deletable(self) -> list[int]:
        """Forget segments nothing needs any more, dependencies first; return their numbers."""
        deleted: list[int] = []
        work = sorted(self._dirty, reverse=True)
        self._dirty.clear()
        while work:
            number = work.pop()
            info = self.segments.get(number)
            if info is None or number == self.active or info.needed():
                continue
            del self.segments[number]
            deleted.append(number)
            for newer in info.shadowed_by:
                self.segments[newer].shadows.pop(number, None)
                work.append(newer)
        return deleted

    def mark_all_dirty(self) -> None:
        """Re-check every segment at the next take_deletable (after recovery)."""
        self._dirty.update(self.segments)

    def _unpin(self, msg_id: str, entry: Entry) -> None:
        info = self.segments[entry[SEG]]
        info.data_ids.discard(msg_id)
        info.live_bytes -= entry[REC_LEN]
        self._dirty.add(entry[SEG])
        self._unpin_meta(msg_id, entry)

    def _unpin_meta(self, msg_id: str, entry: Entry) -> None:
        meta_seg = entry[META_SEG]
        if meta_seg == NO_SEGMENT:
            return
        self.segments[meta_seg].meta_ids.discard(msg_id)
        self._dirty.add(meta_seg)

    def _add_shadows(self, msg_id: str, seg: int, older: Iterable[int]) -> None:
        info = self.segments[seg]
        for number in older:
            info.shadows.setdefault(number, set()).add(msg_id)
            self.segments[number].shadowed_by.add(seg)

    def _drop_shadow(self, seg: int, older: int, msg_id: str) -> None:
        shadows = self.segments[seg].shadows
        ids = shadows[older]
        ids.discard(msg_id)
        if not ids:
            del shadows[older]
            self.segments[older].shadowed_by.discard(seg)
        self._dirty.add(seg)

    def _on_disk(self, numbers: Iterable[int], *, below: int) -> tuple[int, ...]:
        return tuple(n for n in numbers if n < below and n in self.segments)
