"""DataReceiver: DATA fed in chunks cut anywhere (RFC 5321 4.1.1.4, 4.5.2, 4.5.3.1.6)."""

from __future__ import annotations

import tracemalloc
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mta.replies import S500_LINE_TOO_LONG, S552_MESSAGE_TOO_BIG, Reply
from mta.smtp.data import MAX_TEXT_LINE, DataReceiver

BIG = 10 * 2**20
PIPELINED = b"RSET\r\nMAIL FROM:<a@example.org>\r\n"
# One stream with a stuffed dot (at offset 16) and the end of data (at offset 26).
STREAM = b"Subject: x\r\n\r\na\r\n..b\r\nc\r\n.\r\n" + PIPELINED
CONTENT = b"Subject: x\r\n\r\na\r\n.b\r\nc\r\n"


class Received(DataReceiver):
    unread = b""  # what the session would give back: `rest` and the chunks never fed


def received(chunks: list[bytes], max_bytes: int = BIG) -> Received:
    """Feed until the end of data, as the session does; it must come."""
    receiver = Received(max_bytes)
    finished = next(index for index, chunk in enumerate(chunks) if receiver.feed(chunk))
    receiver.unread = receiver.rest + b"".join(chunks[finished + 1 :])
    return receiver


def cut(data: bytes, *offsets: int) -> list[bytes]:
    bounds = [0, *offsets, len(data)]
    return [data[start:end] for start, end in pairwise(bounds)]


def reference(stream: bytes, max_bytes: int) -> tuple[bytes, bytes, set[Reply]] | None:
    """Line by line, as RFC 5321 reads: (content, rest, limits exceeded); None if unfinished."""
    stream, content, problems = b"\r\n" + stream, bytearray(), set()
    start = 2  # the CRLF that ended the DATA command starts the first line
    while (end := stream.find(b"\r\n", start)) >= 0:
        line, start = stream[start : end + 2], end + 2
        if line == b".\r\n":
            if len(content) > max_bytes:
                problems.add(S552_MESSAGE_TOO_BIG)
            return bytes(content), stream[start:], problems
        line = line.removeprefix(b".")
        if len(line) > MAX_TEXT_LINE:
            problems.add(S500_LINE_TOO_LONG)
        content += line
    return None


@pytest.mark.parametrize("offset", range(len(STREAM) + 1))
def test_any_cut_in_two_gives_the_same_message(offset: int) -> None:
    """Every offset, so also inside the stuffed dot's CRLF ".." and inside CRLF "." CRLF."""
    receiver = received(cut(STREAM, offset))
    assert (receiver.content, receiver.unread, receiver.error) == (CONTENT, PIPELINED, None)


@pytest.mark.parametrize("offset", range(1, 5))
def test_end_of_data_cut_twice(offset: int) -> None:
    end = STREAM.index(b"\r\n.\r\n", 20)
    receiver = received(cut(STREAM, end + offset - 1, end + offset))
    assert (receiver.content, receiver.unread) == (CONTENT, PIPELINED)


def test_one_octet_at_a_time() -> None:
    receiver = DataReceiver(BIG)
    fed = [receiver.feed(STREAM[i : i + 1]) for i in range(STREAM.index(b"RSET"))]
    assert fed == [False] * (len(fed) - 1) + [True]
    assert (receiver.content, receiver.rest) == (CONTENT, b"")


@pytest.mark.parametrize(
    ("chunks", "rest"),
    [
        ([b".\r\n"], b""),
        ([b".", b"\r", b"\n"], b""),
        ([b".\r", b"\nQUIT\r\n"], b"QUIT\r\n"),
        ([b".\r\n.\r\n"], b".\r\n"),
    ],
)
def test_first_line_dot_ends_an_empty_message(chunks: list[bytes], rest: bytes) -> None:
    """The CRLF that ended the DATA command starts the first line (RFC 5321 4.1.1.4)."""
    receiver = received(chunks)
    assert (receiver.content, receiver.unread) == (b"", rest)


@pytest.mark.parametrize(
    ("chunks", "content"),
    [
        ([b".x\r\n.\r\n"], b"x\r\n"),
        ([b"..\r\n.\r\n"], b".\r\n"),
        ([b".", b".", b"\r\n.\r\n"], b".\r\n"),
        ([b"a\r\n", b".", b".x\r\n", b".\r\n"], b"a\r\n.x\r\n"),
        ([b"a\r", b"\n..", b"\r\n.\r\n"], b"a\r\n.\r\n"),
        ([b"a\r\n.", b"\r", b"\n"], b"a\r\n"),
        ([b"a\n.x\r.y\r\n.\r\n"], b"a\n.x\r.y\r\n"),  # a bare CR or LF does not start a line
    ],
)
def test_one_dot_is_removed_at_each_line_start(chunks: list[bytes], content: bytes) -> None:
    assert received(chunks).content == content


