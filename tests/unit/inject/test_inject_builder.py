"""Builder content: MIME structure, headers and attachments, parsed back with `email`."""

from __future__ import annotations

import base64
import copy
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from mta.inject.addresses import AddressChecker
from mta.inject.errors import InjectError, RecipientError
from mta.inject.generate import RequestPlan
from mta.inject.schema import parse_request
from mta.inject.templates import TemplateEngine
from tests.support.payloads import SAMPLE_PAYLOAD

PIXEL = "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
NON_ASCII_NAME = "résumé " * 20 + "日本語.pdf"


def sample() -> dict[str, Any]:
    return copy.deepcopy(SAMPLE_PAYLOAD)


def make_plan(body: dict[str, Any]) -> RequestPlan:
    return RequestPlan(
        parse_request(body),
        engine=TemplateEngine(),
        checker=AddressChecker(),
        hostname="mta.test",
        peer_address="127.0.0.1",
        now=1_700_000_000.0,
    )


def parsed(data: bytes) -> EmailMessage:
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects
    return message


def generate(body: dict[str, Any], index: int = 0) -> EmailMessage:
    return parsed(make_plan(body).generate(index, f"batch-{index}").data)


def with_content(**content: Any) -> dict[str, Any]:
    body = sample()
    body["content"] = {"text_body": "text", **content}
    return body


def test_sample_payload_is_multipart_alternative_with_all_headers() -> None:
    generated = make_plan(sample()).generate(0, "batch-0")
    assert generated.recipient == "someone@example.com"
    assert not generated.smtputf8
    message = parsed(generated.data)
    assert message.get_content_type() == "multipart/alternative"
    sender = message["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Test", "test@example.com")
    reply_to = message["Reply-To"].addresses[0]
    assert (reply_to.display_name, reply_to.addr_spec) == ("Test", "test@example.com")
    assert message["Subject"] == "This is the subject"
    assert message["To"].addresses[0].addr_spec == "someone@example.com"
    assert message["Message-ID"] == "<batch-0@mta.test>"
    assert message["Date"].datetime.timestamp() == 1_700_000_000
    assert message["MIME-Version"] == "1.0"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content() == "This is the plain text part"
    assert parts[1].get_content() == "<p>This is the <b>HTML</b> part</p>"


def test_one_thousand_recipients_get_distinct_correct_messages() -> None:
    body = sample()
    body["content"]["subject"] = "Offer {{ code }} for {{ name }}"
    body["content"]["text_body"] = "Dear {{ name }},\nyour code is {{ code }}.\n"
    body["content"]["html_body"] = "<p>Dear {{ name }}, code <b>{{ code }}</b></p>"
    body["recipients"] = [
        {"email": f"user{i}@example{i % 7}.com", "name": f"User {i}", "substitutions": {"code": i}}
        for i in range(1000)
    ]
    plan = make_plan(body)
    seen = set()
    for i in range(1000):
        generated = plan.generate(i, f"b-{i}")
        seen.add(generated.data)
        assert generated.recipient == f"user{i}@example{i % 7}.com"
        # Every message checked on its bytes; every 40th also parsed back in full (slow).
        assert f"\r\nSubject: Offer {i} for User {i}\r\n".encode() in generated.data
        assert f'\r\nTo: "User {i}" <{generated.recipient}>\r\n'.encode() in generated.data
        assert f"\r\n\r\nDear User {i},\r\nyour code is {i}.\r\n".encode() in generated.data
        if i % 40:
            continue
        message = parsed(generated.data)
        assert message["Subject"] == f"Offer {i} for User {i}"
        to = message["To"].addresses[0]
        assert (to.display_name, to.addr_spec) == (f"User {i}", generated.recipient)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert text is not None and html is not None
        assert text.get_content() == f"Dear User {i},\r\nyour code is {i}.\r\n"
        assert html.get_content() == f"<p>Dear User {i}, code <b>{i}</b></p>"
    assert len(seen) == 1000


