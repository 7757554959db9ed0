"""Pipelining without I/O: command lines and the parsing of several replies per read."""

from __future__ import annotations

import pytest

from mta.delivery.pipeline import (
    MAX_REPLY_BYTES,
    MalformedReply,
    mail_command,
    rcpt_command,
    take_reply,
)


def test_replies_are_taken_one_at_a_time_in_order() -> None:
    buffer = bytearray(b"250 2.1.0 ok\r\n250-first\r\n250 2.1.5 second\r\n354 go")
    assert take_reply(buffer) == (250, "2.1.0 ok")
    assert take_reply(buffer) == (250, "first\n2.1.5 second")
    assert take_reply(buffer) is None  # "354 go" has no line ending yet
    buffer.extend(b" ahead\r\n")
    assert take_reply(buffer) == (354, "go ahead")
    assert buffer == b""


def test_a_multi_line_reply_waits_for_its_last_line() -> None:
    buffer = bytearray(b"250-one\r\n250-two\r\n")
    assert take_reply(buffer) is None
    assert buffer == b"250-one\r\n250-two\r\n"  # nothing consumed


@pytest.mark.parametrize("data", [b"hello\r\n", b"25x ok\r\n", b"\r\n"])
def test_malformed_reply(data: bytes) -> None:
    with pytest.raises(MalformedReply):
        take_reply(bytearray(data))


def test_endless_reply_is_malformed() -> None:
    with pytest.raises(MalformedReply):
        take_reply(bytearray(b"250-" + b"x" * MAX_REPLY_BYTES))


def test_command_lines() -> None:
    assert mail_command("a@b.test", ["SIZE=10"], "ascii") == b"MAIL FROM:<a@b.test> SIZE=10\r\n"
    assert mail_command("", [], "ascii") == b"MAIL FROM:<>\r\n"
    assert rcpt_command("Name <x@y.test>", "ascii") == b"RCPT TO:<x@y.test>\r\n"
    assert rcpt_command("ü@y.test", "utf-8") == "RCPT TO:<ü@y.test>\r\n".encode()


@pytest.mark.parametrize("address", ["a b@c.test", "a@b\x00.test"])
def test_addresses_that_cannot_go_on_the_wire(address: str) -> None:
    with pytest.raises(ValueError):
        rcpt_command(address, "ascii")


def test_non_ascii_needs_utf8() -> None:
    with pytest.raises(UnicodeEncodeError):  # a ValueError: refused like a bad address
        rcpt_command("ü@y.test", "ascii")
