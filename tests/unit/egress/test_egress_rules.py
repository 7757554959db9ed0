"""The node's shaping layers: built-in file, [delivery], [shaping] files, overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mta.config import Config, ConfigError, config_from_mapping
from mta.egress.rules import NodeRules, build_rules


def node_config(tmp_path: Path, text: str, **delivery: object) -> tuple[Path, Config]:
    path = tmp_path / "shaping.toml"
    path.write_text(text)
    raw = {"shaping": {"files": [str(path)]}, "delivery": delivery}
    return path, config_from_mapping(raw)


def test_delivery_settings_are_the_default_layer_and_files_override_them(tmp_path: Path) -> None:
    _, config = node_config(
        tmp_path, '["big.example"]\nconnection_limit = 40\n', connection_limit=7, smtp_port=2525
    )
    rules = build_rules(config)

    plain = rules.resolve("plain.example", mx_hosts=["mx.plain.example"])
    assert plain.config.connection_limit == 7
    assert str(plain.origin("connection_limit")) == "mta.toml [delivery]"
    assert plain.config.smtp_port == 2525
    assert plain.config.max_message_rate is None  # the built-in file sets no rate by default

    big = rules.resolve("big.example", mx_hosts=["mx.big.example"])
    assert big.config.connection_limit == 40
    assert str(big.origin("connection_limit")).endswith('shaping.toml ["big.example"]')


def test_a_bad_file_at_start_is_a_config_error_naming_file_table_and_key(tmp_path: Path) -> None:
    _, config = node_config(tmp_path, '["x.example"]\nconnection_limit = "many"\n')
    with pytest.raises(ConfigError) as error:
        build_rules(config)
    assert "shaping.toml" in str(error.value)
    assert '["x.example"]' in str(error.value)
    assert "connection_limit" in str(error.value)


def test_changed_files_are_reloaded_and_a_bad_one_keeps_the_last_good(tmp_path: Path) -> None:
    path, config = node_config(tmp_path, '["x.example"]\nconnection_limit = 3\n')
    rules = NodeRules(config)
    assert not rules.check_files()

    path.write_text('["x.example"]\nconnection_limit = 4\n')
    os.utime(path, (1, 1))  # a different stamp even within the same clock tick
    assert rules.check_files()
    assert rules.live.resolve("x.example").config.connection_limit == 4

    path.write_text('["x.example"]\nconnection_limit = -1\n')
    assert rules.check_files()
    assert rules.live.resolve("x.example").config.connection_limit == 4
    assert rules.live.last_error is not None


def test_overrides_layer_over_the_files_and_go_away(tmp_path: Path) -> None:
    _, config = node_config(tmp_path, '["x.example"]\nmax_message_rate = "100/s"\n')
    rules = NodeRules(config)

    rules.set_overrides('["x.example"]\nmax_message_rate = "1/m"\n')
    resolved = rules.live.resolve("x.example")
    assert str(resolved.config.max_message_rate) == "1/m"
    assert resolved.origin("max_message_rate").file == "automation overrides"  # type: ignore[union-attr]

    rules.set_overrides("not = [valid toml")
    assert str(rules.live.resolve("x.example").config.max_message_rate) == "1/m"

    rules.set_overrides("")
    assert str(rules.live.resolve("x.example").config.max_message_rate) == "100/s"
