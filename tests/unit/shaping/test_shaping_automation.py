"""Automation rules: KumoMTA's shapes of regex, action, trigger and duration."""

from __future__ import annotations

import pytest

from shaping.automation import Action, RuleError, parse_rule
from shaping.spec import parse_throttle_spec


def test_full_rule() -> None:
    rule = parse_rule(
        {
            "regex": [r"4\.7\.28", "rate limited"],
            "action": [
                {"SetConfig": {"name": "max_message_rate", "value": "1/minute"}},
                {"SetDomainConfig": {"name": "connection_limit", "value": 1}},
                "SuspendTenant",
            ],
            "trigger": {"Threshold": "2/hr"},
            "duration": "90m",
            "match_internal": True,
        }
    )
    assert [p.pattern for p in rule.regex] == [r"4\.7\.28", "rate limited"]
    assert rule.actions == (
        Action("SetConfig", "max_message_rate", parse_throttle_spec("1/min")),
        Action("SetDomainConfig", "connection_limit", 1),
        Action("SuspendTenant"),
    )
    assert rule.threshold == parse_throttle_spec("2/h")
    assert rule.duration == 5400.0
    assert rule.matches("451 4.7.28 slow down", internal=True)


def test_defaults_and_single_values() -> None:
    rule = parse_rule({"regex": r"\[TSS?04\]", "action": "Suspend", "duration": "2 hours"})
    assert rule.threshold is None  # Immediate
    assert rule.actions == (Action("Suspend"),)
    assert rule.matches("421 4.7.0 [TSS04] Messages temporarily deferred")
    assert not rule.matches("250 ok")
    assert not rule.matches("[TS04] internal", internal=True)  # match_internal defaults off
    explicit = parse_rule(
        {"regex": "x", "action": "Bounce", "duration": 60, "trigger": "Immediate"}
    )
    assert explicit.threshold is None


def test_map_option_in_set_config() -> None:
    rule = parse_rule(
        {
            "regex": "x",
            "action": {
                "SetConfig": {
                    "name": "additional_message_rate_throttles",
                    "value": {"global": "10/s"},
                }
            },
            "duration": "1h",
        }
    )
    assert rule.actions[0].value == {"global": parse_throttle_spec("10/s")}


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({"action": "Suspend", "duration": "1h"}, "regex", "missing"),
        ({"regex": "x", "duration": "1h"}, "action", "missing"),
        ({"regex": "(", "action": "Suspend", "duration": "1h"}, "regex", "invalid regular"),
        ({"regex": [], "action": "Suspend", "duration": "1h"}, "regex", "non-empty list"),
        ({"regex": "x", "action": "Pause", "duration": "1h"}, "action", "unknown action 'Pause'"),
        ({"regex": "x", "action": "SetConfig", "duration": "1h"}, "action", "needs a table"),
        ({"regex": "x", "action": {"SetConfig": {"name": "nope", "value": 1}}, "duration": "1h"},
         "action", "unknown option 'nope'"),
        ({"regex": "x", "action": {"SetConfig": {"name": "enable_tls", "value": "Maybe"}},
          "duration": "1h"}, "action", "invalid value for enable_tls"),
        ({"regex": "x", "action": {"SetConfig": {"name": "max_ready"}}, "duration": "1h"},
         "action", "exactly the keys name and value"),
        ({"regex": "x", "action": "Suspend", "duration": "soon"}, "duration", "invalid duration"),
        ({"regex": "x", "action": "Suspend", "duration": 0}, "duration", "positive"),
        ({"regex": "x", "action": "Suspend", "duration": "1h", "trigger": "Later"}, "trigger",
         "Immediate"),
        ({"regex": "x", "action": "Suspend", "duration": "1h",
          "trigger": {"Threshold": "2/fortnight"}}, "trigger", "unknown period"),
        ({"regex": "x", "action": "Suspend", "duration": "1h", "extra": 1}, "extra", "unknown"),
        ({"regex": "x", "action": "Suspend", "duration": "1h", "match_internal": "yes"},
         "match_internal", "true or false"),
    ],
)  # fmt: skip
def test_bad_rules_name_the_key(table: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule(table)
    assert info.value.key == key
    assert message in str(info.value)
