"""Snapshots of the automation engine: round trip, expiry on restore, counters kept."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shaping.tsa.events import EventFormatError
from shaping.tsa.state import AutomationState
from tests.support.tsa import FakeClock, record, rules_from

RULES = rules_from(
    """
["default"]
[["default".automation]]
regex = "4\\\\.7\\\\.28"
action = ["Suspend", "SuspendTenant", "BounceCampaign",
          {SetConfig = {name = "max_message_rate", value = "1/m"}}]
duration = "1h"

[["default".automation]]
regex = "too many"
action = "Suspend"
trigger = {Threshold = "3/h"}
duration = "10m"
"""
)


def too_many(timestamp: float = 1000.0) -> dict[str, Any]:
    return record("too many", enhanced=(4, 7, 1), timestamp=timestamp)


def test_snapshot_round_trip_through_json() -> None:
    clock = FakeClock(1000.123)
    state = AutomationState(lambda: RULES, clock)
    made = state.observe(record(queue="c1:acme@example.com", source="ip-1", timestamp=1000.123))
    assert len(made) == 4
    state.observe(too_many(timestamp=1000.5))
    text = orjson.dumps(state.to_snapshot())
    restored = AutomationState.from_snapshot(orjson.loads(text), lambda: RULES, clock)
    assert restored.active() == state.active()
    assert restored.records_seen == 2
    assert restored.shaping_toml() == state.shaping_toml()


def test_threshold_counters_survive_a_restore() -> None:
    clock = FakeClock(1000.0)
    state = AutomationState(lambda: RULES, clock)
    assert state.observe(too_many()) == []
    assert state.observe(too_many()) == []
    restored = AutomationState.from_snapshot(state.to_snapshot(), lambda: RULES, clock)
    assert len(restored.observe(too_many())) == 1


def test_restore_drops_what_expired_meanwhile() -> None:
    clock = FakeClock(1000.0)
    state = AutomationState(lambda: RULES, clock)
    state.observe(record(queue="acme@example.com"))
    state.observe(too_many())
    snapshot = state.to_snapshot()
    clock.now = 1000.0 + 3600
    restored = AutomationState.from_snapshot(snapshot, lambda: RULES, clock)
    assert restored.active() == []
    clock.now = 1000.0 + 3599
    assert len(AutomationState.from_snapshot(snapshot, lambda: RULES, clock).active()) == 3


def test_unreadable_snapshots_are_refused() -> None:
    with pytest.raises(EventFormatError, match="version"):
        AutomationState.from_snapshot({"version": 99}, lambda: RULES)
    with pytest.raises(EventFormatError, match="events"):
        AutomationState.from_snapshot({"version": 1, "events": {}}, lambda: RULES)
    with pytest.raises(EventFormatError, match="unknown event kind"):
        AutomationState.from_snapshot(
            {"version": 1, "events": [{"kind": "Nope", "event": {}}]}, lambda: RULES
        )
