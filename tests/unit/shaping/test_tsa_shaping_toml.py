"""Overrides rendered as shaping.toml, merged after a node's files, and resolved."""

from __future__ import annotations

import tomllib

from shaping.loader import read_text
from shaping.rules import Rules
from shaping.spec import parse_throttle_spec
from shaping.tsa.events import ConfigOverride
from shaping.tsa.render import render_overrides
from shaping.tsa.state import AutomationState
from tests.support.tsa import SITE, FakeClock, record

NODE_TOML = """
["default"]
max_message_rate = "100/s"
connection_limit = 10

["example.com"]
connect_timeout = "30s"

[["default".automation]]
regex = "4\\\\.7\\\\.28"
action = [
    {SetConfig = {name = "max_message_rate", value = "1/minute"}},
    {SetConfig = {name = "additional_message_rate_throttles", value = {slow = "5/h"}}},
    {SetDomainConfig = {name = "connection_limit", value = 1}},
]
duration = "90m"
"""


def node_rules() -> Rules:
    return Rules.load([read_text("node.toml", NODE_TOML)])


def test_overrides_round_trip_through_the_shaping_loader() -> None:
    state = AutomationState(node_rules, FakeClock())
    assert len(state.observe(record(source="ip-1"))) == 3
    text = state.shaping_toml()
    assert "# reason: automation rule node.toml" in text
    assert "# expires: 1970-01-01T01:46:40.000000Z" in text
    merged = Rules.load([read_text("node.toml", NODE_TOML), read_text("tsa", text)])
    resolved = merged.resolve("example.com", mx_hosts=SITE.split("|"), source="ip-1")
    assert resolved.config.max_message_rate == parse_throttle_spec("1/m")
    assert resolved.config.connection_limit == 1
    assert resolved.config.additional_message_rate_throttles["slow"] == parse_throttle_spec("5/h")
    assert resolved.config.connect_timeout == 30.0  # the node's own value stays
    origin = resolved.origin("max_message_rate")
    assert origin is not None and origin.file == "tsa"
    assert origin.table == '["example.com".sources."ip-1"]'
    # Without the source, the source-specific overrides do not apply.
    plain = merged.resolve("example.com", mx_hosts=SITE.split("|"))
    assert plain.config.max_message_rate == parse_throttle_spec("100/s")


def test_overrides_without_a_source_go_in_the_domain_table() -> None:
    state = AutomationState(node_rules, FakeClock())
    state.observe(record())
    document = tomllib.loads(state.shaping_toml())
    assert document["example.com"]["mx_rollup"] is True
    assert document["example.com"]["max_message_rate"] == "1/m"
    # SetDomainConfig for a domain that also has site-wide overrides: a second table.
    assert document["example.com."]["mx_rollup"] is False
    assert document["example.com."]["connection_limit"] == 1
    merged = Rules.load([read_text("node.toml", NODE_TOML), read_text("tsa", state.shaping_toml())])
    resolved = merged.resolve("example.com", mx_hosts=SITE.split("|"), source="ip-7")
    assert resolved.config.connection_limit == 1
    assert resolved.config.max_message_rate == parse_throttle_spec("1/m")
    assert str(resolved.origin("max_message_rate")) == 'tsa ["example.com"]'


def test_the_latest_expiry_wins_and_expired_overrides_are_left_out() -> None:
    def override(value: str, expires: float) -> ConfigOverride:
        return ConfigOverride(
            rule_hash="h", reason="r", expires=expires, domain="d.test", site_name="mx.d.test",
            source=None, mx_rollup=True, option="max_message_rate", value=value,
        )  # fmt: skip

    text = render_overrides([override("2/s", 2000.0), override("1/s", 1500.0)])
    assert tomllib.loads(text)["d.test"]["max_message_rate"] == "2/s"
    clock = FakeClock(1000.0)
    state = AutomationState(node_rules, clock)
    state.add(override("2/s", 2000.0))
    clock.now = 2000.0
    assert tomllib.loads(state.shaping_toml()) == {}
    assert "# Number of entries: 0" in state.shaping_toml()
