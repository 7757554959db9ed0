"""`mta check-config` loads the files the node reads at start and names every bad one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.dkim import write_key

EXIT_CONFIG = 2
RULES = "[rules]\nInvalidRecipient = ['^5\\d\\d .*no such mailbox']\n"
SHAPING = '["example.com"]\nconnection_limit = 3\nmax_message_rate = "10/s"\n'


def run_mta(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mta", *args], capture_output=True, text=True, timeout=30, cwd=cwd
    )


def write_config(
    tmp_path: Path,
    key_file: Path,
    rules: str = RULES,
    shaping: str = SHAPING,
    algorithm: str = "rsa-sha256",
) -> Path:
    """DKIM for example.com with `key_file`, a bounce rules file and a shaping file."""
    rules_file, shaping_file = tmp_path / "bounce.toml", tmp_path / "shaping.toml"
    rules_file.write_text(rules)
    shaping_file.write_text(shaping)
    config = tmp_path / "mta.toml"
    config.write_text(
        f"[spool]\npath = {json.dumps(str(tmp_path / 'spool'))}\n"
        f'[smtp]\nlisten = ["127.0.0.1:0"]\n[http]\nlisten = ["127.0.0.1:0"]\n'
        f'[dkim."example.com"]\nselector = "s1"\nkey_file = {json.dumps(str(key_file))}\n'
        f'algorithm = "{algorithm}"\n'
        f"[bounce]\nrules_files = [{json.dumps(str(rules_file))}]\n"
        f"[shaping]\nfiles = [{json.dumps(str(shaping_file))}]\n"
    )
    return config


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == EXIT_CONFIG, result
    assert result.stdout == ""
    return result.stderr.splitlines()


def test_a_valid_config_with_a_real_dkim_key_passes(tmp_path: Path) -> None:
    for algorithm in ("rsa-sha256", "ed25519-sha256"):
        key_file, _ = write_key(tmp_path / "keys", algorithm, algorithm)
        config = write_config(tmp_path, key_file, algorithm=algorithm)
        result = run_mta("check-config", str(config), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{config}: OK\n"
    assert not (tmp_path / "spool").exists()  # the spool was not opened


def test_a_missing_dkim_key_file_is_named(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "gone.key"
    result = run_mta("check-config", str(write_config(tmp_path, key_file)), cwd=tmp_path)
    reason = "cannot read DKIM key: No such file or directory"
    assert problems(result) == [f"mta check-config: {key_file}: {reason}"]


def test_a_dkim_key_file_that_is_not_a_key_is_named(tmp_path: Path) -> None:
    key_file = tmp_path / "not-a.key"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    result = run_mta("check-config", str(write_config(tmp_path, key_file)), cwd=tmp_path)
    [line] = problems(result)
    assert line.startswith(f"mta check-config: {key_file}: not a usable PEM private key")


def test_a_malformed_bounce_rules_file_is_named(tmp_path: Path) -> None:
    key_file, _ = write_key(tmp_path, "s1")
    config = write_config(tmp_path, key_file, rules="[rules]\nBadDomain = ['(unclosed']\n")
    [line] = problems(run_mta("check-config", str(config), cwd=tmp_path))
    assert line.startswith(f"mta check-config: {tmp_path / 'bounce.toml'}: ")
    assert "BadDomain" in line


def test_a_malformed_shaping_file_is_named(tmp_path: Path) -> None:
    key_file, _ = write_key(tmp_path, "s1")
    config = write_config(tmp_path, key_file, shaping='["example.com"]\nconnection_limit = "x"\n')
    [line] = problems(run_mta("check-config", str(config), cwd=tmp_path))
    assert line.startswith(f"mta check-config: {tmp_path / 'shaping.toml'}: ")
    assert "connection_limit" in line


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, tmp_path / "gone.key", rules="[[rules", shaping='["default"]\nnope = 1\n'
    )
    lines = problems(run_mta("check-config", str(config), cwd=tmp_path))
    named = [line.split(": ")[1] for line in lines]
    assert named == [str(tmp_path / n) for n in ("gone.key", "bounce.toml", "shaping.toml")]


def test_serve_refuses_the_config_check_config_refuses(tmp_path: Path) -> None:
    """The same loader stops the node: check-config is not stricter or looser here."""
    key_file = tmp_path / "keys" / "gone.key"
    config = write_config(tmp_path, key_file)
    checked = run_mta("check-config", str(config), cwd=tmp_path)
    served = run_mta("serve", "--config", str(config), cwd=tmp_path)
    assert checked.returncode == EXIT_CONFIG and served.returncode != 0
    assert f"{key_file}: cannot read DKIM key" in served.stderr


def test_no_files_checks_the_config_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path, tmp_path / "gone.key")
    result = run_mta("check-config", "--no-files", str(config), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"{config}: OK\n"), result.stderr