def test_text_only_is_a_single_part() -> None:
    message = generate(with_content())
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content() == "text\r\n"


def test_amp_goes_between_text_and_html() -> None:
    message = generate(with_content(amp_html_body="<html amp4email>amp</html>", html_body="h"))
    types = [part.get_content_type() for part in message.iter_parts()]
    assert types == ["text/plain", "text/x-amp-html", "text/html"]  # RFC 2046 5.1.4 order


def test_attachments_base64_and_plain_go_in_multipart_mixed() -> None:
    message = generate(
        with_content(
            html_body="<p>h</p>",
            attachments=[
                {"data": PIXEL, "base64": True, "content_type": "image/gif", "file_name": "p.gif"},
                {"data": "héllo\nwörld", "content_type": "text/plain", "file_name": "notes.txt"},
            ],
        )
    )
    assert message.get_content_type() == "multipart/mixed"
    parts = list(message.iter_parts())
    assert parts[0].get_content_type() == "multipart/alternative"
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["p.gif", "notes.txt"]
    assert attachments[0].get_content() == base64.b64decode(PIXEL)
    assert attachments[1].get_payload(decode=True) == "héllo\nwörld".encode()
    assert all(a["Content-Disposition"].startswith("attachment") for a in attachments)


def test_inline_image_with_content_id_is_related_to_the_html() -> None:
    message = generate(
        with_content(
            html_body='<img src="cid:my-image">',
            attachments=[
                {
                    "data": PIXEL,
                    "base64": True,
                    "content_type": "image/gif",
                    "content_id": "my-image",
                },
                {"data": "x", "content_type": "application/octet-stream", "file_name": "x.bin"},
            ],
        )
    )
    assert message.get_content_type() == "multipart/mixed"
    alternative = next(message.iter_parts())
    assert alternative.get_content_type() == "multipart/alternative"
    text, related = alternative.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "text/html"
    html, image = related.iter_parts()
    assert html.get_content() == '<img src="cid:my-image">'
    assert image["Content-ID"] == "<my-image>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == base64.b64decode(PIXEL)


def test_non_ascii_file_name_uses_rfc2231() -> None:
    message = generate(
        with_content(
            attachments=[{"data": "x", "content_type": "text/plain", "file_name": NON_ASCII_NAME}]
        )
    )
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == NON_ASCII_NAME


@pytest.mark.parametrize(
    ("attachment", "message"),
    [
        ({"data": "x", "content_type": "text/plain\r\nBcc: x@y.com"}, "invalid content type"),
        ({"data": "x", "content_type": "multipart/mixed"}, "multipart type"),
        ({"data": "x", "content_type": "nonsense"}, "invalid content type"),
        ({"data": "x", "content_type": "a/b", "content_id": "a b"}, "invalid Content-ID"),
        ({"data": "x", "content_type": "a/b", "file_name": "a\r\nb"}, "line break"),
    ],
)
def test_bad_attachment_fields_refuse_the_request(attachment: dict[str, Any], message: str) -> None:
    with pytest.raises(InjectError, match=message) as info:
        make_plan(with_content(attachments=[attachment]))
    assert info.value.status == 400
    assert info.value.message.startswith("content.attachments[0]")


def test_attachments_are_not_templated() -> None:
    message = generate(
        with_content(attachments=[{"data": "{{ name }}", "content_type": "text/plain"}])
    )
    attachment = next(message.iter_attachments())
    assert attachment.get_payload(decode=True) == b"{{ name }}"


def test_custom_headers_are_templated_in_order() -> None:
    body = with_content(headers={"X-Campaign": "{{ c }}", "List-Unsubscribe": "<mailto:u@x.com>"})
    body["substitutions"] = {"c": "fall"}
    message = generate(body)
    assert message["X-Campaign"] == "fall"
    assert message["List-Unsubscribe"] == "<mailto:u@x.com>"
    keys = list(message.keys())
    assert keys.index("X-Campaign") < keys.index("List-Unsubscribe")


