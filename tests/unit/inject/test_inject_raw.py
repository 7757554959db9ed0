"""Raw content: a whole RFC 5322 message used as the template."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from mta.inject.addresses import AddressChecker
from mta.inject.errors import InjectError, RecipientError
from mta.inject.generate import RequestPlan
from mta.inject.schema import parse_request
from mta.inject.templates import TemplateEngine


def make_plan(
    content: str, recipients: list[dict[str, Any]] | None = None, **fields: Any
) -> RequestPlan:
    body = {
        "envelope_sender": "noreply@example.com",
        "recipients": recipients or [{"email": "recipient@example.com", "name": "John Smith"}],
        "content": content,
        "trace_headers": {"supplemental_header": False},
        **fields,
    }
    return RequestPlan(
        parse_request(body),
        engine=TemplateEngine(),
        checker=AddressChecker(),
        hostname="mta.test",
        peer_address="127.0.0.1",
        now=0.0,
    )


def generate(content: str, index: int = 0, **fields: Any) -> bytes:
    return make_plan(content, **fields).generate(index, f"b-{index}").data


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def assert_crlf_only(data: bytes) -> None:
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")


def test_kumomta_docs_example() -> None:
    data = generate('To: "{{ name }}" <{{ email }}>\nSubject: hello\n\nHello {{ name }}!')
    assert_crlf_only(data)
    message = parsed(data)
    assert message["To"].addresses[0].display_name == "John Smith"
    assert message.get_all("To") is not None and len(message.get_all("To")) == 1
    assert message["Subject"] == "hello"
    assert message["MIME-Version"] == "1.0"
    assert message["Message-ID"] == "<b-0@mta.test>"
    assert message["Date"] is not None
    assert data.endswith(b"\r\n\r\nHello John Smith!\r\n")


def test_bare_lf_and_cr_become_crlf_and_mime_version_is_added() -> None:
    data = generate("Subject: hi\nX-A: 1\r\n\nline 1\nline 2\rline 3\r\n")
    assert_crlf_only(data)
    assert b"Subject: hi\r\nX-A: 1\r\n" in data
    assert data.endswith(b"\r\n\r\nline 1\r\nline 2\r\nline 3\r\n")
    assert data.count(b"MIME-Version: 1.0\r\n") == 1


def test_existing_mime_version_to_date_and_message_id_are_kept() -> None:
    data = generate(
        "MIME-Version: 1.0\nTo: a@example.com\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
        "Message-ID: <mine@example.com>\n\nbody"
    )
    message = parsed(data)
    for name in ("MIME-Version", "To", "Date", "Message-ID"):
        assert len(message.get_all(name) or []) == 1, name
    assert message["Message-ID"] == "<mine@example.com>"


def test_to_is_generated_per_recipient_when_missing() -> None:
    plan = make_plan(
        "Subject: hi\n\nbody",
        recipients=[{"email": "a@example.com", "name": "A"}, {"email": "b@example.com"}],
    )
    first = parsed(plan.generate(0, "b-0").data)
    second = parsed(plan.generate(1, "b-1").data)
    assert (first["To"].addresses[0].display_name, first["To"].addresses[0].addr_spec) == (
        "A",
        "a@example.com",
    )
    assert second["To"].addresses[0].addr_spec == "b@example.com"


def test_folded_headers_stay_folded() -> None:
    data = generate("Subject: a long\n  folded subject\nX-A: 1\n\nbody")
    assert b"Subject: a long\r\n  folded subject\r\nX-A: 1\r\n" in data


def test_multiline_value_in_the_body_is_kept() -> None:
    data = generate(
        "Subject: {{ subject }}\n\n{{ body }}",
        substitutions={"subject": "Hi", "body": "Dear John,\nline two\r\nbye\n"},
    )
    assert data.endswith(b"\r\n\r\nDear John,\r\nline two\r\nbye\r\n")


@pytest.mark.parametrize(
    "value",
    ["x\r\nBcc: evil@example.com", "x\nBcc: evil@example.com", "x\rBcc: y", "x\n\nbody"],
)
def test_value_line_break_in_the_header_section_fails_the_recipient(value: str) -> None:
    plan = make_plan(
        "Subject: {{ subject }}\nX-A: 1\n\nbody",
        recipients=[
            {"email": "bad@example.com", "substitutions": {"subject": value}},
            {"email": "good@example.com", "substitutions": {"subject": "fine"}},
        ],
    )
    with pytest.raises(RecipientError, match="line break into the header section"):
        plan.generate(0, "b-0")
    assert b"Subject: fine\r\nX-A: 1\r\n" in plan.generate(1, "b-1").data


def test_value_with_nul_fails_the_recipient() -> None:
    plan = make_plan("Subject: x\n\n{{ v }}", substitutions={"v": "a\x00b"})
    with pytest.raises(RecipientError, match="NUL"):
        plan.generate(0, "b-0")


def test_headers_generated_by_template_logic_are_allowed() -> None:
    data = generate(
        "{% for name, value in extra.items() %}{{ name }}: {{ value }}\n{% endfor %}"
        "Subject: hi\n\nbody",
        substitutions={"extra": {"X-One": "1", "X-Two": "2"}},
    )
    assert data.startswith(b"X-One: 1\r\nX-Two: 2\r\nSubject: hi\r\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Hello there, no headers at all", "content: line 1: not a header field"),
        ("Subject: hi\nnot a header\n\nbody", "content: line 2: not a header field"),
        ("Bad Name: x\n\nbody", "content: line 1: not a header field"),
        (" continuation first\n\nbody", "content: line 1: not a header field"),
        ("Subject: a\x0bb\n\nbody", "content: line 1: contains the control character"),
    ],
)
def test_static_malformed_message_is_a_422(content: str, message: str) -> None:
    with pytest.raises(InjectError) as info:
        make_plan(content)
    assert (info.value.status, info.value.message[: len(message)]) == (422, message)


def test_templated_malformed_message_fails_the_recipient() -> None:
    plan = make_plan("{{ first_line }}\n\nbody", substitutions={"first_line": "no colon here"})
    with pytest.raises(RecipientError, match="not a header field"):
        plan.generate(0, "b-0")


def test_body_only_message_gets_generated_headers() -> None:
    data = generate("\nJust a body")
    message = parsed(data)
    assert message["To"] is not None and message["MIME-Version"] == "1.0"
    assert data.endswith(b"\r\n\r\nJust a body\r\n")


def test_headers_only_message() -> None:
    data = generate("Subject: only headers\n")
    assert b"Subject: only headers\r\n" in data
    assert data.endswith(b"MIME-Version: 1.0\r\n\r\n")


def test_non_ascii_headers_are_encoded_and_body_becomes_quoted_printable() -> None:
    data = generate(
        "From: Zoë <zoe@example.com>\nSubject: Grüße {{ name }}\n\nHallo {{ name }}, schön!\n",
        recipients=[{"email": "a@example.com", "name": "Jörg"}],
    )
    assert data.isascii()
    message = parsed(data)
    assert message["Subject"] == "Grüße Jörg"
    assert message["From"].addresses[0].display_name == "Zoë"
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Hallo Jörg, schön!\r\n"


def test_non_ascii_body_with_its_own_mime_headers_is_left_alone() -> None:
    data = generate("Content-Type: text/plain; charset=utf-8\n\nschön")
    assert data.endswith("\r\n\r\nschön\r\n".encode())


def test_static_dialect_takes_the_message_literally() -> None:
    data = generate("Subject: {{ x }}\n\n{% y %}", template_dialect="Static")
    assert b"Subject: {{ x }}\r\n" in data
    assert data.endswith(b"\r\n\r\n{% y %}\r\n")
