"""Raw content (`content` given as a whole RFC 5322 message): the template is the message.

After rendering, the header section must be header fields only (RFC 5322 2.2): every line a
`name: value` field or a folded continuation. A line break that a substituted value put into
the header section is refused (the template marks them, see `templates`); in the body it is
kept. Line endings become CRLF. Non-ASCII header fields are re-encoded (RFC 2047 for text,
address headers re-formatted), and a non-ASCII body without any MIME header gets
`Content-Type: text/plain; charset=utf-8` and quoted-printable, so the message stays 7-bit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mta.inject.addresses import ADDRESS_HEADERS, AddressChecker, address_list
from mta.inject.content import Built
from mta.inject.errors import InvalidValue, RecipientError, unprocessable
from mta.inject.headers import check_value, structured_line, unstructured_line
from mta.inject.mime import qp_encode, to_crlf
from mta.inject.templates import MARK, VALUE_CR, VALUE_LF, Part, TemplateEngine

CONTENT_KEY = "content"
_NEWLINES = re.compile(r"\r\n?")
_FIELD = re.compile(r"([!-9;-~]+):")  # RFC 5322 2.2 field name, then the colon
_UTF8_TEXT = (
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
)


class RawPlan:
    """A raw message template compiled for one request; a static one is checked once."""

    def __init__(
        self, content: str, dialect: str, engine: TemplateEngine, checker: AddressChecker
    ) -> None:
        self._checker = checker
        static, self.compiled = engine.compile([Part(CONTENT_KEY, content)], dialect, raw=True)
        self._fixed: Built | None = None
        if CONTENT_KEY in static:
            try:
                self._fixed = parse_message(static[CONTENT_KEY], checker)
            except InvalidValue as exc:
                raise unprocessable(f"content: {exc}") from None

    def build(self, rendered: Mapping[str, str]) -> Built:
        if self._fixed is not None:
            return self._fixed
        try:
            return parse_message(rendered[CONTENT_KEY], self._checker)
        except InvalidValue as exc:
            raise RecipientError(f"content: {exc}") from None


def parse_message(text: str, checker: AddressChecker) -> Built:
    """Split, check and normalize one rendered message; InvalidValue when it is not one."""
    if "\r" in text:
        text = _NEWLINES.sub("\n", text)
    head, body = _split(text)
    if MARK in head:
        raise InvalidValue("a substituted value puts a line break into the header section")
    fields = _fields(head)
    present = frozenset(name.lower() for name, _ in fields)
    lines, utf8 = _header_bytes(fields, checker)
    if MARK in body:
        body = body.replace(VALUE_CR, "\r").replace(VALUE_LF, "\n")
    try:
        data = to_crlf(body).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue("the body is not valid Unicode text") from None
    if not data.isascii() and not present & {"content-type", "content-transfer-encoding"}:
        lines += _UTF8_TEXT
        data = qp_encode(data)
    return Built(lines, b"\r\n" + data, present, utf8)


def _split(text: str) -> tuple[str, str]:
    if text.startswith("\n"):
        return "", text[1:]
    head, separator, body = text.partition("\n\n")
    return (head, body) if separator else (head.rstrip("\n"), "")


def _fields(head: str) -> list[tuple[str, list[str]]]:
    """Header fields as (name, lines); every line checked."""
    fields: list[tuple[str, list[str]]] = []
    for number, line in enumerate(head.split("\n") if head else (), start=1):
        try:
            check_value(line)
        except InvalidValue as exc:
            raise InvalidValue(f"line {number}: {exc}") from None
        if line[:1] in (" ", "\t") and fields:
            fields[-1][1].append(line)
            continue
        match = _FIELD.match(line)
        if match is None:
            raise InvalidValue(f"line {number}: not a header field: {line[:40]!r}")
        fields.append((match[1], [line]))
    return fields


def _header_bytes(
    fields: list[tuple[str, list[str]]], checker: AddressChecker
) -> tuple[bytes, bool]:
    out = []
    utf8 = False
    for name, lines in fields:
        if all(line.isascii() for line in lines):
            out.append("\r\n".join(lines).encode("ascii") + b"\r\n")
            continue
        value = "".join(lines)[len(name) + 1 :].strip()  # unfolded (RFC 5322 2.2.3)
        if name.lower() in ADDRESS_HEADERS:
            text, needs_utf8 = address_list(value, checker)
            out.append(structured_line(name, text))
            utf8 = utf8 or needs_utf8
        else:
            out.append(unstructured_line(name, value))
    return b"".join(out), utf8
