"""What `mta check-config` finds in a file, the node refuses at start too (and names the file):
check-config is neither stricter nor looser than the node for each file it loads."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mta.app import Node
from mta.config import config_from_mapping
from mta.preflight import check_startup_files
from tests.support.node import node_settings

# name -> (the file's content, None: no file; the config sections naming it as "{file}")
CASES: dict[str, tuple[str | None, dict[str, Any]]] = {
    "dkim key missing": (None, {"dkim": {"example.com": {"selector": "s", "key_file": "{file}"}}}),
    "dkim not a key": (
        "nope\n",
        {"dkim": {"example.com": {"selector": "s", "key_file": "{file}"}}},
    ),
    "bounce rules": ("[rules]\nBadDomain = ['(']\n", {"bounce": {"rules_files": ["{file}"]}}),
    "shaping file": ('["default"]\nnope = 1\n', {"shaping": {"files": ["{file}"]}}),
    "tls pair": ("x\n", {"smtp": {"tls_cert_file": "{file}", "tls_key_file": "{file}"}}),
    "smtp users": ("no colon\n", {"smtp": {"auth_users_file": "{file}"}}),
    "sender policy": ("no colon\n", {"smtp": {"sender_policy_file": "{file}"}}),
    "http users": ("no colon\n", {"http": {"users_file": "{file}"}}),
    "http tokens": (None, {"http": {"tokens_file": "{file}"}}),
    "webhook secret": ("", {"webhooks": [{"url": "http://127.0.0.1:9/", "secret_file": "{file}"}]}),
    "drain token": ("", {"node": {"drain_to": "http://127.0.0.1:9", "drain_token_file": "{file}"}}),
    "redis password": (None, {"redis": {"url": "redis://127.0.0.1:9", "password_file": "{file}"}}),
}


def _fill(value: Any, file: str) -> Any:
    if isinstance(value, dict):
        return {key: _fill(item, file) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, file) for item in value]
    return file if value == "{file}" else value


def settings_for(tmp_path: Path, name: str) -> tuple[dict[str, Any], Path]:
    content, sections = CASES[name]
    file = tmp_path / "the-file"
    if content is not None:
        file.write_text(content)
    settings = node_settings(tmp_path)
    for section, value in _fill(sections, str(file)).items():
        merged = settings.get(section)
        settings[section] = {**merged, **value} if isinstance(merged, dict) else value
    return settings, file


async def start_refusal(settings: dict[str, Any]) -> str:
    """The node's error at construction or start; the test fails when the node starts."""
    config = config_from_mapping(settings)
    attempts: list[Callable[[], Any]] = []
    try:
        node = Node(config, records_stream=io.StringIO())
        attempts.append(node.records.close)
        await node.start()
    except Exception as error:
        return str(error)
    finally:
        for close in attempts:
            await close()
    await node.stop()
    pytest.fail("the node started")


@pytest.mark.parametrize("name", sorted(CASES))
async def test_the_node_refuses_what_check_config_refuses(tmp_path: Path, name: str) -> None:
    settings, file = settings_for(tmp_path, name)
    [problem] = check_startup_files(config_from_mapping(settings))
    assert problem.startswith(f"{file}")
    assert str(file) in await start_refusal(settings)
