"""Pending writes, which of them still apply at commit time, and their effect on the index."""

from __future__ import annotations

import asyncio
from typing import Any, Final

from spool import records
from spool.errors import SpoolError, UnknownMessage
from spool.index import META_OFF, META_SEG, REC_OFF, SEG, Index

STORE: Final = 0
UPDATE: Final = 1
REMOVE: Final = 2
COPY_DATA: Final = 3  # compaction: rewrite a live message (DATA with its latest meta)
COPY_META: Final = 4  # compaction: rewrite a message's latest META
COPY_REMOVE: Final = 5  # compaction: rewrite a REMOVE that still shadows older data

_RECORD_TYPE: Final = {
    STORE: records.DATA,
    UPDATE: records.META,
    REMOVE: records.REMOVE,
    COPY_DATA: records.DATA,
    COPY_META: records.META,
    COPY_REMOVE: records.REMOVE,
}
_COPIES: Final = frozenset({COPY_DATA, COPY_META, COPY_REMOVE})

# What a compaction copy expects to still be true when it is committed.
Expectation = tuple[int, ...]


class Op:
    """One record waiting for the group commit, and the future its submitter awaits."""

    __slots__ = ("data", "expect", "future", "id_bytes", "kind", "meta", "msg_id", "size")

    def __init__(
        self,
        kind: int,
        msg_id: str,
        future: asyncio.Future[Any],
        *,
        meta: bytes = b"",
        data: bytes = b"",
        expect: Expectation = (),
    ) -> None:
        if len(data) > records.MAX_DATA_BYTES:
            raise ValueError(f"message is {len(data)} bytes, over {records.MAX_DATA_BYTES}")
        self.kind = kind
        self.msg_id = msg_id
        self.id_bytes = records.encode_id(msg_id)
        self.meta = meta
        self.data = data
        self.future = future
        self.expect = expect
        self.size = records.record_size(len(self.id_bytes), len(meta), len(data))

    def encode(self) -> bytes:
        """The record bytes (CPU work; the writer does it in its worker thread)."""
        return records.encode_record(_RECORD_TYPE[self.kind], self.id_bytes, self.meta, self.data)


def select(batch: list[Op], index: Index) -> list[Op]:
    """The ops of ``batch`` that still apply, in order; settle the futures of the others.

    Liveness is judged against the index plus the earlier ops of the same batch, so
    the result is exact: the writer commits one batch at a time. A compaction copy
    is dropped when an earlier op of the batch touched the same message.
    """
    live: dict[str, bool] = {}
    accepted = []
    for op in batch:
        if op.future.done():  # cancelled before it was written: drop it
            continue
        if op.kind in _COPIES:
            ok = op.msg_id not in live and _copy_applies(op, index)
            if not ok:
                op.future.set_result(False)
                continue
        elif not _user_op_applies(op, live.get(op.msg_id, op.msg_id in index.entries), live):
            continue
        accepted.append(op)
    return accepted


def _user_op_applies(op: Op, is_live: bool, live: dict[str, bool]) -> bool:
    if op.kind == STORE:
        if is_live:
            op.future.set_exception(SpoolError(f"message {op.msg_id!r} is already in the spool"))
            return False
        live[op.msg_id] = True
    elif op.kind == UPDATE:
        if not is_live:
            op.future.set_exception(UnknownMessage(op.msg_id))
            return False
        live[op.msg_id] = True  # also marks it touched: later copies in the batch are stale
    else:
        live[op.msg_id] = False
        if not is_live:  # already removed: nothing to write
            op.future.set_result(None)
            return False
    return True


def _copy_applies(op: Op, index: Index) -> bool:
    entry = index.entries.get(op.msg_id)
    if op.kind == COPY_REMOVE:
        return entry is None and index.shadows_removal(op.expect[0], op.msg_id)
    if entry is None:
        return False
    if op.kind == COPY_DATA:
        return (entry[SEG], entry[REC_OFF], entry[META_SEG], entry[META_OFF]) == op.expect
    return (entry[META_SEG], entry[META_OFF]) == op.expect


def apply(op: Op, index: Index, seg: int, offset: int) -> None:
    """Record in the index that ``op`` is now durable at ``offset`` of segment ``seg``."""
    kind = op.kind
    if kind in (STORE, COPY_DATA):
        index.apply_data(op.msg_id, seg, offset, op.size, len(op.data))
    elif kind in (UPDATE, COPY_META):
        index.apply_meta(op.msg_id, seg, offset)
    elif kind == REMOVE:
        index.apply_remove(op.msg_id, seg)
    else:
        index.move_remove(op.msg_id, op.expect[0], seg)


def settle(op: Op) -> None:
    """Resolve the future of a committed op (copies report True: they took effect)."""
    if not op.future.done():
        op.future.set_result(True if op.kind in _COPIES else None)
