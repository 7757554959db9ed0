"""Log segment files: rotation by size and age, compression, retention, crash leftovers."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import orjson
import pytest
import zstandard
from prometheus_client import CollectorRegistry, generate_latest

from mta.log_metrics import RecordLogCollector
from mta.log_segments import (
    LEGACY_FILE,
    SegmentPolicy,
    SegmentWriter,
    compress_segment,
    read_lines,
    segment_files,
)
from mta.log_sink import SegmentSink
from mta.logs import RecordLog
from mta.replies import S250_QUEUED
from tests.support.node import wait_until

NODEID = "node-1"
DAY = 86400.0


def _log(directory: Path, **policy: float) -> RecordLog:
    return RecordLog(nodeid=NODEID, stdout=False, path=directory, segments=SegmentPolicy(**policy))


def _delivery(log: RecordLog, n: int) -> None:
    log.record("Delivery", id=f"id-{n}", sender="a@example.org", recipient=f"r{n}@example.com",
               response=S250_QUEUED, size=n)  # fmt: skip


def _sizes(directory: Path) -> list[int]:
    return [
        orjson.loads(line)["size"] for path in segment_files(directory) for line in read_lines(path)
    ]


def _decompressed(directory: Path) -> list[bytes]:
    found = []
    for path in sorted(directory.iterdir()):
        with path.open("rb") as raw:
            found.append(zstandard.ZstdDecompressor().stream_reader(raw).read())
    return found


def _names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def test_size_rotation_compresses_closed_segments_and_keeps_order(tmp_path: Path) -> None:
    log = _log(tmp_path, max_bytes=2_000)
    await log.start()
    for n in range(20):  # ~600 bytes a record, written one by one: 3 records a segment
        _delivery(log, n)
        await wait_until(lambda n=n: log.written == n + 1, what=f"record {n} written")
    assert log._sink is not None and log._sink.current is not None
    open_name = log._sink.current.name
    await wait_until(
        lambda: len([p for p in tmp_path.iterdir() if p.name.endswith(".zst")]) >= 5,
        what="closed segments compressed while the node runs",
    )
    assert open_name in _names(tmp_path)  # the open segment stays plain and readable
    assert _sizes(tmp_path) == list(range(20))  # rotated + open, in time order
    await log.close()

    names = _names(tmp_path)
    assert names == sorted(names) and all(name.endswith(".jsonl.zst") for name in names)
    assert all(name.startswith("records-") for name in names) and len(names) >= 6
    assert _sizes(tmp_path) == list(range(20))
    for data in _decompressed(tmp_path):  # each is a real zstd frame of whole JSON lines
        assert data.endswith(b"\n") and len(data) <= 2_000


async def test_age_rotation_happens_while_idle(tmp_path: Path) -> None:
    log = _log(tmp_path, max_age=0.2)
    await log.start()
    _delivery(log, 1)
    await wait_until(lambda: log.written == 1, what="the record written")
    await wait_until(
        lambda: [p.name[-4:] for p in tmp_path.iterdir()] == [".zst"],
        what="the idle segment closed by age and compressed",
    )
    _delivery(log, 2)  # the next record opens a new segment
    await wait_until(lambda: len(list(tmp_path.iterdir())) == 2, what="a second segment")
    await log.close()
    assert _sizes(tmp_path) == [1, 2]


def test_writer_rotates_by_age_on_its_clock(tmp_path: Path) -> None:
    now = [1_700_000_000.0]
    writer = SegmentWriter(tmp_path, SegmentPolicy(max_age=60), clock=lambda: now[0])
    assert writer.deadline() is None and not writer.rotate_if_older()
    writer.write(b"{}\n")
    first = writer.current
    assert first is not None and first.name == "records-20231114-221320-000000.jsonl"
    now[0] += 59
    assert not writer.rotate_if_older()
    now[0] += 1
    assert writer.rotate_if_older() and writer.current is None
    writer.write(b"{}\n")
    assert writer.take_closed() == [first] and writer.current != first
    writer.close()


def test_names_never_collide_and_sort_by_time(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, SegmentPolicy(max_bytes=1), clock=lambda: 1_700_000_000.0)
    for _ in range(3):  # same clock reading: each segment still gets its own, later name
        writer.write(b"{}\n")
    writer.close()
    closed = writer.take_closed()
    assert len(set(closed)) == 3 and closed == sorted(closed)


def test_empty_segment_is_not_kept(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, SegmentPolicy())
    writer.close()
    assert writer.take_closed() == [] and list(tmp_path.iterdir()) == []


async def test_retention_deletes_old_closed_segments_only(tmp_path: Path) -> None:
    old = tmp_path / "records-20200101-000000-000000.jsonl.zst"
    recent = tmp_path / "records-20200102-000000-000000.jsonl.gz"
    legacy = tmp_path / LEGACY_FILE
    for path in (old, recent, legacy):
        path.write_bytes(b"")
    ancient = time.time() - 10 * DAY
    os.utime(old, (ancient, ancient))
    os.utime(legacy, (ancient, ancient))
    sink = SegmentSink(tmp_path, SegmentPolicy(retention=7 * DAY))
    await sink.start()
    sink.write(b'{"n": 1}\n')
    current = sink.current
    assert current is not None
    os.utime(current, (ancient, ancient))  # the open segment is never deleted
    sink.notify()
    await wait_until(lambda: sink.deleted == 1, what="the old segment deleted")
    assert not old.exists() and recent.exists() and legacy.exists() and current.exists()
    await sink.close()


async def test_zero_retention_keeps_everything(tmp_path: Path) -> None:
    old = tmp_path / "records-20200101-000000-000000.jsonl.zst"
    old.write_bytes(b"")
    os.utime(old, (0, 0))
    sink = SegmentSink(tmp_path, SegmentPolicy(retention=0))
    await sink.start()
    await sink.close()
    assert old.exists() and sink.deleted == 0


async def test_crash_leftovers_are_compressed_at_start(tmp_path: Path) -> None:
    plain = tmp_path / "records-20240101-000000-000000.jsonl"
    plain.write_bytes(b'{"size": 1}\n{"size": 2}\n{"size"')  # torn last line
    half = tmp_path / "records-20240101-000000-000000.jsonl.zst.tmp"
    half.write_bytes(b"garbage")
    log = _log(tmp_path)
    await log.start()
    await wait_until(lambda: not plain.exists(), what="the leftover compressed")
    assert not half.exists()
    _delivery(log, 3)
    await log.close()
    assert _sizes(tmp_path) == [1, 2, 3]


def test_compressed_twin_wins_and_legacy_file_comes_first(tmp_path: Path) -> None:
    (tmp_path / LEGACY_FILE).write_bytes(b'{"size": 0}\n')
    plain = tmp_path / "records-20240101-000000-000000.jsonl"
    plain.write_bytes(b'{"size": 1}\n')
    os.utime(plain, (1_000, 1_000))
    twin = compress_segment(plain)
    plain.write_bytes(b'{"size": 1}\n')  # as between the rename and the unlink
    (tmp_path / "records-20240102-000000-000000.jsonl").write_bytes(b'{"size": 2}\n')
    (tmp_path / "unrelated.txt").write_bytes(b"x")
    files = segment_files(tmp_path)
    assert [p.name for p in files] == [LEGACY_FILE, twin.name, files[2].name]
    assert files[2].suffix == ".jsonl" and twin.stat().st_mtime == 1_000
    assert _sizes(tmp_path) == [0, 1, 2]


def test_gzip_segments_are_read_too(tmp_path: Path) -> None:
    path = tmp_path / "records-20240101-000000-000000.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"size": 7}\n'))
    assert _sizes(tmp_path) == [7]


def test_plain_segment_compressed_while_listed_is_read_from_its_twin(tmp_path: Path) -> None:
    plain = tmp_path / "records-20240101-000000-000000.jsonl"
    plain.write_bytes(b'{"size": 5}\n')
    [listed] = segment_files(tmp_path)
    compress_segment(plain)
    assert [orjson.loads(line)["size"] for line in read_lines(listed)] == [5]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        SegmentPolicy(max_bytes=0)
    with pytest.raises(ValueError):
        SegmentPolicy(retention=-1)


async def test_dropped_records_are_exported_as_a_metric() -> None:
    log = RecordLog(nodeid=NODEID, stdout=False, max_buffer=2)
    registry = CollectorRegistry()
    registry.register(RecordLogCollector(log))
    for n in range(5):  # no writer running: the buffer fills up
        _delivery(log, n)
    text = generate_latest(registry).decode()
    assert "mta_log_records_dropped_total 3.0" in text
    assert "mta_log_records_buffered 2.0" in text
    await log.close()
    assert "mta_log_records_written_total 2.0" in generate_latest(registry).decode()
