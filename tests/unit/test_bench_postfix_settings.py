"""`benchmarks/run.py --postfix-set NAME=VALUE`: main.cf overrides for the peer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from mtabench.postfix import main_cf, parse_setting


def test_override_comes_after_the_stock_settings() -> None:
    text = main_cf(Path("/x"), "127.0.0.1:2600", [parse_setting("in_flow_delay = 0")])

    lines = text.splitlines()
    assert lines[-1] == "in_flow_delay = 0"
    assert "relayhost = [127.0.0.1]:2600" in lines
    assert not any(line.startswith("in_flow_delay") for line in lines[:-1])


def test_no_override_leaves_the_stock_config() -> None:
    assert "in_flow_delay" not in main_cf(Path("/x"), "127.0.0.1:2600")


@pytest.mark.parametrize("bad", ["in_flow_delay", "bad name=1", "=0", "Upper=1", "a=1\nb=2"])
def test_bad_settings_are_usage_errors(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=VALUE"):
        parse_setting(bad)
