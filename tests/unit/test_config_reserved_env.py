"""The `MTA_*` variables the commands read for themselves are not config overrides."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mta import cli_common
from mta.config import RESERVED_ENV, Config, ConfigError, is_config_env, load_config

MTA_PACKAGE = Path(__file__).resolve().parents[2] / "mta"
# A variable name in the source that is not a `MTA_SECTION__KEY` override.
_OWN_NAME = re.compile(r"\bMTA_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")

RESERVED = {
    "MTA_CONFIG": "/nowhere/mta.toml",
    "MTA_ENDPOINT": "http://127.0.0.1:8000",
    "MTA_PASSWORD": "secret",
    "MTA_LOG_LEVEL": "DEBUG",
    "MTA_TSA_CONFIG": "/nowhere/tsa.toml",
    "MTA_TEST_CL_THROTTLE_REDIS": "1",
    "MTA_TEST_ANYTHING": "x",
}


def test_reserved_names_load_with_the_defaults() -> None:
    config = load_config(None, environ=RESERVED)
    assert config == load_config(None, environ={})


def test_reserved_names_next_to_real_overrides() -> None:
    environ = {**RESERVED, "MTA_SMTP__MAX_RECIPIENTS": "7", "MTA_NODE__NAME": "mta-3"}
    config = load_config(None, environ=environ)
    assert (config.smtp.max_recipients, config.node.name) == (7, "mta-3")


@pytest.mark.parametrize("name", ["MTA_FOO", "MTA_PASSWORDS", "MTA_TEST"])
def test_an_unknown_variable_still_fails_naming_the_key(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name[4:].lower()}: unknown key$"):
        load_config(None, environ={**RESERVED, name: "x"})


def test_an_unknown_nested_key_still_fails() -> None:
    with pytest.raises(ConfigError, match=r"^smtp\.password: unknown key$"):
        load_config(None, environ={"MTA_SMTP__PASSWORD": "x"})


def test_the_cli_names_are_the_reserved_ones() -> None:
    assert {cli_common.ENV_ENDPOINT, cli_common.ENV_PASSWORD} <= RESERVED_ENV


def test_every_variable_the_code_reads_is_reserved() -> None:
    """A new `MTA_*` name read in mta/ that is no override must be added to RESERVED_ENV."""
    top_level = {f"MTA_{field.name.upper()}" for field in dataclasses.fields(Config)}
    found: set[str] = set()
    for path in MTA_PACKAGE.rglob("*.py"):
        names = _OWN_NAME.findall(path.read_text())
        found.update(name for name in names if "__" not in name and name not in top_level)
    assert "MTA_PASSWORD" in found and "MTA_LOG_LEVEL" in found  # the scan sees them
    assert sorted(name for name in found if is_config_env(name)) == []
