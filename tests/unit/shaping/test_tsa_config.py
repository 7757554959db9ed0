"""The TSA daemon's config file (`mta tsa --config`): defaults, keys, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mta.config import ConfigError
from mta.tsa_config import daemon_settings, load_tsa_config
from shaping.rules import DEFAULT_SHAPING_FILE


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tsa.toml"
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = daemon_settings(load_tsa_config(write(tmp_path, "")).tsa)
    assert (settings.host, settings.port) == ("0.0.0.0", 8008)
    assert settings.shaping_files == (DEFAULT_SHAPING_FILE,)
    assert settings.trusted_networks == ("127.0.0.1/32", "::1/128")
    assert settings.tokens_file is None and settings.save_interval == 30.0


def test_every_key(tmp_path: Path) -> None:
    config = load_tsa_config(
        write(
            tmp_path,
            """
[tsa]
listen = "127.0.0.1:9100"
state_path = "/var/lib/tsa/state.json"
shaping_files = ["/etc/a.toml", "/etc/b.toml"]
include_default_shaping = false
trusted_networks = ["10.0.0.0/8"]
tokens_file = "/etc/tsa/tokens"
save_interval = "2m"
reload_interval = "1s"
""",
        )
    )
    settings = daemon_settings(config.tsa)
    assert (settings.host, settings.port) == ("127.0.0.1", 9100)
    assert settings.shaping_files == (Path("/etc/a.toml"), Path("/etc/b.toml"))
    assert settings.state_path == Path("/var/lib/tsa/state.json")
    assert settings.tokens_file == Path("/etc/tsa/tokens")
    assert (settings.save_interval, settings.reload_interval) == (120.0, 1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tsa]\nsurprise = 1\n", "tsa.surprise: unknown key"),
        ("[other]\n", "other: unknown key"),
        ('[tsa]\nlisten = "nowhere:port"\n', "tsa.listen"),
        ('[tsa]\ntrusted_networks = ["300.0.0.0/8"]\n', r"tsa.trusted_networks\[0\]"),
        ('[tsa]\nsave_interval = "0s"\n', "tsa.save_interval: must be greater than zero"),
        ("[tsa]\nshaping_files = [1]\n", r"tsa.shaping_files\[0\]"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_tsa_config(write(tmp_path, text))
