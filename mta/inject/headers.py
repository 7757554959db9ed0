"""Header fields as bytes: name and value checks, RFC 2047 encoding and folding.

Nothing a client sends becomes a header line without passing `check_name` / `check_value`:
no CR, LF, NUL or other control character in a value (after templating too), names made of
RFC 5322 ftext only. Values are folded at spaces to 78 characters where possible and never
exceed the 998-character line limit; non-ASCII text is sent as RFC 2047 encoded-words so the
message needs no SMTPUTF8 for it.
"""

from __future__ import annotations

import base64
import re

from mta.inject.errors import InvalidValue

MAX_LINE = 998  # RFC 5322 2.1.1: MUST NOT be more than 998 characters, excluding CRLF
FOLD_AT = 78  # RFC 5322 2.1.1: SHOULD NOT be more than 78 characters
MAX_NAME = 100  # a header name longer than this is a mistake, not a name
WORD_BYTES = 39  # UTF-8 bytes per encoded-word: 64 characters, under RFC 2047's 75
CRLF = "\r\n"

_NAME = re.compile(r"[!-9;-~]+\Z")  # RFC 5322 2.2: printable US-ASCII except ":"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # TAB is the only control allowed


def check_name(name: str) -> None:
    """Refuse a header name that is not 1..100 characters of RFC 5322 ftext."""
    if not name:
        raise InvalidValue("empty header name")
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise InvalidValue(f"invalid header name {name!r} (printable ASCII except ':' only)")


def check_value(value: str) -> None:
    """Refuse CR, LF, NUL and every other control character but TAB."""
    found = _CONTROL.search(value)
    if found is not None:
        raise InvalidValue(control_problem(found.group()))


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def control_problem(char: str) -> str:
    if char in "\r\n":
        return "contains a line break (CR or LF)"
    if char == "\x00":
        return "contains NUL"
    return f"contains the control character {char!r}"


def unstructured_line(name: str, value: str) -> bytes:
    """`Name: value` for free text (RFC 5322 3.2.5), encoded and folded as needed."""
    check_value(value)
    if value.isascii():
        line = f"{name}: {value}"
        if len(line) <= FOLD_AT:
            return (line + CRLF).encode("ascii")
        segments = fold(line)
        if max(map(len, segments)) <= MAX_LINE:
            return (CRLF.join(segments) + CRLF).encode("ascii")
    # Non-ASCII, or a run too long to fold: encoded-words can be cut anywhere.
    return (f"{name}: " + (CRLF + " ").join(encoded_words(value)) + CRLF).encode("ascii")


def structured_line(name: str, value: str) -> bytes:
    """`Name: value` for a value built from safe tokens (addresses), folded at spaces."""
    segments = fold(f"{name}: {value}")
    if max(map(len, segments)) > MAX_LINE:
        raise InvalidValue(f"the {name} header is longer than {MAX_LINE} characters")
    return (CRLF.join(segments) + CRLF).encode("utf-8")


def fold(line: str) -> list[str]:
    """Split a header line at spaces into segments of at most 78 characters where possible.

    Joining the segments with CRLF folds the line; unfolding (removing the CRLFs) gives the
    line back exactly. No segment is made of white space only (RFC 5322 3.2.2).
    """
    if len(line) <= FOLD_AT:
        return [line]
    words = line.split(" ")
    segments: list[str] = []
    current = words[0]
    for word in words[1:]:
        if word and len(current) + 1 + len(word) > FOLD_AT and current.strip():
            segments.append(current)
            current = " " + word
        else:
            current += " " + word
    segments.append(current)
    return segments


def encoded_words(text: str) -> list[str]:
    """RFC 2047 `=?utf-8?b?...?=` words for `text`, never splitting a character (2047 5)."""
    data = text.encode("utf-8")
    words = []
    start = 0
    while start < len(data):
        end = min(start + WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte
            end -= 1
        words.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode("ascii") + "?=")
        start = end
    return words
