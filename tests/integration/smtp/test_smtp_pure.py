"""The pure parts of the front end: the DATA receiver and the header additions."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from mta.replies import S500_LINE_TOO_LONG, S552_MESSAGE_TOO_BIG
from mta.smtp.data import DataReceiver
from mta.smtp.headers import ensure_message_id_and_date, header_block, received_header

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def feed_all(receiver: DataReceiver, pieces: list[bytes]) -> bool:
    return any([receiver.feed(piece) for piece in pieces])


def test_receiver_ends_only_at_a_lone_dot_line_and_unstuffs_once() -> None:
    receiver = DataReceiver(max_bytes=1000)
    assert not feed_all(receiver, [b"a\r\n", b"..b\r\n", b"x\n.\n", b"\r\n"])
    assert receiver.feed(b".\r\n")
    assert receiver.error is None
    assert receiver.content == b"a\r\n.b\r\nx\n.\n\r\n"


def test_receiver_joins_fragments_of_a_line_and_never_ends_inside_one() -> None:
    receiver = DataReceiver(max_bytes=10_000)
    assert not feed_all(receiver, [b"." + b"y" * 500, b"\r\n"])  # one line, dot-unstuffed
    assert not receiver.feed(b"y" * 1200)
    assert not receiver.feed(b".\r\n")  # the rest of that line, not the end of data
    assert receiver.error is S500_LINE_TOO_LONG
    assert receiver.content == b""  # dropped once a limit is exceeded
    assert receiver.feed(b".\r\n")


def test_receiver_keeps_nothing_once_over_the_size_limit() -> None:
    receiver = DataReceiver(max_bytes=100)
    for _ in range(10_000):
        receiver.feed(b"z" * 50 + b"\r\n")
    assert receiver.feed(b".\r\n")
    assert receiver.error is S552_MESSAGE_TOO_BIG
    assert receiver.content == b""
    assert receiver.size == 520_000


def test_header_block_ends_at_the_first_empty_line() -> None:
    assert header_block(b"A: 1\r\nB: 2\r\n\r\nbody\r\n") == b"A: 1\r\nB: 2\r\n"
    assert header_block(b"\r\nbody only\r\n") == b""
    assert header_block(b"A: 1\r\n") == b"A: 1\r\n"


def test_missing_message_id_and_date_are_prepended() -> None:
    data = b"Subject: x\r\n\r\nMessage-ID: <in-body@x>\r\nDate: in body\r\n"
    result = ensure_message_id_and_date(data, "mx.test", now=NOW)
    assert re.fullmatch(
        rb"Message-ID: <[0-9a-f]{32}@mx\.test>\r\nDate: Tue, 02 Jan 2024 03:04:05 \+0000\r\n",
        result.removesuffix(data),
    )


def test_present_headers_are_found_case_insensitively_and_kept() -> None:
    data = b"X-A: 1\r\nMESSAGE-ID : <a@b>\r\ndate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nx\r\n"
    assert ensure_message_id_and_date(data, "mx.test") == data
    resent = b"Resent-Message-ID: <a@b>\r\nResent-Date: x\r\n\r\n"  # not the same fields
    added = ensure_message_id_and_date(resent, "mx.test").removesuffix(resent)
    assert re.fullmatch(rb"Message-ID: <\w+@mx\.test>\r\nDate: [^\r\n]+\r\n", added)


def test_received_header_format() -> None:
    header = received_header(
        helo="bad (helo)\tname",
        peer_ip="2001:db8::1",
        hostname="mx.test",
        protocol="ESMTPS",
        queue_id="abc123",
        when=NOW,
    )
    assert header == (
        b"Received: from bad__helo__name (2001:db8::1 [IPv6:2001:db8::1])\r\n"
        b"\tby mx.test (mta) with ESMTPS id abc123;\r\n"
        b"\tTue, 02 Jan 2024 03:04:05 +0000\r\n"
    )
