"""The inject request schema: types, required fields, unknown fields, each error's field path."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from mta.inject.errors import InjectError
from mta.inject.schema import BuilderSpec, InjectRequest, TraceHeaders, parse_request


def request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "envelope_sender": "sender@example.com",
        "recipients": [{"email": "rcpt@example.com"}],
        "content": "Subject: hi\n\nHello",
    }
    body.update(overrides)
    return body


def refused(body: Any) -> InjectError:
    with pytest.raises(InjectError) as info:
        parse_request(body)
    assert info.value.status == 400
    return info.value


def test_minimal_request_gets_kumomta_defaults() -> None:
    parsed = parse_request(request())
    assert parsed == InjectRequest(
        envelope_sender="sender@example.com",
        recipients=parsed.recipients,
        content="Subject: hi\n\nHello",
    )
    assert parsed.template_dialect == "Jinja"
    assert parsed.trace_headers == TraceHeaders(
        received_header=False, supplemental_header=True, header_name="X-KumoRef"
    )
    assert not parsed.deferred_generation and not parsed.deferred_spool


def test_full_builder_request_is_read() -> None:
    pixel = base64.b64encode(b"GIF89a...").decode()
    parsed = parse_request(
        request(
            content={
                "text_body": "t",
                "html_body": "h",
                "amp_html_body": "a",
                "subject": "s",
                "from": {"email": "f@example.com", "name": "F"},
                "reply_to": {"email": "r@example.com"},
                "headers": {"X-B": "2", "X-A": "1"},
                "attachments": [
                    {"data": pixel, "base64": True, "content_type": "image/gif", "content_id": "p"},
                    {"data": "plain text", "content_type": "text/plain", "file_name": "a.txt"},
                ],
            },
            substitutions={"g": 1},
            template_dialect="Static",
            deferred_generation=True,
            deferred_spool=True,
            trace_headers={"received_header": True, "include_meta_names": ["tenant"]},
        )
    )
    content = parsed.content
    assert isinstance(content, BuilderSpec)
    assert content.headers == (("X-B", "2"), ("X-A", "1"))  # the client's order
    assert content.attachments[0].data == b"GIF89a..."
    assert content.attachments[1].data == b"plain text"
    assert content.from_ is not None and content.from_.name == "F"
    assert parsed.trace_headers.received_header
    assert parsed.trace_headers.include_meta_names == ("tenant",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "request body: expected an object, got array"),
        (request(envelope_sender=None), "envelope_sender: required"),
        (request(envelope_sender=5), "envelope_sender: expected a string, got number"),
        (request(recipients=None), "recipients: required"),
        (request(recipients=[]), "recipients: at least one recipient is required"),
        (request(recipients={"email": "a@b.c"}), "recipients: expected an array, got object"),
        (request(recipients=[{"email": "a@b.c"}, "x"]), "recipients[1]: expected an object"),
        (request(recipients=[{"name": "x"}]), "recipients[0].email: required"),
        (request(recipients=[{"email": 1}]), "recipients[0].email: expected a string"),
        (request(recipients=[{"email": "a@b.c", "name": 3}]), "recipients[0].name: expected"),
        (
            request(recipients=[{"email": "a@b.c", "substitutions": []}]),
            "recipients[0].substitutions: expected an object, got array",
        ),
        (
            request(recipients=[{"email": "a@b.c", "metadata": "x"}]),
            "recipients[0].metadata: expected an object, got string",
        ),
        (request(content=None), "content: required"),
        (request(content=7), "content: expected a string or an object, got number"),
        (request(content={"subject": "s"}), "content: at least one of text_body and html_body"),
        (request(content={"text_body": 1}), "content.text_body: expected a string, got number"),
        (
            request(content={"text_body": "t", "from": {"name": "x"}}),
            "content.from.email: required",
        ),
        (
            request(content={"text_body": "t", "headers": {"X-A": 1}}),
            "content.headers['X-A']: expected a string, got number",
        ),
        (
            request(content={"text_body": "t", "attachments": [{"data": "x"}]}),
            "content.attachments[0].content_type: required",
        ),
        (
            request(
                content={
                    "text_body": "t",
                    "attachments": [{"data": "!!", "base64": True, "content_type": "a/b"}],
                }
            ),
            "content.attachments[0].data: invalid base64",
        ),
        (request(substitutions=[1]), "substitutions: expected an object, got array"),
        (request(template_dialect="Mustache"), "template_dialect: unknown dialect 'Mustache'"),
        (request(deferred_generation="yes"), "deferred_generation: expected a boolean"),
        (request(trace_headers={"header_name": 1}), "trace_headers.header_name: expected"),
        (
            request(trace_headers={"include_meta_names": ["a", 2]}),
            "trace_headers.include_meta_names[1]: expected a string, got number",
        ),
    ],
)
def test_errors_name_the_field_path(body: Any, message: str) -> None:
    assert refused(body).message.startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (request(campaign="x"), "request body: unknown field 'campaign'"),
        (request(a=1, b=2), "request body: unknown fields 'a', 'b'"),
        (
            request(recipients=[{"email": "a@b.c", "mail": "x"}]),
            "recipients[0]: unknown field 'mail'",
        ),
        (request(content={"text_body": "t", "bcc": "x"}), "content: unknown field 'bcc'"),
        (
            request(content={"text_body": "t", "from": {"email": "a@b.c", "x": 1}}),
            "content.from: unknown field 'x'",
        ),
        (
            request(
                content={
                    "text_body": "t",
                    "attachments": [{"data": "x", "content_type": "a/b", "inline": True}],
                }
            ),
            "content.attachments[0]: unknown field 'inline'",
        ),
        (request(trace_headers={"received": True}), "trace_headers: unknown field 'received'"),
    ],
)
def test_unknown_fields_are_refused_like_kumomta(body: Any, message: str) -> None:
    # KumoMTA's request types are serde `deny_unknown_fields`: a typo is an error, not ignored.
    assert refused(body).message == message


def test_null_means_absent_for_optional_fields() -> None:
    parsed = parse_request(
        request(
            substitutions=None,
            template_dialect=None,
            trace_headers=None,
            recipients=[{"email": "a@b.c", "name": None, "substitutions": None}],
            content={"text_body": "t", "html_body": None, "from": None, "headers": None},
        )
    )
    assert parsed.substitutions == {}
    assert parsed.recipients[0].name is None


def test_base64_attachment_may_contain_line_breaks() -> None:
    data = base64.encodebytes(bytes(range(256)) * 4).decode()  # 76-character lines
    parsed = parse_request(
        request(
            content={
                "text_body": "t",
                "attachments": [{"data": data, "base64": True, "content_type": "a/b"}],
            }
        )
    )
    assert isinstance(parsed.content, BuilderSpec)
    assert parsed.content.attachments[0].data == bytes(range(256)) * 4
