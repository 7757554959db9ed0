"""mta.preflight: every file key of the config is checked, or says why the node skips it."""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from mta.config import Config, config_from_mapping
from mta.preflight import CHECKED_KEYS, UNCHECKED_KEYS, check_startup_files, startup_files


def path_keys(cls: type[Any], prefix: str = "") -> Iterator[str]:
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        yield from _keys(hints[field.name], f"{prefix}.{field.name}" if prefix else field.name)


def _keys(hint: Any, key: str) -> Iterator[str]:
    origin = get_origin(hint)
    if hint is Path:
        yield key
    elif isinstance(hint, type) and dataclasses.is_dataclass(hint):
        yield from path_keys(hint, key)
    elif origin is tuple:
        yield from _keys(get_args(hint)[0], f"{key}[]")
    elif origin in (dict, Mapping):
        yield from _keys(get_args(hint)[1], f"{key}.*")
    elif origin in (Union, types.UnionType):
        for arg in get_args(hint):
            yield from _keys(arg, key)


def pattern(key: str) -> str:
    """'dkim."a.example".keys[0].key_file' -> 'dkim.*.keys[].key_file'."""
    return re.sub(r"\[\d+\]", "[]", re.sub(r'"[^"]*"', "*", key))


def test_every_path_key_is_checked_or_explained() -> None:
    keys = set(path_keys(Config))
    assert "dkim.*.keys[].key_file" in keys and "spool.path" in keys  # the walk sees them
    assert not CHECKED_KEYS & set(UNCHECKED_KEYS)
    assert keys == CHECKED_KEYS | set(UNCHECKED_KEYS)


def every_file_config(tmp_path: Path) -> Config:
    """A config naming a (missing) file for each checked key."""

    def missing(name: str) -> str:
        return str(tmp_path / name)

    return config_from_mapping(
        {
            "dkim": {
                "example.com": {
                    "selector": "s1",
                    "key_file": missing("s1.key"),
                    "keys": [{"selector": "s2", "key_file": missing("s2.key")}],
                }
            },
            "bounce": {"rules_files": [missing("bounce.toml")]},
            "shaping": {"files": [missing("shaping.toml")]},
            "smtp": {
                "tls_cert_file": missing("tls.crt"),
                "tls_key_file": missing("tls.key"),
                "auth_users_file": missing("smtp-users"),
                "auth_users_dir": missing("smtp-users.d"),
                "sender_policy_file": missing("senders"),
            },
            "http": {
                "users_file": missing("http-users"),
                "users_dir": missing("http-users.d"),
                "tokens_file": missing("tokens"),
            },
            "webhooks": [{"url": "http://127.0.0.1:9/", "secret_file": missing("hook")}],
            "node": {
                "drain_to": "http://127.0.0.1:9",
                "drain_user": "u",
                "drain_password_file": missing("drain-password"),
            },
            "redis": {"url": "redis://127.0.0.1:9", "password_file": missing("redis-password")},
            "tsa": {"subscribe": "http://127.0.0.1:9", "token_file": missing("tsa-token")},
        }
    )


def test_each_checked_key_has_a_loader_and_a_problem(tmp_path: Path) -> None:
    config = every_file_config(tmp_path)
    items = startup_files(config)
    # drain_token_file goes with drain_user's absence: the other drain credential
    token = dataclasses.replace(config.node, drain_user=None, drain_password_file=None)
    token = dataclasses.replace(token, drain_token_file=tmp_path / "drain-token")
    items += startup_files(dataclasses.replace(config, node=token))
    covered = {pattern(item.key) for item in items} | {"smtp.tls_key_file"}  # one TLS pair
    assert covered == CHECKED_KEYS
    problems = check_startup_files(config)
    assert len(problems) == len({item.path for item in startup_files(config)})
    for problem, item in zip(problems, startup_files(config), strict=True):
        assert problem.startswith(f"{item.path}"), problem


def test_no_files_no_problems() -> None:
    assert startup_files(Config()) == []
    assert check_startup_files(Config()) == []


def test_a_good_file_is_no_problem(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice:secret\n")
    tokens = tmp_path / "tokens"
    tokens.write_text("ci:abc\n")
    config = config_from_mapping({"http": {"users_file": str(users), "tokens_file": str(tokens)}})
    assert [item.key for item in startup_files(config)] == ["http.users_file", "http.tokens_file"]
    assert check_startup_files(config) == []


def test_layered_files_are_checked_alone_and_together(tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text("[rules]\nBadDomain = ['nowhere']\n")
    second.write_text("[rules]\nBadDomain = ['(']\n")
    config = config_from_mapping({"bounce": {"rules_files": [str(first), str(second)]}})
    keys = [item.key for item in startup_files(config)]
    assert keys == ["bounce.rules_files[0]", "bounce.rules_files[1]", "bounce.rules_files"]
    [problem] = check_startup_files(config)  # the bad one once, not again for the layers
    assert problem.startswith(f"{second}: ")
