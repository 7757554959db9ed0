"""RFC 3464 delivery status notifications: structure, fields, encodings, line endings."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from typing import Any, cast

import pytest

from mta.dsn import (
    SUBJECT_DELAYED,
    SUBJECT_FAILED,
    FailedRecipient,
    build_dsn,
    dsn_sender,
    status_code,
)
from mta.replies import Reply

ORIGINAL = (
    b"From: Sender <sender@example.com>\r\n"
    b"To: rcpt@example.net\r\n"
    b"Subject: quarterly report\r\n"
    b"Message-ID: <orig-1@example.com>\r\n"
    b"\r\n"
    b"Hello there.\r\n"
)
ARRIVAL = 1_700_000_000.0
USER_UNKNOWN = Reply(550, "5.1.1", "User unknown")


def _build(recipients: list[FailedRecipient], **overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "reporting_mta": "mta-0.example.com",
        "original_sender": "sender@example.com",
        "original_message": ORIGINAL,
        "arrival_date": ARRIVAL,
        "recipients": recipients,
    }
    fields.update(overrides)
    return build_dsn(**fields)


def _parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def _children(message: EmailMessage) -> list[EmailMessage]:
    payload = message.get_payload()
    assert isinstance(payload, list)
    return cast(list[EmailMessage], payload)


def _parts(raw: bytes) -> list[EmailMessage]:
    return _children(_parse(raw))


def _status_blocks(raw: bytes) -> list[EmailMessage]:
    status = _parts(raw)[1]
    assert status.get_content_type() == "message/delivery-status"
    return _children(status)


def _assert_crlf_only(raw: bytes) -> None:
    assert re.search(rb"(?<!\r)\n", raw) is None, "bare LF"
    assert re.search(rb"\r(?!\n)", raw) is None, "bare CR"


def test_top_level_headers() -> None:
    raw = _build([FailedRecipient("rcpt@example.net", USER_UNKNOWN)], now=ARRIVAL + 60)
    report = _parse(raw)
    assert report["From"] == "Mail Delivery System <MAILER-DAEMON@mta-0.example.com>"
    assert [a.addr_spec for a in report["To"].addresses] == ["sender@example.com"]
    assert report["Subject"] == SUBJECT_FAILED
    assert report["Auto-Submitted"] == "auto-replied"
    assert report["MIME-Version"] == "1.0"
    assert report["Date"] == "Tue, 14 Nov 2023 22:14:20 +0000"
    assert report["Message-ID"].endswith("@mta-0.example.com>")
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"


def test_message_id_domain_override() -> None:
    raw = _build(
        [FailedRecipient("rcpt@example.net", USER_UNKNOWN)], message_id_domain="bounces.example"
    )
    assert _parse(raw)["Message-ID"].endswith("@bounces.example>")


def test_three_parts_in_rfc_6522_order() -> None:
    raw = _build([FailedRecipient("rcpt@example.net", USER_UNKNOWN)])
    types = [part.get_content_type() for part in _parts(raw)]
    assert types == ["text/plain", "message/delivery-status", "text/rfc822-headers"]


def test_human_part_names_each_recipient_and_reply() -> None:
    raw = _build(
        [
            FailedRecipient("a@example.net", USER_UNKNOWN, remote_mta="mx1.example.net"),
            FailedRecipient("b@example.org", Reply(552, "5.2.2", "Mailbox full")),
        ]
    )
    text = _parts(raw)[0].get_content()
    assert "<a@example.net>" in text
    assert "host mx1.example.net said: 550 5.1.1 User unknown" in text
    assert "<b@example.org>" in text and "552 5.2.2 Mailbox full" in text


def test_per_message_fields() -> None:
    raw = _build(
        [FailedRecipient("rcpt@example.net", USER_UNKNOWN)], original_envelope_id="QQ314159"
    )
    per_message = _status_blocks(raw)[0]
    assert per_message["Reporting-MTA"] == "dns; mta-0.example.com"
    assert per_message["Arrival-Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert per_message["Original-Envelope-Id"] == "QQ314159"


def test_envelope_id_absent_when_not_given() -> None:
    raw = _build([FailedRecipient("rcpt@example.net", USER_UNKNOWN)])
    assert "Original-Envelope-Id" not in _status_blocks(raw)[0]


def test_per_recipient_fields() -> None:
    raw = _build(
        [
            FailedRecipient(
                "a@example.net",
                USER_UNKNOWN,
                remote_mta="mx1.example.net",
                last_attempt=ARRIVAL + 3600,
                original_recipient="A@example.net",
            ),
            FailedRecipient("b@example.org", Reply(554, "", "no thanks")),
            FailedRecipient("c@example.org", Reply(451, "", "later"), action="delayed"),
        ]
    )
    _, first, second, third = _status_blocks(raw)
    assert first["Final-Recipient"] == "rfc822; a@example.net"
    assert first["Original-Recipient"] == "rfc822; A@example.net"
    assert first["Action"] == "failed"
    assert first["Status"] == "5.1.1"
    assert first["Remote-MTA"] == "dns; mx1.example.net"
    assert first["Diagnostic-Code"] == "smtp; 550 5.1.1 User unknown"
    assert first["Last-Attempt-Date"] == "Tue, 14 Nov 2023 23:13:20 +0000"

    assert second["Final-Recipient"] == "rfc822; b@example.org"
    assert second["Status"] == "5.0.0"  # derived from the basic code
    assert second["Diagnostic-Code"] == "smtp; 554 no thanks"
    assert "Remote-MTA" not in second and "Last-Attempt-Date" not in second
    assert "Original-Recipient" not in second

    assert (third["Action"], third["Status"]) == ("delayed", "4.0.0")


def test_status_code() -> None:
    assert status_code(Reply(550, "5.7.26", "x")) == "5.7.26"
    assert status_code(Reply(421, "", "x")) == "4.0.0"
    assert status_code(Reply(550, "bogus", "x")) == "5.0.0"


def test_original_headers_part_holds_the_header_block_only() -> None:
    raw = _build([FailedRecipient("rcpt@example.net", USER_UNKNOWN)])
    headers = _parts(raw)[2].get_content()
    assert "Subject: quarterly report" in headers
    assert "Message-ID: <orig-1@example.com>" in headers
    assert "Hello there." not in headers


def test_output_is_crlf_only_even_for_lf_input() -> None:
    lf_original = ORIGINAL.replace(b"\r\n", b"\n")
    for include_body in (False, True):
        raw = _build(
            [FailedRecipient("rcpt@example.net", USER_UNKNOWN)],
            original_message=lf_original,
            include_body=include_body,
        )
        _assert_crlf_only(raw)


def test_delayed_variant() -> None:
    raw = _build(
        [
            FailedRecipient("a@example.net", Reply(451, "4.4.1", "no answer"), action="delayed"),
            FailedRecipient("b@example.net", Reply(421, "4.4.2", "dropped"), action="delayed"),
        ]
    )
    assert _parse(raw)["Subject"] == SUBJECT_DELAYED
    assert [b["Action"] for b in _status_blocks(raw)[1:]] == ["delayed", "delayed"]
    assert "keep trying" in _parts(raw)[0].get_content()


def test_mixed_failed_and_delayed_is_a_failure_report() -> None:
    raw = _build(
        [
            FailedRecipient("a@example.net", USER_UNKNOWN),
            FailedRecipient("b@example.net", Reply(451, "4.4.1", "no answer"), action="delayed"),
        ]
    )
    assert _parse(raw)["Subject"] == SUBJECT_FAILED


def test_include_body_attaches_the_original_verbatim() -> None:
    raw = _build([FailedRecipient("rcpt@example.net", USER_UNKNOWN)], include_body=True)
    _assert_crlf_only(raw)
    assert ORIGINAL in raw
    attached = _parts(raw)[2]
    assert attached.get_content_type() == "message/rfc822"
    [inner] = _children(attached)
    assert inner["Subject"] == "quarterly report"
    assert inner.get_content().strip() == "Hello there."


def test_non_ascii_original_headers_do_not_break_it() -> None:
    original = (
        "From: Zoë <zoe@example.com>\r\nSubject: héllo wörld " + "x" * 120 + "\r\n"
    ).encode() + b"X-Bad: \xff\r\n\r\nbody \xc3\xbc\r\n"
    raw = _build([FailedRecipient("rcpt@example.net", USER_UNKNOWN)], original_message=original)
    assert raw.isascii()  # the headers-only report stays 7-bit clean
    _assert_crlf_only(raw)
    headers = _parts(raw)[2].get_content()
    assert "From: Zoë <zoe@example.com>" in headers
    assert "héllo wörld " + "x" * 120 in headers
    assert "X-Bad: \ufffd" in headers  # undecodable bytes are replaced, not fatal
    assert "body" not in headers


def test_non_ascii_original_with_body_is_8bit_and_parses() -> None:
    original = "Subject: héllo " + "ü" * 100 + "\r\n\r\nbody ü\r\n"
    raw = _build(
        [FailedRecipient("rcpt@example.net", USER_UNKNOWN)],
        original_message=original.encode(),
        include_body=True,
    )
    _assert_crlf_only(raw)
    assert original.encode() in raw
    attached = _parts(raw)[2]
    assert attached["Content-Transfer-Encoding"] == "8bit"


def test_reply_text_cannot_inject_fields() -> None:
    evil = Reply(550, "5.1.1", "User unknown\r\nAction: delivered\r\n\r\nX: y")
    raw = _build([FailedRecipient("rcpt@example.net", evil)])
    _, block = _status_blocks(raw)
    assert block["Action"] == "failed"
    assert block.get_all("Action") == ["failed"]
    assert block["Diagnostic-Code"] == "smtp; 550 5.1.1 User unknown Action: delivered X: y"


def test_internationalised_recipient_uses_utf8_address_type() -> None:
    raw = _build([FailedRecipient("josé@example.net", USER_UNKNOWN)])
    _, block = _status_blocks(raw)
    assert block["Final-Recipient"] == "utf-8; jos\\x{E9}@example.net"  # RFC 6533 3


def test_null_sender_and_empty_recipients_are_refused() -> None:
    with pytest.raises(ValueError, match="null reverse-path"):
        _build([FailedRecipient("rcpt@example.net", USER_UNKNOWN)], original_sender="")
    with pytest.raises(ValueError, match="at least one recipient"):
        _build([])


def test_dsn_sender_is_the_null_reverse_path() -> None:
    assert dsn_sender() == ""
