"""The suppression list's pure parts: the admin API's request checks and the refusal reply."""

from __future__ import annotations

import pytest

from mta.queue.admin_api import RequestError
from mta.suppression import ALL_TENANTS, Entry, normalize
from mta.suppression.api import DEFAULT_CLASSIFICATION, DEFAULT_REASON, parse_add, parse_list


def test_add_defaults_and_duration() -> None:
    request = parse_add({"recipient": "bob@example.com"})
    assert (request.tenant, request.reason, request.classification, request.ttl) == (
        None, DEFAULT_REASON, DEFAULT_CLASSIFICATION, None,
    )  # fmt: skip
    assert parse_add({"recipient": "b@x", "duration": "1h 30m", "tenant": "acme"}).ttl == 5400
    assert parse_add({"recipient": "b@x", "duration": 90}).ttl == 90
    assert parse_add({"recipient": "b@x", "tenant": ""}).tenant is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"recipient": "no-at-sign"}, "recipient"),
        ({}, "recipient"),
        ({"recipient": "b@x", "colour": "red"}, "colour"),
        ({"recipient": "b@x", "duration": "0s"}, "duration"),
        ({"recipient": "b@x", "duration": "soon"}, "duration"),
        ({"recipient": "b@x", "duration": True}, "duration"),
        ({"recipient": "b@x", "classification": "not a class"}, "classification"),
        ({"recipient": "b@x", "tenant": 5}, "tenant"),
        ([], "object"),
    ],
)
def test_add_refusals_name_the_field(body: object, field: str) -> None:
    with pytest.raises(RequestError, match=field):
        parse_add(body)


def test_list_filters() -> None:
    assert parse_list({}) == (ALL_TENANTS, None)
    assert parse_list({"tenant": ""}) == (None, None)
    assert parse_list({"tenant": "acme", "recipient": "b@x"}) == ("acme", "b@x")


def test_reply_and_normalized_keys() -> None:
    assert normalize(" <Bob@Example.COM> ") == "bob@example.com"
    entry = Entry(None, "bob@example.com", "550 5.1.1 user\r\n unknown " + "x" * 500,
                  "InvalidRecipient", "bounce", 0.0, 1.0)  # fmt: skip
    reply = entry.reply()
    assert (reply.code, reply.enhanced) == (550, "5.1.1")
    assert reply.text.startswith("recipient suppressed: 550 5.1.1 user unknown x")
    assert "\r" not in reply.text and "\n" not in reply.text and len(reply.text) < 240
    assert entry.expired(1.0) and not entry.expired(0.5)
