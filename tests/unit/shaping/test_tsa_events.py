"""Automation events: JSON round trips and the websocket message envelope."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shaping.tsa.events import (
    AutomationEvent,
    ConfigOverride,
    EventFormatError,
    ReadyQueueSuspension,
    SchedQueueBounce,
    SchedQueueSuspension,
    event_to_message,
    format_expires,
    message_to_event,
    parse_expires,
)
from shaping.tsa.records import observe_record, tenant_and_campaign
from tests.support.tsa import record

COMMON: dict[str, Any] = {"rule_hash": "ab12", "reason": "rule: 421 4.7.28 slow", "expires": 1.7e9}
EVENTS: list[AutomationEvent] = [
    ReadyQueueSuspension(site_name="mx.example.com", source="ip-1", **COMMON),
    SchedQueueSuspension(domain="example.com", tenant="acme", campaign=None, **COMMON),
    SchedQueueBounce(domain="example.com", tenant="acme", campaign="c1", **COMMON),
    ConfigOverride(
        domain="example.com", site_name="mx.example.com", source=None, mx_rollup=False,
        option="additional_message_rate_throttles", value={"x": "1/s"}, **COMMON,
    ),
]  # fmt: skip


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.KIND)
def test_messages_round_trip(event: AutomationEvent) -> None:
    message = event_to_message(event)
    body = orjson.loads(message)[event.KIND]
    assert body["expires"] == "2023-11-14T22:13:20.000000Z"
    assert body["rule_hash"] == "ab12"
    assert message_to_event(message) == event
    assert message_to_event(message.encode()) == event
    assert type(event).from_json(event.to_json()) == event


def test_kumomta_field_names() -> None:
    ready, sched, bounce, _ = (e.to_json() for e in EVENTS)
    assert set(ready) == {"rule_hash", "site_name", "source", "reason", "expires"}
    assert set(sched) == set(bounce) == {
        "rule_hash", "domain", "tenant", "campaign", "reason", "expires",
    }  # fmt: skip


def test_unknown_kinds_are_skipped_and_bad_messages_refused() -> None:
    assert message_to_event('{"AdaptiveOverride": {"x": 1}}') is None
    for bad in ("not json", "[]", '{"a": 1, "b": 2}', '{"ReadyQSuspension": {"site_name": 1}}'):
        with pytest.raises(EventFormatError):
            message_to_event(bad)


def test_expires_spellings() -> None:
    assert parse_expires("2023-11-14T22:13:20Z") == 1.7e9
    assert parse_expires("2023-11-14T22:13:20.500+00:00") == 1.7e9 + 0.5
    assert parse_expires(12) == 12.0
    assert parse_expires(format_expires(1234.567)) == 1234.567
    with pytest.raises(EventFormatError):
        parse_expires("yesterday")


def test_record_fields() -> None:
    assert tenant_and_campaign({"queue": "c1:acme@example.com"}) == ("acme", "c1")
    assert tenant_and_campaign({"queue": "c1:@example.com"}) == (None, "c1")
    assert tenant_and_campaign({"queue": "example.com"}) == (None, None)
    assert tenant_and_campaign({"queue": "t@d.test", "meta": {"tenant": "m"}}) == ("m", None)
    seen = observe_record(record(recipient="<User@Example.COM>", site="relay:10.0.0.5:2525"))
    assert seen is not None
    assert (seen.domain, seen.mx_hosts, seen.site_name) == (
        "example.com",
        (),
        "relay:10.0.0.5:2525",
    )
    assert seen.response == "421 4.7.28 rate limited"
    no_enhanced = observe_record(record("busy\nlater", enhanced=None))
    assert no_enhanced is not None and no_enhanced.response == "421 busy later"
