"""The pure record and segment-header codec."""

from __future__ import annotations

import pytest

from spool import records


def scan(buf: bytes) -> tuple[list[records.ScannedRecord], records.RecordScanner]:
    scanner = records.RecordScanner(memoryview(buf), 0)
    return list(scanner), scanner


def test_records_round_trip_through_the_scanner() -> None:
    data = records.encode_record(records.DATA, b"m1", b'{"a":1}', b"body")
    meta = records.encode_record(records.META, b"m1", b'{"a":2}')
    remove = records.encode_record(records.REMOVE, b"m1")
    found, scanner = scan(data + meta + remove)
    assert [(r[0], r[3], r[4], r[5]) for r in found] == [
        (records.DATA, "m1", b'{"a":1}', 4),
        (records.META, "m1", b'{"a":2}', 0),
        (records.REMOVE, "m1", b"", 0),
    ]
    assert [r[1] for r in found] == [0, len(data), len(data) + len(meta)]
    assert scanner.torn is None and scanner.offset == len(data + meta + remove)
    assert records.decode_record(data) == (records.DATA, "m1", b'{"a":1}', b"body")
    assert len(data) == records.record_size(2, 7, 4)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda r: r[:-1], "short record payload"),
        (lambda r: r[:10], "truncated record header"),
        (lambda r: r[:-1] + bytes([r[-1] ^ 1]), "record CRC mismatch"),
        (lambda r: r[:12] + bytes([r[12] - 1]) + r[13:], "record CRC mismatch"),  # data_len
        (lambda r: b"\0" * len(r), "bad record magic or type"),
    ],
)
def test_scanner_stops_at_a_damaged_record(damage: object, reason: str) -> None:
    good = records.encode_record(records.DATA, b"ok", b"{}", b"x" * 50)
    bad = damage(records.encode_record(records.DATA, b"bad", b"{}", b"y" * 50))  # type: ignore[operator]
    found, scanner = scan(good + bad)
    assert [r[3] for r in found] == ["ok"]
    assert scanner.offset == len(good)
    assert scanner.torn == reason
    with pytest.raises(ValueError):
        records.decode_record(bad)


def test_segment_header_is_versioned() -> None:
    header = records.encode_segment_header()
    assert len(header) == records.SEGMENT_HEADER_SIZE
    assert records.segment_header_problem(header) is None
    assert records.segment_header_problem(header[:5]) is not None
    assert records.segment_header_problem(b"X" + header[1:]) == "bad segment magic"
    future = header[:8] + (records.FORMAT_VERSION + 1).to_bytes(4, "little") + header[12:]
    assert "version" in (records.segment_header_problem(future) or "")


def test_ids_and_meta_are_validated() -> None:
    assert records.encode_id("a" * 64) == b"a" * 64
    for bad in ("", "a" * 65, "ü"):
        with pytest.raises(ValueError):
            records.encode_id(bad)
    assert records.decode_meta(records.encode_meta({"k": [1, "x"]})) == {"k": [1, "x"]}
    with pytest.raises(TypeError):
        records.encode_meta({"k": {1, 2}})
    with pytest.raises(ValueError):
        records.decode_meta(b"[1]")
