"""Binary layout of segment files and of the records inside them (pure: no I/O).

All integers are little-endian. A segment is a 16-byte header (magic, format
version, reserved) followed by records. A record is a 16-byte header (CRC32, magic,
type, id/meta/data lengths) and a payload of id, meta JSON and message bytes.
The CRC covers everything after the CRC field, header lengths included, so a torn
or overwritten record never passes for a valid one.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping
from typing import Any, Final, NamedTuple

import orjson

SEGMENT_MAGIC: Final = b"MTASPOOL"
FORMAT_VERSION: Final = 1
_SEGMENT_HEADER: Final = struct.Struct("<8sII")  # magic, format version, reserved
SEGMENT_HEADER_SIZE: Final = _SEGMENT_HEADER.size

RECORD_MAGIC: Final = 0xA7
_RECORD_HEADER: Final = struct.Struct("<IBBHII")  # crc32, magic, type, id/meta/data lengths
RECORD_HEADER_SIZE: Final = _RECORD_HEADER.size
_CRC_START: Final = 4  # the CRC covers the rest of the header and the payload

DATA: Final = 1  # id, meta JSON, message bytes
META: Final = 2  # id, full replacement meta JSON
REMOVE: Final = 3  # id
RECORD_TYPES: Final = frozenset({DATA, META, REMOVE})

MAX_ID_LENGTH: Final = 64
MAX_META_BYTES: Final = 16 * 1024 * 1024
MAX_DATA_BYTES: Final = 2**32 - 1


# One valid record found by RecordScanner: (type, offset, length, id, meta, data_len).
# A plain tuple, not a NamedTuple: building a NamedTuple per record costs ~20% of recovery.
ScannedRecord = tuple[int, int, int, str, bytes, int]


class DecodedRecord(NamedTuple):
    """A whole record read back for rewriting."""

    rtype: int
    msg_id: str
    meta: bytes
    data: bytes


def encode_segment_header() -> bytes:
    """The bytes every segment file starts with."""
    return _SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0)


def segment_header_problem(header: bytes) -> str | None:
    """Why these leading bytes are not a usable segment header, or None when they are."""
    if len(header) < SEGMENT_HEADER_SIZE:
        return f"short segment header ({len(header)} bytes)"
    magic, version, _ = _SEGMENT_HEADER.unpack_from(header)
    if magic != SEGMENT_MAGIC:
        return "bad segment magic"
    if version != FORMAT_VERSION:
        return f"unsupported segment format version {version}"
    return None


def encode_id(msg_id: str) -> bytes:
    """The wire form of a message id; ValueError unless 1..64 ASCII characters."""
    if not isinstance(msg_id, str) or not 0 < len(msg_id) <= MAX_ID_LENGTH:
        raise ValueError(f"message id must be 1..{MAX_ID_LENGTH} characters: {msg_id!r}")
    try:
        return msg_id.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"message id must be ASCII: {msg_id!r}") from None


def encode_meta(meta: Mapping[str, Any]) -> bytes:
    """Meta as JSON bytes; TypeError when it is not JSON-serialisable."""
    encoded = orjson.dumps(meta if isinstance(meta, dict) else dict(meta))
    if len(encoded) > MAX_META_BYTES:
        raise ValueError(f"meta is {len(encoded)} bytes, over the {MAX_META_BYTES} limit")
    return encoded


def decode_meta(raw: bytes) -> dict[str, Any]:
    """Meta JSON bytes back to a dict."""
    meta = orjson.loads(raw)
    if not isinstance(meta, dict):
        raise ValueError("meta JSON is not an object")
    return meta


def record_size(id_len: int, meta_len: int, data_len: int) -> int:
    """Bytes a record with these payload lengths occupies on disk."""
    return RECORD_HEADER_SIZE + id_len + meta_len + data_len


def encode_record(rtype: int, msg_id: bytes, meta: bytes = b"", data: bytes = b"") -> bytes:
    """One complete record, CRC included."""
    if len(data) > MAX_DATA_BYTES:
        raise ValueError(f"message is {len(data)} bytes, over the {MAX_DATA_BYTES} limit")
    header = _RECORD_HEADER.pack(0, RECORD_MAGIC, rtype, len(msg_id), len(meta), len(data))
    crc = zlib.crc32(header[_CRC_START:])
    crc = zlib.crc32(data, zlib.crc32(meta, zlib.crc32(msg_id, crc)))
    return b"".join((struct.pack("<I", crc), header[_CRC_START:], msg_id, meta, data))


def id_and_meta_lengths(header: bytes) -> tuple[int, int]:
    """The id and meta lengths of the record with this header (to read only its meta)."""
    _, _, _, id_len, meta_len, _ = _RECORD_HEADER.unpack_from(header)
    return int(id_len), int(meta_len)


def payload_length(header: bytes) -> int:
    """Payload bytes following this record header (for reading a record in two steps)."""
    _, _, _, id_len, meta_len, data_len = _RECORD_HEADER.unpack_from(header)
    return int(id_len + meta_len + data_len)


def decode_record(buf: bytes) -> DecodedRecord:
    """Decode one whole record; ValueError when it is torn or corrupt."""
    scanner = RecordScanner(memoryview(buf), 0)
    for rtype, _, length, msg_id, meta, data_len in scanner:
        if length == len(buf):
            return DecodedRecord(rtype, msg_id, meta, bytes(buf[length - data_len :]))
        break
    raise ValueError(scanner.torn or "not exactly one record")


class RecordScanner:
    """Iterates the valid records of a segment body; stops at the first torn one.

    After iteration, ``offset`` is where the valid prefix ends and ``torn`` says why
    scanning stopped early (None when the buffer ended cleanly at a record boundary).
    """

    def __init__(self, buf: memoryview, start: int, *, with_meta: bool = True) -> None:
        self._buf = buf
        self._with_meta = with_meta  # False: yield b"" for the meta (recovery needs none)
        self.offset = start
        self.torn: str | None = None

    def __iter__(self) -> Iterator[ScannedRecord]:
        # The hot loop of recovery (a million records must replay in seconds): one
        # flat loop with locals, no helper calls per record.
        buf, end, off = self._buf, len(self._buf), self.offset
        unpack, crc32, header = _RECORD_HEADER.unpack_from, zlib.crc32, RECORD_HEADER_SIZE
        magic_ok, types, with_meta = RECORD_MAGIC, RECORD_TYPES, self._with_meta
        try:
            while off < end:
                if end - off < header:
                    self.torn = "truncated record header"
                    return
                crc, magic, rtype, id_len, meta_len, data_len = unpack(buf, off)
                if magic != magic_ok or rtype not in types:
                    self.torn = "bad record magic or type"
                    return
                length = header + id_len + meta_len + data_len
                if off + length > end:
                    self.torn = "short record payload"
                    return
                if crc32(buf[off + _CRC_START : off + length]) != crc:
                    self.torn = "record CRC mismatch"
                    return
                meta_start = off + header + id_len
                try:
                    msg_id = str(buf[off + header : meta_start], "ascii")
                except UnicodeDecodeError:
                    self.torn = "non-ASCII message id"
                    return
                meta = bytes(buf[meta_start : meta_start + meta_len]) if with_meta else b""
                yield rtype, off, length, msg_id, meta, data_len
                off += length
        finally:
            self.offset = off