@pytest.mark.parametrize(
    "variant", [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r", b"\r.\r\n", b"\n.\r\n.\n"]
)
@pytest.mark.parametrize("offset", range(6))
def test_smuggled_end_of_data_stays_in_the_message(variant: bytes, offset: int) -> None:
    smuggled = b"body" + variant + b"MAIL FROM:<evil@example.org>\r\n"
    stream = smuggled + b".\r\n" + PIPELINED
    receiver = received(cut(stream, min(offset + 4, len(stream))))
    # Only a dot right after CRLF is a transparency dot: "\r\n.\r" loses it.
    assert receiver.content == smuggled.replace(b"\r\n.", b"\r\n")
    assert receiver.unread == PIPELINED


def line_of(octets: int) -> bytes:
    """A text line of `octets` octets including its CRLF."""
    return b"x" * (octets - 2) + b"\r\n"


@pytest.mark.parametrize("step", [1, 7, 999, 1000, 1001, 65536])
@pytest.mark.parametrize(
    ("line", "error"),
    [
        (line_of(MAX_TEXT_LINE), None),
        (b"." + line_of(MAX_TEXT_LINE), None),  # the stuffed dot does not count
        (b".." + line_of(MAX_TEXT_LINE - 1), None),
        (line_of(MAX_TEXT_LINE + 1), S500_LINE_TOO_LONG),
        (b".." + line_of(MAX_TEXT_LINE), S500_LINE_TOO_LONG),
        (line_of(100_000), S500_LINE_TOO_LONG),
    ],
)
def test_line_limit_across_chunks(step: int, line: bytes, error: Reply | None) -> None:
    stream = b"short\r\n" + line + line_of(MAX_TEXT_LINE) + b"end\r\n.\r\nNOOP\r\n"
    chunks = [stream[i : i + step] for i in range(0, len(stream), step)]
    receiver = received(chunks)
    assert receiver.error is error
    expected = b"short\r\n" + line.removeprefix(b".") + line_of(MAX_TEXT_LINE) + b"end\r\n"
    assert receiver.content == (b"" if error else expected)
    assert receiver.size == len(expected)
    assert receiver.unread == b"NOOP\r\n"


def test_an_unfinished_line_fails_once_past_the_limit() -> None:
    receiver = DataReceiver(BIG)
    assert not receiver.feed(b"x" * MAX_TEXT_LINE)  # not yet too long: no CRLF so far
    assert receiver.error is None
    assert not receiver.feed(b"x")
    assert receiver.error is S500_LINE_TOO_LONG


@pytest.mark.parametrize("max_bytes", [0, 99, 100])
def test_size_limit_counts_content_after_unstuffing(max_bytes: int) -> None:
    stream = b".." + b"y" * 97 + b"\r\n" + b".\r\n"  # 100 octets of content
    receiver = received([stream], max_bytes)
    assert receiver.size == 100
    assert receiver.error is (S552_MESSAGE_TOO_BIG if max_bytes < 100 else None)


def test_memory_stays_bounded_past_the_size_limit() -> None:
    limit, chunk = 100_000, (b"z" * 98 + b"\r\n") * 650  # 65,000 octets a chunk
    receiver = DataReceiver(limit)
    tracemalloc.start()
    try:
        for _ in range(160):  # 10.4 MB in all
            assert not receiver.feed(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit + 4 * len(chunk)
    assert receiver.error is S552_MESSAGE_TOO_BIG
    assert receiver.content == b""
    assert receiver.feed(b".\r\nQUIT\r\n")
    assert (receiver.size, receiver.rest) == (160 * len(chunk), b"QUIT\r\n")


def test_first_problem_is_reported() -> None:
    receiver = DataReceiver(10)
    assert not receiver.feed(b"a" * 20 + b"\r\n")
    assert not receiver.feed(line_of(2000))
    assert receiver.feed(b".\r\n")
    assert receiver.error is S552_MESSAGE_TOO_BIG


# Pieces that make the interesting patterns likely: dots after every kind of line ending.
PIECES = st.sampled_from(
    [b"\r\n", b"\r", b"\n", b".", b"..", b"\r\n.", b"\r\n.\r\n", b"a", b"bc", b"x" * 499]
)


@given(
    stream=st.lists(PIECES, max_size=40).map(b"".join),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=6),
    max_bytes=st.sampled_from([0, 50, 1000, BIG]),
)
def test_matches_a_line_by_line_reading(stream: bytes, cuts: list[int], max_bytes: int) -> None:
    stream += b"\r\n.\r\nQUIT\r\n"
    expected = reference(stream, max_bytes)
    assert expected is not None
    content, rest, problems = expected
    receiver = received(cut(stream, *sorted(cut % (len(stream) + 1) for cut in cuts)), max_bytes)
    assert receiver.unread == rest
    assert receiver.size == len(content)
    if problems:  # with both limits exceeded, which one is met first depends on the chunks
        assert receiver.error in problems
        assert receiver.content == b""
    else:
        assert (receiver.error, receiver.content) == (None, content)
