"""Delivery status notifications (RFC 3464) as bytes: values in, a complete message out.

The report is a `multipart/report; report-type=delivery-status` (RFC 6522) with three parts: a
human explanation, the machine-readable `message/delivery-status` fields, and the original
message's headers (`text/rfc822-headers`) or the whole original (`message/rfc822`). The output is
7-bit clean unless the whole original is included and itself carries 8-bit data.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message, MIMEPart
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import Literal

from mta.replies import Reply

SUBJECT_FAILED = "Undelivered Mail Returned to Sender"
SUBJECT_DELAYED = "Delayed Mail (still being retried)"
MAILER_DAEMON = "MAILER-DAEMON"
_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")  # RFC 3464 2.3.4, RFC 3463
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
_UNSAFE = re.compile(r"[^\x20-\x7e]")  # field values stay printable ASCII (RFC 3464 2.1.1)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_BARE_EOL = re.compile(rb"\r\n|\r|\n")
MAX_LINE_OCTETS = 998  # RFC 5322 2.1.1

Action = Literal["failed", "delayed"]


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """One recipient to report: the reply that failed (or delayed) it and where it came from."""

    recipient: str
    reply: Reply
    remote_mta: str | None = None
    action: Action = "failed"
    last_attempt: float | None = None
    original_recipient: str | None = None  # ORCPT (RFC 3461 4.2), when the client gave one


def dsn_sender() -> str:
    """The reverse-path for a DSN: null (RFC 3464 2, RFC 5321 4.5.5), so DSNs never loop.

    The caller must never build a DSN for a message whose own sender is "" either.
    """
    return ""


def build_dsn(
    *,
    reporting_mta: str,
    original_sender: str,
    original_message: bytes,
    arrival_date: float,
    recipients: Sequence[FailedRecipient],
    original_envelope_id: str | None = None,
    message_id_domain: str | None = None,
    include_body: bool = False,
    now: float | None = None,
) -> bytes:
    """Build the RFC 3464 report for `recipients` of one message, with CRLF line endings.

    Raises ValueError for a null `original_sender` (a bounce of a bounce, RFC 5321 4.5.5) or
    an empty `recipients`.
    """
    if not original_sender:
        raise ValueError("no DSN for a message with a null reverse-path (RFC 5321 4.5.5)")
    if not recipients:
        raise ValueError("a DSN needs at least one recipient")
    report = _envelope_headers(
        reporting_mta, original_sender, recipients, message_id_domain or reporting_mta, now
    )
    placeholder = f"=_original_{secrets.token_hex(16)}"
    original = (
        _original_message_part(original_message, placeholder)
        if include_body
        else _original_headers_part(original_message)
    )
    parts: list[Message[str, str] | str] = [
        _human_part(reporting_mta, recipients),
        _status_part(reporting_mta, arrival_date, recipients, original_envelope_id),
        original,
    ]
    report.set_payload(parts)
    out = report.as_bytes(policy=SMTP)
    if include_body:
        # The original goes in verbatim (line endings made CRLF), not parsed and re-serialised:
        # re-folding its headers would alter it and fails on raw 8-bit header bytes.
        out = out.replace(placeholder.encode(), _BARE_EOL.sub(b"\r\n", original_message), 1)
    return out


def _envelope_headers(
    reporting_mta: str,
    original_sender: str,
    recipients: Sequence[FailedRecipient],
    id_domain: str,
    now: float | None,
) -> EmailMessage:
    report = EmailMessage(policy=SMTP)
    report["From"] = f"Mail Delivery System <{MAILER_DAEMON}@{reporting_mta}>"
    report["To"] = f"<{_ascii(original_sender)}>"
    report["Subject"] = SUBJECT_DELAYED if _all_delayed(recipients) else SUBJECT_FAILED
    report["Date"] = _date(time.time() if now is None else now)
    report["Message-ID"] = make_msgid(domain=id_domain)  # domain given: no blocking getfqdn()
    report["Auto-Submitted"] = "auto-replied"  # RFC 3834 5: keeps responders from answering
    report["MIME-Version"] = "1.0"
    report["Content-Type"] = "multipart/report"
    report.set_param("report-type", "delivery-status")  # RFC 6522 3
    report.set_boundary(f"=_dsn_{secrets.token_hex(12)}")
    return report


def _all_delayed(recipients: Sequence[FailedRecipient]) -> bool:
    return all(r.action == "delayed" for r in recipients)


def _human_part(reporting_mta: str, recipients: Sequence[FailedRecipient]) -> MIMEPart:
    if _all_delayed(recipients):
        intro = (
            "Your message could not be delivered yet to one or more recipients.\n"
            "The mail system will keep trying; you do not need to send it again."
        )
    else:
        intro = (
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients. It's attached below."
        )
    lines = [f"This is the mail system at host {reporting_mta}.", "", intro, ""]
    lines.extend(_human_line(r) for r in recipients)
    text = "\n".join(lines) + "\n"
    part = MIMEPart(policy=SMTP)
    part.set_content(text, charset=_charset(text), cte=_text_cte(text))
    return part


def _human_line(failed: FailedRecipient) -> str:
    where = f"host {failed.remote_mta} said" if failed.remote_mta else "the mail system said"
    state = "delayed" if failed.action == "delayed" else "failed"
    return f"<{failed.recipient}> ({state}): {where}: {_one_line(str(failed.reply))}"


def _status_part(
    reporting_mta: str,
    arrival_date: float,
    recipients: Sequence[FailedRecipient],
    envelope_id: str | None,
) -> MIMEPart:
    part = MIMEPart(policy=SMTP)
    part["Content-Type"] = "message/delivery-status"
    # A list payload of header-only blocks is how the email package models (and parses)
    # message/delivery-status: the per-message block, then one block per recipient.
    blocks: list[Message[str, str] | str] = [
        _message_fields(reporting_mta, arrival_date, envelope_id)
    ]
    blocks.extend(_recipient_fields(failed) for failed in recipients)
    part.set_payload(blocks)
    return part


def _message_fields(reporting_mta: str, arrival_date: float, envelope_id: str | None) -> MIMEPart:
    # Per-message fields, RFC 3464 2.2.
    block = MIMEPart(policy=SMTP)
    if envelope_id:
        block["Original-Envelope-Id"] = _ascii(envelope_id)
    block["Reporting-MTA"] = f"dns; {reporting_mta}"
    block["Arrival-Date"] = _date(arrival_date)
    return block


def _recipient_fields(failed: FailedRecipient) -> MIMEPart:
    # Per-recipient fields, RFC 3464 2.3.
    block = MIMEPart(policy=SMTP)
    if failed.original_recipient:
        block["Original-Recipient"] = _address_field(failed.original_recipient)
    block["Final-Recipient"] = _address_field(failed.recipient)
    block["Action"] = failed.action
    block["Status"] = status_code(failed.reply)
    if failed.remote_mta:
        block["Remote-MTA"] = f"dns; {_ascii(failed.remote_mta)}"
    block["Diagnostic-Code"] = f"smtp; {_ascii(str(failed.reply))}"
    if failed.last_attempt is not None:
        block["Last-Attempt-Date"] = _date(failed.last_attempt)
    return block


def _date(epoch: float) -> str:
    # RFC 5322 3.3 date-time in UTC with a numeric "+0000" zone.
    return format_datetime(datetime.fromtimestamp(epoch, UTC))


def status_code(reply: Reply) -> str:
    """The RFC 3464 Status for a reply: its enhanced code, else "<class>.0.0" from the code."""
    if _STATUS.match(reply.enhanced):
        return reply.enhanced
    return f"{reply.code // 100}.0.0"


def _address_field(address: str) -> str:
    if address.isascii():
        return f"rfc822; {_ascii(address)}"
    # RFC 6533 3: an internationalized address as utf-8-addr-xtext, \x{HEX} per non-ASCII char.
    escaped = "".join(c if c.isascii() else f"\\x{{{ord(c):X}}}" for c in address)
    return f"utf-8; {_ascii(escaped)}"


def _ascii(value: str) -> str:
    # Remote replies and envelope values may carry CR/LF, controls or 8-bit text; none of that
    # may reach a header field (header injection, RFC 5322 2.2).
    return _UNSAFE.sub("?", _one_line(value))


def _one_line(value: str) -> str:
    # Multi-line remote replies arrive joined with line breaks; report them on one line.
    return _LINE_BREAKS.sub(" ", value).strip()


def _original_headers_part(original: bytes) -> MIMEPart:
    # RFC 6522 4: text/rfc822-headers. 8-bit header bytes (SMTPUTF8 mail, or junk) are read as
    # UTF-8 and sent quoted-printable, so the DSN itself stays 7-bit and can be relayed to a
    # server without 8BITMIME; undecodable bytes become U+FFFD rather than an error.
    headers = _header_block(original).decode("utf-8", errors="replace")
    part = MIMEPart(policy=SMTP)
    part.set_content(
        headers, subtype="rfc822-headers", charset=_charset(headers), cte=_text_cte(headers)
    )
    return part


def _header_block(original: bytes) -> bytes:
    match = _HEADER_END.search(original)
    block = original if match is None else original[: match.start()]
    return block.rstrip(b"\r\n") + b"\n"


def _charset(text: str) -> str:
    return "us-ascii" if text.isascii() else "utf-8"


def _text_cte(text: str) -> str:
    # 7bit needs ASCII and lines within RFC 5322 2.1.1's 998-octet limit.
    fits = all(len(line) <= MAX_LINE_OCTETS for line in text.splitlines())
    return "7bit" if text.isascii() and fits else "quoted-printable"


def _original_message_part(original: bytes, placeholder: str) -> MIMEPart:
    part = MIMEPart(policy=SMTP)
    part["Content-Type"] = "message/rfc822"
    # RFC 2046 5.2.1: message/rfc822 may only be 7bit, 8bit or binary.
    part["Content-Transfer-Encoding"] = "7bit" if original.isascii() else "8bit"
    part.set_payload(placeholder)  # replaced by the original's bytes after serialisation
    return part
