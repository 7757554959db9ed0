"""The inject request (KumoMTA's `InjectV1Request`) read from decoded JSON into frozen values.

Like KumoMTA (serde `deny_unknown_fields` on every object of the request), unknown fields are
refused. Every error names the field path (`recipients[3].email: expected a string, got
number`). `null` is accepted wherever a field is optional and means "absent". Values are only
typed here; addresses, headers and templates are checked by the modules that use them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mta.inject.errors import bad_request

JsonObject = dict[str, Any]

DIALECTS = ("Jinja", "Static", "Handlebars")
DEFAULT_TRACE_HEADER = "X-KumoRef"

_REQUEST_FIELDS = frozenset(
    {
        "envelope_sender",
        "recipients",
        "content",
        "substitutions",
        "template_dialect",
        "deferred_spool",
        "deferred_generation",
        "trace_headers",
    }
)
_RECIPIENT_FIELDS = frozenset({"email", "name", "substitutions", "metadata"})
_BUILDER_FIELDS = frozenset(
    {
        "text_body",
        "html_body",
        "amp_html_body",
        "subject",
        "from",
        "reply_to",
        "headers",
        "attachments",
    }
)
_MAILBOX_FIELDS = frozenset({"email", "name"})
_ATTACHMENT_FIELDS = frozenset({"data", "content_type", "base64", "file_name", "content_id"})
_TRACE_FIELDS = frozenset(
    {"received_header", "supplemental_header", "header_name", "include_meta_names"}
)


@dataclass(frozen=True, slots=True)
class MailboxSpec:
    """`from` / `reply_to`: an address and an optional display name (both templates)."""

    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AttachmentSpec:
    """One attachment, already decoded; never templated."""

    data: bytes
    content_type: str
    file_name: str | None = None
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class BuilderSpec:
    """Content described as parts; `headers` keeps the client's order."""

    text_body: str | None = None
    html_body: str | None = None
    amp_html_body: str | None = None
    subject: str | None = None
    from_: MailboxSpec | None = None
    reply_to: MailboxSpec | None = None
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[AttachmentSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class RecipientSpec:
    email: str
    name: str | None = None
    substitutions: JsonObject = field(default_factory=dict)
    metadata: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TraceHeaders:
    """KumoMTA's HTTP defaults: no Received header, an `X-KumoRef` supplemental header."""

    received_header: bool = False
    supplemental_header: bool = True
    header_name: str = DEFAULT_TRACE_HEADER
    include_meta_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InjectRequest:
    envelope_sender: str
    recipients: tuple[RecipientSpec, ...]
    content: str | BuilderSpec
    substitutions: JsonObject = field(default_factory=dict)
    template_dialect: str = "Jinja"
    deferred_spool: bool = False  # accepted for compatibility; we always spool first
    deferred_generation: bool = False
    trace_headers: TraceHeaders = field(default_factory=TraceHeaders)


def parse_request(body: Any) -> InjectRequest:
    """Type-check a decoded JSON body; raise InjectError(400) naming the first bad field."""
    top = _object(body, "request body", _REQUEST_FIELDS)
    return InjectRequest(
        envelope_sender=_required_string(top, "envelope_sender", "envelope_sender"),
        recipients=_recipients(top.get("recipients")),
        content=_content(top.get("content")),
        substitutions=_json_object(top, "substitutions", "substitutions"),
        template_dialect=_dialect(top.get("template_dialect")),
        deferred_spool=_boolean(top, "deferred_spool", "deferred_spool", False),
        deferred_generation=_boolean(top, "deferred_generation", "deferred_generation", False),
        trace_headers=_trace_headers(top.get("trace_headers")),
    )


# -- generic field readers ---------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _wrong(path: str, expected: str, value: Any) -> Exception:
    return bad_request(f"{path}: expected {expected}, got {_type_name(value)}")


def _object(value: Any, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(path, "an object", value)
    unknown = [key for key in value if key not in allowed]
    if unknown:
        names = ", ".join(repr(key) for key in sorted(map(str, unknown)))
        raise bad_request(f"{path}: unknown field{'s' if len(unknown) > 1 else ''} {names}")
    return value


def _optional_string(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _wrong(path, "a string", value)


def _required_string(obj: Mapping[str, Any], key: str, path: str) -> str:
    if key not in obj or obj[key] is None:
        raise bad_request(f"{path}: required")
    value = _optional_string(obj, key, path)
    assert value is not None
    return value


def _boolean(obj: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    raise _wrong(path, "a boolean", value)


def _json_object(obj: Mapping[str, Any], key: str, path: str) -> JsonObject:
    value = obj.get(key)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _wrong(path, "an object", value)


def _array(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise _wrong(path, "an array", value)


# -- the request's parts -----------------------------------------------------------------


def _recipients(value: Any) -> tuple[RecipientSpec, ...]:
    if value is None:
        raise bad_request("recipients: required")
    items = _array(value, "recipients")
    if not items:
        raise bad_request("recipients: at least one recipient is required")
    return tuple(_recipient(item, f"recipients[{i}]") for i, item in enumerate(items))


def _recipient(value: Any, path: str) -> RecipientSpec:
    # Written out (not through the generic readers) because requests carry many recipients.
    if type(value) is not dict or not value.keys() <= _RECIPIENT_FIELDS:
        _object(value, path, _RECIPIENT_FIELDS)  # raises with the precise reason
    email = value.get("email")
    if type(email) is not str:
        if email is None:
            raise bad_request(f"{path}.email: required")
        raise _wrong(f"{path}.email", "a string", email)
    return RecipientSpec(
        email=email,
        name=_optional_string(value, "name", f"{path}.name"),
        substitutions=_json_object(value, "substitutions", f"{path}.substitutions"),
        metadata=_json_object(value, "metadata", f"{path}.metadata"),
    )


def _content(value: Any) -> str | BuilderSpec:
    if value is None:
        raise bad_request("content: required")
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise _wrong("content", "a string or an object", value)
    obj = _object(value, "content", _BUILDER_FIELDS)
    builder = BuilderSpec(
        text_body=_optional_string(obj, "text_body", "content.text_body"),
        html_body=_optional_string(obj, "html_body", "content.html_body"),
        amp_html_body=_optional_string(obj, "amp_html_body", "content.amp_html_body"),
        subject=_optional_string(obj, "subject", "content.subject"),
        from_=_mailbox(obj.get("from"), "content.from"),
        reply_to=_mailbox(obj.get("reply_to"), "content.reply_to"),
        headers=_headers(obj.get("headers")),
        attachments=_attachments(obj.get("attachments")),
    )
    if builder.text_body is None and builder.html_body is None:
        # As KumoMTA: an AMP part alone is not a message most clients can show.
        raise bad_request("content: at least one of text_body and html_body is required")
    return builder


def _mailbox(value: Any, path: str) -> MailboxSpec | None:
    if value is None:
        return None
    obj = _object(value, path, _MAILBOX_FIELDS)
    return MailboxSpec(
        email=_required_string(obj, "email", f"{path}.email"),
        name=_optional_string(obj, "name", f"{path}.name"),
    )


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise _wrong("content.headers", "an object", value)
    for name, text in value.items():
        if not isinstance(text, str):
            raise _wrong(f"content.headers[{name!r}]", "a string", text)
    return tuple(value.items())


def _attachments(value: Any) -> tuple[AttachmentSpec, ...]:
    items = _array(value, "content.attachments")
    return tuple(_attachment(item, f"content.attachments[{i}]") for i, item in enumerate(items))


def _attachment(value: Any, path: str) -> AttachmentSpec:
    obj = _object(value, path, _ATTACHMENT_FIELDS)
    data = _required_string(obj, "data", f"{path}.data")
    encoded = _boolean(obj, "base64", f"{path}.base64", False)
    return AttachmentSpec(
        data=_decode_base64(data, f"{path}.data") if encoded else _utf8(data, f"{path}.data"),
        content_type=_required_string(obj, "content_type", f"{path}.content_type"),
        file_name=_optional_string(obj, "file_name", f"{path}.file_name"),
        content_id=_optional_string(obj, "content_id", f"{path}.content_id"),
    )


def _decode_base64(data: str, path: str) -> bytes:
    # Line breaks and spaces are common in base64 pasted from files; anything else is refused.
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"{path}: invalid base64 ({exc})") from None


def _utf8(data: str, path: str) -> bytes:
    try:
        return data.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"{path}: not valid Unicode text") from None


def _dialect(value: Any) -> str:
    if value is None:
        return "Jinja"
    if value in DIALECTS:
        return str(value)
    if isinstance(value, str):
        choices = ", ".join(DIALECTS)
        raise bad_request(f"template_dialect: unknown dialect {value!r}; expected one of {choices}")
    raise _wrong("template_dialect", "a string", value)


def _trace_headers(value: Any) -> TraceHeaders:
    if value is None:
        return TraceHeaders()
    obj = _object(value, "trace_headers", _TRACE_FIELDS)
    names = _array(obj.get("include_meta_names"), "trace_headers.include_meta_names")
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise _wrong(f"trace_headers.include_meta_names[{i}]", "a string", name)
    header_name = _optional_string(obj, "header_name", "trace_headers.header_name")
    return TraceHeaders(
        received_header=_boolean(obj, "received_header", "trace_headers.received_header", False),
        supplemental_header=_boolean(
            obj, "supplemental_header", "trace_headers.supplemental_header", True
        ),
        header_name=DEFAULT_TRACE_HEADER if header_name is None else header_name,
        include_meta_names=tuple(names),
    )
