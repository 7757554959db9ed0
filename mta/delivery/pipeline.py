"""SMTP command pipelining (RFC 2920) without I/O: the command lines of one group and
the parsing of the replies that come back, possibly several to a read."""

from __future__ import annotations

import re

from aiosmtplib.email import quote_address

# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; allow far more (aiosmtplib's
# limit for a whole reply) before calling the server broken.
MAX_REPLY_BYTES = 8192 * 4
# C0 controls and DEL would end the command line early or start another (injection).
_FORBIDDEN = re.compile(rb"[\x00-\x1f\x7f]")
# An address made only of these needs no quoting, so quote_address (email.utils, slow)
# would return it unchanged inside <>; anything else takes the slow path.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")

RSET = b"RSET\r\n"
DATA = b"DATA\r\n"


class MalformedReply(Exception):
    """The server sent something that is not an SMTP reply, or one far too long."""


def path(address: str, encoding: str) -> bytes:
    """`<address>` as aiosmtplib would write it; ValueError if it cannot go on the wire."""
    quoted = f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else quote_address(address)
    encoded = quoted.encode(encoding)
    if _FORBIDDEN.search(encoded):
        raise ValueError(f"address {address!r} contains a control character")
    return encoded


def mail_command(sender: str, options: list[str], encoding: str) -> bytes:
    """`MAIL FROM:<sender> [options]` (RFC 5321 4.1.1.2)."""
    parts = [b"MAIL FROM:" + path(sender, encoding), *(o.encode("ascii") for o in options)]
    return b" ".join(parts) + b"\r\n"


def rcpt_command(recipient: str, encoding: str) -> bytes:
    """`RCPT TO:<recipient>` (RFC 5321 4.1.1.3)."""
    return b"RCPT TO:" + path(recipient, encoding) + b"\r\n"


def take_reply(buffer: bytearray) -> tuple[int, str] | None:
    """Remove the first complete reply from `buffer` and return (code, text); None when
    the buffer holds no complete reply yet. The lines of a multi-line reply (RFC 5321
    4.2.1, "250-" continuations) are joined with "\\n", as aiosmtplib does."""
    lines: list[bytes] = []
    offset = 0
    while True:
        end = buffer.find(b"\n", offset)
        if end < 0:
            if len(buffer) > MAX_REPLY_BYTES:
                raise MalformedReply("reply too long")
            return None
        line = bytes(buffer[offset : end + 1])
        code = line[:3]
        if not code.isdigit():
            text = line.decode("utf-8", "replace").strip()
            raise MalformedReply(f"Malformed SMTP response line: {text}")
        lines.append(line[4:].strip(b" \t\r\n"))
        offset = end + 1
        if line[3:4] != b"-":
            break
    del buffer[:offset]
    return int(code), b"\n".join(lines).decode("utf-8", "surrogateescape")
