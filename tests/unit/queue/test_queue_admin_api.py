"""The admin wire format: request checks (KumoMTA's fields and defaults) and answer formats."""

from __future__ import annotations

import calendar

import pytest

from mta.queue import admin_api as api
from mta.queue.rules import AdminRule, Matcher

NOW = 1_700_000_000.0


def test_defaults_are_kumomta_s() -> None:
    request = api.parse_bounce({"reason": "r"}, NOW)
    assert request.matcher == Matcher() and request.matcher.matches_everything
    assert request.expires == NOW + 300  # "5m"
    assert request.suppress_logging is False


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("20m", 1200), ("1h 30m", 5400), (" 2H ", 7200), ("500ms", 0.5), (90, 90), (1.5, 1.5)],
)
def test_durations(duration: object, seconds: float) -> None:
    request = api.parse_suspend({"reason": "r", "duration": duration}, NOW)
    assert request.expires == pytest.approx(NOW + seconds)


@pytest.mark.parametrize(
    ("expires", "when"),
    [
        ("2030-01-31T12:00:00Z", calendar.timegm((2030, 1, 31, 12, 0, 0))),
        ("2030-01-31t12:00:00.25z", calendar.timegm((2030, 1, 31, 12, 0, 0)) + 0.25),
        ("2030-01-31T12:00:00+02:00", calendar.timegm((2030, 1, 31, 10, 0, 0))),
        ("2030-01-31T12:00:00-00:30", calendar.timegm((2030, 1, 31, 12, 30, 0))),
        ("0001-01-01T00:00:00Z", calendar.timegm((1, 1, 1, 0, 0, 0))),  # past: ends at once
        ("2028-02-29T00:00:00Z", calendar.timegm((2028, 2, 29, 0, 0, 0))),  # a leap year
    ],
)
def test_expires_is_rfc3339_and_wins_over_duration(expires: str, when: float) -> None:
    body = {"reason": "r", "duration": "1s", "expires": expires}
    assert api.parse_bounce(body, NOW).expires == when


def test_rules_are_cut_to_ten_years() -> None:
    too_long = ("99999999999w", "9" * 400 + "d", 10**30)
    bodies = [{"duration": duration} for duration in too_long]
    for body in (*bodies, {"expires": "9999-12-31T23:59:59-23:59"}):
        assert api.parse_suspend({"reason": "r", **body}, NOW).expires == NOW + api.MAX_RULE_SECONDS


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "reason: required"),
        ({"reason": "r", "duration": "5 minutes"}, "duration: '5 minutes' is not a duration"),
        ({"reason": "r", "duration": -1}, "duration: duration must not be negative"),
        ({"reason": "r", "expires": "2030-01-31 12:00"}, "expires: expected an RFC 3339 time"),
        ({"reason": "r", "expires": "2030-13-01T00:00:00Z"}, "expires: expected an RFC 3339"),
        ({"reason": "r", "expires": "2030-01-01T00:00:00+24:00"}, "expires: expected"),
        ({"reason": "r", "expires": "2030-01-01T00:00:00"}, "expires: expected"),  # no offset
        ({"reason": "r", "expires": "2030-01-01 00:00:00Z"}, "expires: expected"),
        ({"reason": "r", "expires": "2016-12-31T23:59:60Z"}, "expires: expected"),  # leap second
        ({"reason": "r", "expires": "2030-02-29T00:00:00Z"}, "expires: '2030-02-29T00:00:00Z' is"),
        ({"reason": "r", "duration": "x", "expires": "2030-01-01T00:00:00Z"}, "duration: "),
        ({"reason": "r", "queue_names": ["a", 1]}, "queue_names: expected an array of strings"),
        ({"reason": "r", "campaign": {}}, "campaign: expected a string"),
        ({"reason": "r", "reason2": "x"}, "reason2: unknown field"),
    ],
)
def test_refusals_name_the_field(body: dict[str, object], message: str) -> None:
    with pytest.raises(api.RequestError) as raised:
        api.parse_bounce(body, NOW)
    assert str(raised.value).startswith(message)


def test_ready_queue_and_cancel_requests() -> None:
    request = api.parse_suspend_ready({"name": "mx.example.com", "reason": "r", "x": 1}, NOW)
    assert (request.name, request.reason, request.expires) == ("mx.example.com", "r", NOW + 300)
    with pytest.raises(api.RequestError, match=r"^name: required"):
        api.parse_suspend_ready({"reason": "r"}, NOW)
    rule_id = "0B3F0C2E-4A4C-4B8E-9A51-2F6F1D6A9C11"
    assert api.parse_cancel({"id": rule_id}) == rule_id.lower()
    for body in ({"id": rule_id.replace("-", "")}, {"id": None}, {}):
        with pytest.raises(api.RequestError, match=r"^id: "):
            api.parse_cancel(body)
    with pytest.raises(api.RequestError, match=r"^request body: expected a JSON object"):
        api.parse_cancel(["id"])


def test_query_parameters() -> None:
    assert api.parse_bool({"want_body": "true"}, "want_body") is True
    assert api.parse_bool({}, "want_body") is False
    assert api.parse_limit({"limit": "10"}) == 10 and api.parse_limit({}) is None
    assert api.parse_limit({"limit": "9" * 5000}) is None  # more than anything: no limit
    for bad in ("-1", "1.5", "١٢"):  # the last: Arabic-Indic digits are not a number here
        with pytest.raises(api.RequestError, match=r"^limit: "):
            api.parse_limit({"limit": bad})
    with pytest.raises(api.RequestError, match=r"^want_body: "):
        api.parse_bool({"want_body": "1"}, "want_body")


def test_humantime_durations_and_rfc3339_times() -> None:
    assert api.format_duration(0) == "0s"
    assert api.format_duration(299.998) == "4m 59s 998ms"
    assert api.format_duration(90061) == "1d 1h 1m 1s"
    assert api.rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert api.rfc3339(1.5) == "1970-01-01T00:00:01.500Z"


def test_list_entries() -> None:
    matcher = Matcher(domain="example.com", queue_names=("b", "a"))
    rule = AdminRule("id-1", "why", created=NOW, expires=NOW + 60, matcher=matcher)
    rule.bounced["example.com"] = 3
    assert api.bounce_entry(rule, NOW + 30) == {
        "id": "id-1",
        "campaign": None,
        "tenant": None,
        "domain": "example.com",
        "routing_domain": None,
        "queue_names": ["a", "b"],
        "reason": "why",
        "duration": "30s",
        "bounced": {"example.com": 3},
        "total_bounced": 3,
    }
    assert api.rule_created(rule, with_counts=True)["total_bounced"] == 3
    assert api.rule_created(rule) == {"id": "id-1"}
    assert set(api.suspend_entry(rule, NOW)) == {
        "id", "campaign", "tenant", "domain", "routing_domain", "queue_names", "reason",
        "duration",
    }  # fmt: skip
    ready = AdminRule("id-2", "why", created=NOW, expires=0.0, name="site")
    assert api.ready_entry(ready, NOW) == {
        "id": "id-2",
        "name": "site",
        "reason": "why",
        "duration": "0s",
        "expires": "1970-01-01T00:00:00.000Z",
    }
