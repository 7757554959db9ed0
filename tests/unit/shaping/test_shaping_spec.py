"""Throttle spec and duration parsing: KumoMTA's spellings, burst option, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shaping.durations import format_duration, parse_duration
from shaping.spec import ThrottleSpec, parse_count, parse_throttle_spec


@pytest.mark.parametrize(
    ("text", "limit", "period", "burst"),
    [
        ("100/s", 100, 1, 100),
        ("10/sec", 10, 1, 10),
        ("10/second", 10, 1, 10),
        ("50/m", 50, 60, 50),
        ("10/min", 10, 60, 10),
        ("50/minute", 50, 60, 50),
        ("1,000/hr", 1000, 3600, 1000),
        ("1_000/h", 1000, 3600, 1000),
        ("1000/hour", 1000, 3600, 1000),
        ("5/d", 5, 86400, 5),
        ("10_000/day", 10000, 86400, 10000),
        ("1_000/h,max_burst=50", 1000, 3600, 50),
        ("1,000/h,max_burst=1,500", 1000, 3600, 1500),
        (" 20 / MIN ", 20, 60, 20),
    ],
)
def test_valid_specs(text: str, limit: int, period: int, burst: int) -> None:
    assert parse_throttle_spec(text) == ThrottleSpec(limit, period, burst)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("100", 'expected "limit/period"'),
        ("100/our", "unknown period 'our'"),
        ("three/hour", "invalid limit 'three'"),
        ("0/s", "limit must be at least 1"),
        ("-5/s", "invalid limit '-5'"),
        ("1,,000/h", "invalid limit '1,,000'"),
        ("10/s,burst=5", "unknown option 'burst=5'"),
        ("10/s,max_burst=0", "max_burst must be at least 1"),
        ("10/s,max_burst=x", "invalid max_burst 'x'"),
        ("10/week", "unknown period 'week'"),
    ],
)
def test_invalid_specs_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_throttle_spec(text)
    assert str(info.value).startswith(f"invalid throttle spec {text!r}: ")
    assert message in str(info.value)


def test_non_string_spec_is_rejected() -> None:
    with pytest.raises(ValueError, match="got int"):
        parse_throttle_spec(100)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (ThrottleSpec(100, 1, 100), "100/s"),
        (ThrottleSpec(10, 60, 10), "10/m"),
        (ThrottleSpec(1000, 3600, 50), "1000/h,max_burst=50"),
        (ThrottleSpec(5, 86400, 5), "5/d"),
    ],
)
def test_str_is_canonical(spec: ThrottleSpec, text: str) -> None:
    assert str(spec) == text


@settings(max_examples=50)
@given(
    limit=st.integers(1, 10**9),
    period=st.sampled_from([1, 60, 3600, 86400]),
    burst=st.integers(1, 10**9),
)
def test_str_round_trips(limit: int, period: int, burst: int) -> None:
    spec = ThrottleSpec(limit, period, burst)
    assert parse_throttle_spec(str(spec)) == spec


def test_spec_derived_values() -> None:
    spec = parse_throttle_spec("120/min,max_burst=10")
    assert spec.interval == 0.5
    assert spec.rate_per_second == 2.0
    assert spec.key_suffix() == "120:10:60"


def test_spec_rejects_odd_periods() -> None:
    with pytest.raises(ValueError, match="period"):
        ThrottleSpec(10, 7, 10)


@pytest.mark.parametrize(("text", "value"), [("7", 7), ("1_000", 1000), ("1,000,000", 10**6)])
def test_counts(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (2.5, 2.5),
        ("60s", 60.0),
        ("90m", 5400.0),
        ("1h30m", 5400.0),
        ("2 hours", 7200.0),
        ("30 days", 2592000.0),
        ("1 hour", 3600.0),
        ("500ms", 0.5),
        ("1w", 604800.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "10 parsecs", "m5", "5m junk", -1, True, None, "1h-5m"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


@settings(max_examples=50)
@given(st.integers(0, 10**7) | st.floats(0.001, 10**6, allow_nan=False))
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=0.001)
