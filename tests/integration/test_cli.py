"""The `mta` command line: check-config and start-up errors name the problem."""

import subprocess
import sys
from pathlib import Path


def run_mta(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mta", *args], capture_output=True, text=True, timeout=30, cwd=cwd
    )


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "mta.toml"
    path.write_text('[smtp]\nlisten = ["127.0.0.1:2525"]\n[queue]\nretry_interval = "5m"\n')
    result = run_mta("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_config_names_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "mta.toml"
    path.write_text('[queue]\nretry_interval = "often"\n')
    result = run_mta("check-config", str(path))
    assert result.returncode == 2
    assert "queue.retry_interval" in result.stderr
    assert "invalid duration" in result.stderr


def test_serve_refuses_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "mta.toml"
    path.write_text('[smtp]\nlisten_address = "127.0.0.1:1"\n')
    result = run_mta("serve", "--config", str(path))
    assert result.returncode == 2
    assert "smtp.listen_address: unknown key" in result.stderr


def test_serve_refuses_a_spool_in_use(tmp_path: Path) -> None:
    import fcntl

    spool = tmp_path / "spool"
    spool.mkdir()
    path = tmp_path / "mta.toml"
    path.write_text(
        f'[spool]\npath = "{spool}"\nmin_free_bytes = 0\n'
        '[smtp]\nlisten = ["127.0.0.1:0"]\n[log]\nstdout = false\n'
    )
    with (spool / "spool.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_mta("serve", "--config", str(path))
    assert result.returncode == 1
    assert str(spool) in result.stderr
    assert "lock" in result.stderr.lower() or "in use" in result.stderr.lower()