def test_subject_from_and_reply_to_override_same_named_headers() -> None:
    body = with_content(
        subject="real",
        headers={"subject": "ignored", "FROM": "x@y.com", "Reply-To": "z@y.com"},
        reply_to={"email": "help@example.com"},
        **{"from": {"email": "test@example.com", "name": "Test"}},
    )
    message = generate(body)
    assert message.get_all("Subject") == ["real"]
    (sender,) = message.get_all("From")
    assert [(a.display_name, a.addr_spec) for a in sender.addresses] == [
        ("Test", "test@example.com")
    ]
    (reply_to,) = message.get_all("Reply-To")
    assert reply_to.addresses[0].addr_spec == "help@example.com"


def test_to_header_in_headers_suppresses_the_generated_one() -> None:
    message = generate(with_content(headers={"To": "Team <team@example.com>"}))
    assert [str(v) for v in message.get_all("To")] == ["Team <team@example.com>"]


def test_date_and_message_id_headers_of_the_client_are_kept() -> None:
    message = generate(
        with_content(headers={"Date": "Mon, 1 Jan 2024 00:00:00 +0000", "Message-ID": "<x@y>"})
    )
    assert message.get_all("Message-ID") == ["<x@y>"]
    assert len(message.get_all("Date")) == 1


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Content-Type": "text/plain"}, "set by the message builder"),
        ({"MIME-Version": "1.0"}, "set by the message builder"),
        ({"Bad Name": "x"}, "invalid header name"),
        ({"X-A\r\nBcc": "x"}, "invalid header name"),
        ({"X-\x00": "x"}, "invalid header name"),
        ({"Sübject": "x"}, "invalid header name"),
        ({"X-A": "a\r\nBcc: x@y.com"}, "line break"),
        ({"X-A": "a\nb"}, "line break"),
        ({"X-A": "a\x00"}, "NUL"),
        ({"Cc": "a@b.com\r\nBcc: x@y.com"}, "line break"),
        ({"Cc": "not an address"}, "not a mailbox"),
        ({"To": "a@b.com", "to": "c@d.com"}, "more than one"),
    ],
)
def test_bad_static_headers_refuse_the_request(headers: dict[str, str], message: str) -> None:
    with pytest.raises(InjectError, match=message) as info:
        make_plan(with_content(headers=headers))
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"from": {"email": "a@b.com, c@d.com"}}, "content.from.email: invalid address"),
        ({"from": {"email": '"x@y> ORCPT=..."@z.com'}}, "content.from.email: invalid address"),
        ({"from": {"email": "a@b.com", "name": "x\r\nBcc: y@z.com"}}, "content.from.name"),
        ({"reply_to": {"email": "a@b.com\r\nBcc: x@y.com"}}, "content.reply_to.email"),
        ({"subject": "hi\r\nBcc: x@y.com"}, "line break"),
    ],
)
def test_bad_static_from_reply_to_subject_refuse_the_request(
    content: dict[str, Any], message: str
) -> None:
    with pytest.raises(InjectError, match=message) as info:
        make_plan(with_content(**content))
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("content", "value", "reason"),
    [
        (
            {"subject": "Hi {{ v }}"},
            "x\r\nBcc: evil@example.com",
            "content.subject: contains a line",
        ),
        ({"headers": {"X-A": "{{ v }}"}}, "a\nb", "contains a line break"),
        ({"headers": {"X-A": "{{ v }}"}}, "a\x00b", "contains NUL"),
        ({"headers": {"Cc": "{{ v }}"}}, "a@b.com, c@d.com\r\nBcc: e@f.com", "line break"),
        ({"headers": {"Cc": "{{ v }}"}}, "<a@b.com> NOTIFY=NEVER", "not a mailbox"),
        ({"from": {"email": "{{ v }}"}}, "a@b.com, c@d.com", "content.from.email: invalid"),
        ({"from": {"email": "x@y.com", "name": "{{ v }}"}}, "n\r\nBcc: e@f.com", "from.name"),
        ({"subject": "{% if true %}\n{% endif %}"}, "", "line break"),
    ],
)
def test_templated_values_producing_injections_fail_that_recipient(
    content: dict[str, Any], value: str, reason: str
) -> None:
    body = with_content(**content)
    body["recipients"] = [
        {"email": "bad@example.com", "substitutions": {"v": value}},
        {"email": "good@example.com", "substitutions": {"v": "fine@example.com"}},
    ]
    plan = make_plan(body)
    with pytest.raises(RecipientError, match=reason):
        plan.generate(0, "b-0")
    if "\n" not in content.get("subject", ""):
        assert b"Bcc" not in plan.generate(1, "b-1").data


