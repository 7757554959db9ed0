"""Builder content (`content` given as an object): headers and a MIME body per recipient.

Compiled once per request: `subject`, `from` and `reply_to` are folded into the header list
(overriding a same-named entry of `headers`, as KumoMTA does), every header value and body
becomes a template part, attachments are encoded, the MIME layout and every fully static
header line are computed. Per recipient only the templated parts are rendered, checked and
assembled. A bad static value refuses the request (400); a bad rendered value fails only its
recipient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mta.inject import mime
from mta.inject.addresses import ADDRESS_HEADERS, AddressChecker, address_list, format_mailbox
from mta.inject.content import Built
from mta.inject.errors import InvalidValue, RecipientError, bad_request
from mta.inject.headers import check_name, structured_line, unstructured_line
from mta.inject.schema import BuilderSpec, MailboxSpec
from mta.inject.templates import Part, TemplateEngine

# Set by the builder from the parts; a client's own would contradict the generated structure.
BUILDER_OWNED = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
# RFC 5322 3.6: at most one of each.
SINGLE = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc", "subject", "date"})
SINGLE_IDS = frozenset({"message-id", "in-reply-to", "references"})
SHORTCUTS = {"subject": "Subject", "from": "From", "reply-to": "Reply-To"}

Values = Mapping[str, str]
LineMaker = Callable[[Values, AddressChecker], tuple[bytes, bool]]


@dataclass(frozen=True, slots=True)
class _Unstructured:
    name: str
    key: str

    def __call__(self, values: Values, checker: AddressChecker) -> tuple[bytes, bool]:
        try:
            return unstructured_line(self.name, values[self.key]), False
        except InvalidValue as exc:
            raise InvalidValue(f"{self.key}: {exc}") from None


@dataclass(frozen=True, slots=True)
class _AddressList:
    name: str
    key: str

    def __call__(self, values: Values, checker: AddressChecker) -> tuple[bytes, bool]:
        try:
            text, utf8 = address_list(values[self.key], checker)
            return structured_line(self.name, text), utf8
        except InvalidValue as exc:
            raise InvalidValue(f"{self.key}: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Mailbox:
    """`from` / `reply_to`: address and display name are separate templates."""

    name: str
    email_key: str
    name_key: str | None

    def __call__(self, values: Values, checker: AddressChecker) -> tuple[bytes, bool]:
        try:
            address = checker.check(values[self.email_key])
        except InvalidValue as exc:
            raise InvalidValue(f"{self.email_key}: {exc}") from None
        display = values[self.name_key] if self.name_key else None
        try:
            text = format_mailbox(display, address.text)
        except InvalidValue as exc:
            raise InvalidValue(f"{self.name_key}: {exc}") from None
        return structured_line(self.name, text), address.smtputf8


class BuilderPlan:
    """Builder content compiled for one request (see the module docstring)."""

    def __init__(
        self, spec: BuilderSpec, dialect: str, engine: TemplateEngine, checker: AddressChecker
    ) -> None:
        self._checker = checker
        parts, makers, keys_of = _header_parts(spec)
        parts += _body_parts(spec)
        self._static, self.compiled = engine.compile(parts, dialect)
        self._items: list[bytes | LineMaker] = []
        self._static_utf8 = False
        for maker, keys in zip(makers, keys_of, strict=True):
            if all(key in self._static for key in keys):
                self._items.append(self._static_line(maker))
            else:
                self._items.append(maker)
        self._layout = mime.layout(self._body(spec))
        self._present = frozenset(name.lower() for name, _ in spec.headers)

    def build(self, rendered: Mapping[str, str]) -> Built:
        values = {**self._static, **rendered} if rendered else self._static
        head = []
        utf8 = self._static_utf8
        for item in self._items:
            if isinstance(item, bytes):
                head.append(item)
                continue
            try:
                line, needs_utf8 = item(values, self._checker)
            except (InvalidValue, UnicodeEncodeError) as exc:
                raise RecipientError(str(exc)) from None
            head.append(line)
            utf8 = utf8 or needs_utf8
        try:
            body = mime.render(self._layout, values)
        except UnicodeEncodeError:
            raise RecipientError("a body is not valid Unicode text") from None
        return Built(b"".join(head), body, self._present, utf8)

    def _static_line(self, maker: LineMaker) -> bytes:
        try:
            line, utf8 = maker(self._static, self._checker)
        except (InvalidValue, UnicodeEncodeError) as exc:
            raise bad_request(str(exc)) from None
        self._static_utf8 = self._static_utf8 or utf8
        return line

    def _body(self, spec: BuilderSpec) -> mime.Entity:
        alternatives = [
            (mime_type, self._leaf(key, mime_type))
            for key, mime_type, text in (
                ("content.text_body", "text/plain", spec.text_body),
                ("content.amp_html_body", "text/x-amp-html", spec.amp_html_body),
                ("content.html_body", "text/html", spec.html_body),
            )
            if text is not None
        ]
        inline: list[bytes] = []
        attached: list[bytes] = []
        for i, attachment in enumerate(spec.attachments):
            try:
                entity = mime.attachment_entity(attachment, f"content.attachments[{i}]")
            except InvalidValue as exc:
                raise bad_request(str(exc)) from None
            (inline if attachment.content_id else attached).append(entity)
        return mime.body_tree(alternatives, inline, attached)

    def _leaf(self, key: str, mime_type: str) -> mime.Entity:
        if key not in self._static:
            return mime.TextSlot(key, mime_type)
        try:
            return mime.text_entity(self._static[key], mime_type)
        except UnicodeEncodeError:
            raise bad_request(f"{key}: not valid Unicode text") from None


def _header_parts(
    spec: BuilderSpec,
) -> tuple[list[Part], list[LineMaker], list[tuple[str, ...]]]:
    """Template parts, line makers and the keys each maker reads, in header order."""
    parts: list[Part] = []
    makers: list[LineMaker] = []
    keys_of: list[tuple[str, ...]] = []
    for field, mailbox in (("from", spec.from_), ("reply_to", spec.reply_to)):
        if mailbox is not None:
            maker, mailbox_parts = _mailbox(field, mailbox)
            parts += mailbox_parts
            makers.append(maker)
            keys_of.append(tuple(part.key for part in mailbox_parts))
    if spec.subject is not None:
        parts.append(Part("content.subject", spec.subject))
        makers.append(_Unstructured("Subject", "content.subject"))
        keys_of.append(("content.subject",))
    for name, value in _custom_headers(spec):
        key = f"content.headers[{name!r}]"
        parts.append(Part(key, value))
        kind = _AddressList if name.lower() in ADDRESS_HEADERS else _Unstructured
        makers.append(kind(name, key))
        keys_of.append((key,))
    return parts, makers, keys_of


def _mailbox(field: str, mailbox: MailboxSpec) -> tuple[LineMaker, list[Part]]:
    name = "From" if field == "from" else "Reply-To"
    email_key = f"content.{field}.email"
    parts = [Part(email_key, mailbox.email)]
    name_key = None
    if mailbox.name is not None:
        name_key = f"content.{field}.name"
        parts.append(Part(name_key, mailbox.name))
    return _Mailbox(name, email_key, name_key), parts


def _custom_headers(spec: BuilderSpec) -> list[tuple[str, str]]:
    """`headers` checked, without the entries that subject/from/reply_to override."""
    overridden = {
        lower
        for lower, value in (("subject", spec.subject), ("from", spec.from_))
        if value is not None
    } | ({"reply-to"} if spec.reply_to is not None else set())
    seen: set[str] = set()
    kept = []
    for name, value in spec.headers:
        lower = name.lower()
        path = f"content.headers[{name!r}]"
        try:
            check_name(name)
        except InvalidValue as exc:
            raise bad_request(f"{path}: {exc}") from None
        if lower in BUILDER_OWNED:
            raise bad_request(f"{path}: {name} is set by the message builder")
        if lower in seen and (lower in SINGLE or lower in SINGLE_IDS):
            raise bad_request(f"{path}: more than one {name} header")
        seen.add(lower)
        if lower not in overridden:
            kept.append((name, value))
    return kept


def _body_parts(spec: BuilderSpec) -> list[Part]:
    parts = []
    if spec.text_body is not None:
        parts.append(Part("content.text_body", spec.text_body))
    if spec.html_body is not None:
        parts.append(Part("content.html_body", spec.html_body, html=True))
    if spec.amp_html_body is not None:
        parts.append(Part("content.amp_html_body", spec.amp_html_body, html=True))
    return parts
