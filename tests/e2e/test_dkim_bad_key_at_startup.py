"""A DKIM key that is missing or unusable stops the node at startup with an error naming the
file, both in process and as `mta serve`; nothing is listening afterwards."""

import subprocess
import sys

import pytest

from mta.app import Node
from mta.config import ConfigError, config_from_mapping
from mta.dkim.keys import generate_key, key_pem
from tests.support.node import node_settings


def bad_key(tmp_path, kind: str):
    path = tmp_path / "secret" / "example.org" / "s1.key"
    path.parent.mkdir(parents=True)
    if kind == "garbage":
        path.write_text("-----BEGIN PRIVATE KEY-----\ntruncated\n")
    elif kind == "wrong algorithm":
        path.write_bytes(key_pem(generate_key("ed25519-sha256")))
    return path


@pytest.mark.parametrize("kind", ["missing", "garbage", "wrong algorithm"])
def test_node_refuses_to_start(tmp_path, kind) -> None:
    path = bad_key(tmp_path, kind)
    settings = node_settings(
        tmp_path, dkim={"example.org": {"selector": "s1", "key_file": str(path)}}
    )

    with pytest.raises(ConfigError, match=f"^{path}: "):
        Node(config_from_mapping(settings))


def test_mta_serve_exits_naming_the_file(tmp_path) -> None:
    path = bad_key(tmp_path, "garbage")
    config = tmp_path / "mta.toml"
    config.write_text(
        f"""
[node]
name = "test-node"
hostname = "mta.test"
[spool]
path = "{tmp_path / "spool"}"
min_free_bytes = 0
[smtp]
listen = ["127.0.0.1:0"]
[http]
listen = ["127.0.0.1:0"]
[log]
stdout = false
[dkim."example.org"]
selector = "s1"
key_file = "{path}"
"""
    )

    done = subprocess.run(
        [sys.executable, "-m", "mta", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode != 0
    assert str(path) in done.stderr
    assert "not a usable PEM private key" in done.stderr
