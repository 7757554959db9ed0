"""`[dkim."<domain>"]` tables: the key forms, the defaults, and errors with the key's path."""

import re
import tomllib
from pathlib import Path

import pytest

from mta.config import DKIM_DEFAULT_HEADERS, ConfigError, DkimKeyConfig, config_from_mapping


def load(text: str):
    return config_from_mapping(tomllib.loads(text))


def test_one_key_and_defaults() -> None:
    config = load(
        """
        [dkim."example.com"]
        selector = "s1"
        key_file = "/etc/mta/dkim/example.com/s1.key"
        """
    )

    table = config.dkim["example.com"]
    assert table.signing_keys() == (DkimKeyConfig("s1", Path("/etc/mta/dkim/example.com/s1.key")),)
    assert table.algorithm == "rsa-sha256"
    assert table.canonicalization == "relaxed/relaxed"
    assert (table.over_sign, table.required) == (False, False)
    assert table.headers == DKIM_DEFAULT_HEADERS
    assert {"From", "To", "Subject", "Date", "Message-ID"} <= set(table.headers)


def test_more_keys_side_by_side() -> None:
    config = load(
        """
        [dkim."example.com"]
        selector = "rsa2026"
        key_file = "/k/rsa2026.key"
        headers = ["From", "Subject"]
        over_sign = true
        required = true

        [[dkim."example.com".keys]]
        selector = "ed2026"
        key_file = "/k/ed2026.key"
        algorithm = "ed25519-sha256"

        [dkim."other.test"]
        keys = [{selector = "a", key_file = "/k/a.key"}, {selector = "b", key_file = "/k/b.key"}]
        """
    )

    example = config.dkim["example.com"]
    assert [(k.selector, k.algorithm) for k in example.signing_keys()] == [
        ("rsa2026", "rsa-sha256"),
        ("ed2026", "ed25519-sha256"),
    ]
    assert (example.headers, example.over_sign, example.required) == (
        ("From", "Subject"),
        True,
        True,
    )
    assert [k.selector for k in config.dkim["other.test"].signing_keys()] == ["a", "b"]


def test_no_dkim_by_default() -> None:
    assert dict(load("").dkim) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[dkim."a..b"]\nselector = "s"\nkey_file = "/k"', "dkim.\"a..b\": 'a..b' is not a domain"),
        ('[dkim."e.com"]\nover_sign = true', 'dkim."e.com": needs selector and key_file'),
        ('[dkim."e.com"]\nselector = "s1"', 'dkim."e.com": selector and key_file are both'),
        (
            '[dkim."e.com"]\nselector = "s"\nkey_file = "/k"\n'
            '[[dkim."e.com".keys]]\nselector = "t"',
            'dkim."e.com".keys[0]: selector and key_file are both required',
        ),
        (
            '[dkim."e.com"]\nkeys = [{selector="s", key_file="/a"}, {selector="s", key_file="/b"}]',
            "dkim.\"e.com\".keys[1].selector: 's' is listed twice",
        ),
        (
            '[dkim."e.com"]\nselector = "s"\nkey_file = "/k"\nheaders = ["To"]',
            'dkim."e.com".headers: must include From',
        ),
        (
            '[dkim."e.com"]\nselector = "s"\nkey_file = "/k"\nalgorithm = "rsa-sha1"',
            "dkim.e.com.algorithm: 'rsa-sha1' is not one of",
        ),
        (
            '[dkim."e.com"]\nselector = "s"\nkey_file = "/k"\nsign = true',
            "dkim.e.com.sign: unknown key",
        ),
    ],
)
def test_errors_name_the_key(text, message) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load(text)