def test_recipient_name_with_line_break_fails_that_recipient() -> None:
    body = sample()
    body["recipients"] = [{"email": "a@example.com", "name": "A\r\nBcc: x@y.com"}]
    with pytest.raises(RecipientError, match="name: contains a line break"):
        make_plan(body).generate(0, "b-0")


@pytest.mark.parametrize(
    "address",
    ["a@b.com, c@d.com", '"x@y> ORCPT=rfc822;x"@z.com', "a@b.com\r\nBcc: x@y.com", "nobody"],
)
def test_bad_recipient_address_fails_that_recipient(address: str) -> None:
    body = sample()
    body["recipients"] = [{"email": address}]
    with pytest.raises(RecipientError, match="invalid address"):
        make_plan(body).generate(0, "b-0")


def test_bad_envelope_sender_refuses_the_request() -> None:
    body = sample()
    body["envelope_sender"] = "a@b.com> NOTIFY=NEVER"
    with pytest.raises(InjectError, match="envelope_sender: invalid address") as info:
        make_plan(body)
    assert info.value.status == 400


def test_null_envelope_sender_is_allowed() -> None:
    body = sample()
    body["envelope_sender"] = ""
    assert make_plan(body).sender == ""


def test_non_ascii_everywhere_stays_7bit_and_decodes_back() -> None:
    body = with_content(
        subject="Grüße {{ name }}",
        text_body="Hallo {{ name }}, schöne Grüße\n",
        html_body="<p>日本語 {{ name }}</p>",
        **{"from": {"email": "news@example.com", "name": "Zoë Newsletter"}},
    )
    body["recipients"] = [{"email": "jörg@bücher.de", "name": "Jörg Müller"}]
    generated = make_plan(body).generate(0, "b-0")
    assert generated.smtputf8  # the local part is not ASCII
    assert generated.recipient == "jörg@xn--bcher-kva.de"
    _head, _, rest = generated.data.partition(b"\r\n\r\n")
    assert rest.isascii()
    message = parsed(generated.data)
    assert message["Subject"] == "Grüße Jörg Müller"
    assert message["From"].addresses[0].display_name == "Zoë Newsletter"
    assert message["To"].addresses[0].display_name == "Jörg Müller"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content() == "Hallo Jörg Müller, schöne Grüße\r\n"
    assert html.get_content() == "<p>日本語 Jörg Müller</p>"


def test_long_lines_and_boundary_like_text_are_quoted_printable() -> None:
    long_line = "word " * 400
    message = generate(with_content(text_body=long_line, html_body="a =_ b"))
    text, html = message.iter_parts()
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content() == long_line
    assert html["Content-Transfer-Encoding"] == "quoted-printable"
    assert html.get_content() == "a =_ b"


def test_bare_line_endings_in_bodies_become_crlf() -> None:
    message = generate(with_content(text_body="a\nb\rc\r\nd"))
    assert message.get_content() == "a\r\nb\r\nc\r\nd\r\n"


def test_request_is_not_modified() -> None:
    body = with_content(subject="{{ x }}")
    before = copy.deepcopy(body)
    make_plan(body).generate(0, "b-0")
    assert body == before
