"""Trace headers: KumoMTA's supplemental X-KumoRef header and the optional Received header."""

from __future__ import annotations

import base64
import email.policy
import json
from typing import Any

import pytest

from mta.inject.addresses import AddressChecker
from mta.inject.errors import InjectError
from mta.inject.generate import RequestPlan
from mta.inject.schema import parse_request
from mta.inject.templates import TemplateEngine


def make_plan(peer: str = "192.0.2.7", **fields: Any) -> RequestPlan:
    body = {
        "envelope_sender": "bounces@sender.example",
        "recipients": [{"email": "test@example.com"}],
        "content": {"text_body": "hi", "headers": {"X-Tenant": "acme"}},
        **fields,
    }
    return RequestPlan(
        parse_request(body),
        engine=TemplateEngine(),
        checker=AddressChecker(),
        hostname="mta.test",
        peer_address=peer,
        now=0.0,
    )


def kumo_ref(data: bytes, name: str = "X-KumoRef") -> dict[str, Any]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    decoded: dict[str, Any] = json.loads(base64.b64decode(str(message[name])))
    return decoded


def test_supplemental_header_is_on_by_default_and_matches_kumomta() -> None:
    data = make_plan().generate(0, "b-0").data
    # KumoMTA's documented example decodes to exactly this object, in this order.
    expected = b"X-KumoRef: eyJfQF8iOiJcXF8vIiwicmVjaXBpZW50IjoidGVzdEBleGFtcGxlLmNvbSJ9\r\n"
    assert data.startswith(expected)
    assert kumo_ref(data) == {"_@_": "\\_/", "recipient": "test@example.com"}


def test_included_meta_names_come_from_metadata_then_message_meta() -> None:
    plan = make_plan(
        recipients=[
            {"email": "test@example.com", "metadata": {"campaign_id": "q2", "segment": {"a": 1}}}
        ],
        trace_headers={
            "header_name": "X-Ref",
            "include_meta_names": [
                "campaign_id",
                "segment",
                "tenant",
                "campaign",
                "received_from",
                "missing",
            ],
        },
    )
    data = plan.generate(0, "b-0").data
    assert kumo_ref(data, "X-Ref") == {
        "_@_": "\\_/",
        "recipient": "test@example.com",
        "campaign_id": "q2",
        "segment": {"a": 1},
        "tenant": "acme",
        "received_from": "192.0.2.7",
    }


def test_supplemental_header_can_be_turned_off() -> None:
    data = make_plan(trace_headers={"supplemental_header": False}).generate(0, "b-0").data
    assert b"X-KumoRef" not in data


def test_received_header_names_the_http_peer() -> None:
    plan = make_plan(peer="2001:db8::1", trace_headers={"received_header": True})
    data = plan.generate(0, "b-0").data
    message = email.message_from_bytes(data, policy=email.policy.default)
    received = " ".join(str(message["Received"]).split())  # unfolded
    assert received == (
        "from sender.example ([IPv6:2001:db8::1]) by mta.test (mta) with HTTP id b-0"
        " for <test@example.com>; Thu, 01 Jan 1970 00:00:00 +0000"
    )
    assert list(message.keys())[:2] == ["X-KumoRef", "Received"]


def test_received_header_with_an_unparsable_peer() -> None:
    data = (
        make_plan(peer="not an ip\r\nX: y", trace_headers={"received_header": True})
        .generate(0, "b-0")
        .data
    )
    assert b"(unknown)" in data
    assert b"X: y" not in data


def test_no_received_header_by_default() -> None:
    assert b"Received:" not in make_plan().generate(0, "b-0").data


@pytest.mark.parametrize("name", ["X Bad", "X-Ref\r\nBcc", ""])
def test_bad_header_name_refuses_the_request(name: str) -> None:
    with pytest.raises(InjectError) as info:
        make_plan(trace_headers={"header_name": name})
    assert info.value.status == 400
    assert info.value.message.startswith("trace_headers.header_name: ")
