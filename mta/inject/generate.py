"""One message per recipient from a compiled request: pure, no I/O.

`RequestPlan` does the expensive work once per request (check the sender, compile the
templates, lay out the MIME body, encode attachments, format the Date); `generate` then costs
one template render and a byte join per recipient. Template variables are layered as in
KumoMTA: the request's `substitutions`, then `email`, `name` (when given) and `to_header`,
then the recipient's own `substitutions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from mta.inject.addresses import AddressChecker, format_mailbox
from mta.inject.builder import BuilderPlan
from mta.inject.content import Built, ContentPlan
from mta.inject.errors import InvalidValue, RecipientError, bad_request
from mta.inject.headers import structured_line
from mta.inject.raw import RawPlan
from mta.inject.schema import InjectRequest, RecipientSpec
from mta.inject.templates import TemplateEngine
from mta.inject.trace import TracePlan

RECEPTION_PROTOCOL = "HTTP"
MIME_VERSION = b"MIME-Version: 1.0\r\n"
CRLF = b"\r\n"


@dataclass(frozen=True, slots=True)
class Generated:
    """One recipient's message, ready for the accept path."""

    recipient: str  # the checked envelope address
    data: bytes
    smtputf8: bool
    meta: dict[str, Any] = field(default_factory=dict)


class RequestPlan:
    """A request compiled once; `generate(i, msg_id)` builds recipient i's message."""

    def __init__(
        self,
        request: InjectRequest,
        *,
        engine: TemplateEngine,
        checker: AddressChecker,
        hostname: str,
        peer_address: str,
        now: float,
    ) -> None:
        self.request = request
        self._checker = checker
        self._hostname = hostname
        try:
            sender = checker.check_sender(request.envelope_sender)
        except InvalidValue as exc:
            raise bad_request(f"envelope_sender: {exc}") from None
        self.sender = sender.text
        self._sender_utf8 = sender.smtputf8
        self._content = _content_plan(request, engine, checker)
        self._templated = bool(self._content.compiled.keys)
        date = format_datetime(datetime.fromtimestamp(now, UTC))
        self._date_line = f"Date: {date}\r\n".encode("ascii")
        self._trace = TracePlan(
            request.trace_headers,
            hostname=hostname,
            peer=peer_address,
            sender=self.sender,
            date=date,
        )

    def __len__(self) -> int:
        return len(self.request.recipients)

    def email(self, index: int) -> str:
        """Recipient `index`'s address as the client wrote it (for the response)."""
        return self.request.recipients[index].email

    def generate(self, index: int, msg_id: str) -> Generated:
        """Recipient `index`'s message with id `msg_id`; RecipientError when it cannot be."""
        spec = self.request.recipients[index]
        try:
            address = self._checker.check(spec.email)
        except InvalidValue as exc:
            raise RecipientError(str(exc)) from None
        try:
            to_header = format_mailbox(spec.name, address.text)
        except InvalidValue as exc:
            raise RecipientError(f"name: {exc}") from None
        rendered = (
            self._content.compiled.render(self._variables(spec, to_header))
            if self._templated
            else {}
        )
        built = self._content.build(rendered)
        data = self._assemble(built, to_header, msg_id)
        if self._trace.enabled:
            data = (
                self._trace.lines(
                    recipient=address.text, msg_id=msg_id, metadata=spec.metadata, data=data
                )
                + data
            )
        utf8 = self._sender_utf8 or address.smtputf8 or built.utf8
        meta = {"rcpt_meta": spec.metadata} if spec.metadata else {}
        return Generated(address.text, data, utf8, meta)

    def _variables(self, spec: RecipientSpec, to_header: str) -> dict[str, Any]:
        variables = dict(self.request.substitutions)
        variables["email"] = spec.email
        if spec.name is not None:
            variables["name"] = spec.name
        variables["to_header"] = to_header
        if spec.substitutions:
            variables.update(spec.substitutions)
        return variables

    def _assemble(self, built: Built, to_header: str, msg_id: str) -> bytes:
        present = built.present
        head = [built.head]
        if "to" not in present:
            try:
                head.append(structured_line("To", to_header))
            except InvalidValue as exc:
                raise RecipientError(str(exc)) from None
        if "date" not in present:
            head.append(self._date_line)
        if "message-id" not in present:
            head.append(f"Message-ID: <{msg_id}@{self._hostname}>\r\n".encode("ascii"))
        if "mime-version" not in present:
            head.append(MIME_VERSION)
        data = b"".join(head) + built.body
        return data if data.endswith(CRLF) else data + CRLF


def _content_plan(
    request: InjectRequest, engine: TemplateEngine, checker: AddressChecker
) -> ContentPlan:
    if isinstance(request.content, str):
        return RawPlan(request.content, request.template_dialect, engine, checker)
    return BuilderPlan(request.content, request.template_dialect, engine, checker)
