"""MIME bodies as bytes, built by hand (the `email` package costs ~100 µs a message).

A request's MIME tree is laid out once: attachments and untemplated bodies become bytes,
templated text parts become slots that are encoded per recipient. Boundaries are random per
request and start with "=_", which base64 and quoted-printable output never contain; a text
that contains "=_" is sent quoted-printable, so no body can ever contain a boundary.

Structure (RFC 2046 5.1.4: alternatives in increasing order of preference; RFC 2387 for
inline parts): mixed(alternative(text, amp, related(html, inline...)), attachments...), with
each container left out when it would hold a single part.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from mta.inject.errors import InvalidValue
from mta.inject.headers import check_value, has_control, structured_line
from mta.inject.schema import AttachmentSpec

CRLF = b"\r\n"
MAX_BODY_LINE = 998  # RFC 5322 2.1.1, RFC 5321 4.5.3.1.6
MAX_CONTENT_ID = 250
PARAM_CHUNK = 60  # characters of an RFC 2231 continuation value

_NEWLINES = re.compile(r"\r\n?|\n")
_LONG_LINE = re.compile(rf"[^\r\n]{{{MAX_BODY_LINE + 1}}}")
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 2045 5.1
_CONTENT_TYPE = re.compile(
    rf"({_TOKEN})/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\]|\\.)*\"))*\s*\Z"
)
_CONTENT_ID = re.compile(r"[!-;=?-~]+\Z")  # printable, no spaces or angle brackets


@dataclass(frozen=True, slots=True)
class TextSlot:
    """A text part whose body is rendered per recipient from the template `key`."""

    key: str
    mime_type: str


@dataclass(frozen=True, slots=True)
class Multipart:
    subtype: str
    children: tuple[Entity, ...]
    params: str = ""  # extra Content-Type parameters, e.g. '; type="text/html"'


Entity = bytes | TextSlot | Multipart
Layout = tuple[bytes | TextSlot, ...]


def to_crlf(text: str) -> str:
    """Every line ending (CRLF, bare LF, bare CR) as CRLF."""
    if "\r" not in text:
        return text.replace("\n", "\r\n")
    return _NEWLINES.sub("\r\n", text)


def text_entity(text: str, mime_type: str) -> bytes:
    """A text leaf: its headers, a blank line, the body in 7bit or quoted-printable."""
    text = to_crlf(text)
    if _is_7bit(text):
        encoding, body = b"7bit", text.encode("ascii")
    else:
        encoding, body = b"quoted-printable", qp_encode(text.encode("utf-8"))
    return (
        b"Content-Type: "
        + mime_type.encode("ascii")
        + b"; charset=utf-8\r\nContent-Transfer-Encoding: "
        + encoding
        + b"\r\n\r\n"
        + body
    )


def qp_encode(data: bytes) -> bytes:
    """Quoted-printable (RFC 2045 6.7) of CRLF text, with CRLF soft line breaks."""
    encoded = binascii.b2a_qp(data, istext=True)
    if b"\n" not in data:
        # binascii takes the line break style from the data; with none, it breaks with LF.
        encoded = encoded.replace(b"\n", b"\r\n")
    return encoded


def _is_7bit(text: str) -> bool:
    return (
        text.isascii()
        and "\x00" not in text
        and "=_" not in text
        and (len(text) <= MAX_BODY_LINE or _LONG_LINE.search(text) is None)
    )


def attachment_entity(attachment: AttachmentSpec, path: str) -> bytes:
    """An attachment leaf, base64; inline with a Content-ID when it has one."""
    content_type = _content_type(attachment.content_type, f"{path}.content_type")
    disposition = "inline" if attachment.content_id else "attachment"
    lines = [structured_line("Content-Type", content_type)]
    lines.append(b"Content-Transfer-Encoding: base64\r\n")
    if attachment.file_name:
        disposition += _filename_param(attachment.file_name, f"{path}.file_name")
    lines.append(structured_line("Content-Disposition", disposition))
    if attachment.content_id:
        lines.append(b"Content-ID: <" + _content_id(attachment.content_id, path) + b">\r\n")
    body = base64.encodebytes(attachment.data).replace(b"\n", CRLF)  # 76-char lines
    return b"".join(lines) + CRLF + body


def _content_type(value: str, path: str) -> str:
    match = _CONTENT_TYPE.match(value.strip())
    if match is None or not value.isascii() or has_control(value):
        raise InvalidValue(f"{path}: invalid content type {value!r}")
    if match[1].lower() == "multipart":
        raise InvalidValue(f"{path}: a multipart type cannot be an attachment")
    return value.strip()


def _filename_param(name: str, path: str) -> str:
    try:
        check_value(name)
    except InvalidValue as exc:
        raise InvalidValue(f"{path}: {exc}") from None
    if name.isascii():
        return '; filename="' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    # RFC 2231 3-4: charset-tagged, percent-encoded, cut into numbered continuations
    # between characters (readers decode each continuation on its own).
    chunks = ["utf-8''"]
    for char in name:
        encoded = quote(char, safe="")
        if len(chunks[-1]) + len(encoded) > PARAM_CHUNK:
            chunks.append("")
        chunks[-1] += encoded
    return "".join(f"; filename*{i}*={chunk}" for i, chunk in enumerate(chunks))


def _content_id(value: str, path: str) -> bytes:
    cid = value.strip()
    if cid.startswith("<") and cid.endswith(">"):
        cid = cid[1:-1]
    if len(cid) > MAX_CONTENT_ID or not _CONTENT_ID.match(cid):
        raise InvalidValue(f"{path}.content_id: invalid Content-ID {value!r}")
    return cid.encode("ascii")


def body_tree(
    alternatives: Sequence[tuple[str, Entity]],
    inline: Sequence[bytes],
    attached: Sequence[bytes],
) -> Entity:
    """The message body from (MIME type, entity) alternatives, least preferred first: the
    last one (the HTML) is wrapped with the inline parts in multipart/related, attachments
    go in multipart/mixed."""
    parts = [entity for _mime_type, entity in alternatives]
    if inline:
        root_type = alternatives[-1][0]
        parts[-1] = Multipart("related", (parts[-1], *inline), f'; type="{root_type}"')
    body = parts[0] if len(parts) == 1 else Multipart("alternative", tuple(parts))
    if attached:
        body = Multipart("mixed", (body, *attached))
    return body


def layout(entity: Entity) -> Layout:
    """Flatten a tree into bytes and slots, adjacent bytes merged, with fresh boundaries."""
    items: list[bytes | TextSlot] = []
    _flatten(entity, f"=_{secrets.token_hex(12)}", [0], items)
    merged: list[bytes | TextSlot] = []
    for item in items:
        if isinstance(item, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += item
        else:
            merged.append(item)
    return tuple(merged)


def _flatten(entity: Entity, base: str, counter: list[int], out: list[bytes | TextSlot]) -> None:
    if not isinstance(entity, Multipart):
        out.append(entity)
        return
    counter[0] += 1
    boundary = f"{base}_{counter[0]}".encode("ascii")
    out.append(
        b"Content-Type: multipart/"
        + entity.subtype.encode("ascii")
        + b';\r\n boundary="'
        + boundary
        + b'"'
        + entity.params.encode("ascii")
        + b"\r\n\r\n"
    )
    for child in entity.children:
        out.append(b"--" + boundary + CRLF)
        _flatten(child, base, counter, out)
        out.append(CRLF)
    out.append(b"--" + boundary + b"--" + CRLF)


def render(items: Layout, rendered: Mapping[str, str]) -> bytes:
    """The body bytes for one recipient: slots encoded from their rendered text."""
    return b"".join(
        item if isinstance(item, bytes) else text_entity(rendered[item.key], item.mime_type)
        for item in items
    )
