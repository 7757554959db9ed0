"""The rendered ConfigMaps' files pass the project's own checks: `mta check-config` for every
mta.toml, `mta shaping check` for shaping.toml, and the TSA daemon's config loader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mta.tsa_config import load_tsa_config
from tests.k8s.k8s_support import CLUSTER_OVERLAYS, get, mounted_file, node_toml, render

NODE_OVERLAYS = (*CLUSTER_OVERLAYS, "overlays/node-relay")


def _mta(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}  # no MTA_* overrides from the test's environment
    return subprocess.run(
        [sys.executable, "-m", "mta", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("overlay", NODE_OVERLAYS)
def test_rendered_mta_toml_passes_check_config(overlay: str, tmp_path: Path) -> None:
    objs = render(overlay)
    workload, _ = node_toml(objs)
    path = _write(tmp_path, "mta.toml", mounted_file(objs, workload, "/etc/mta/mta.toml"))
    done = _mta("check-config", "--no-files", str(path))  # the Secrets are not mounted here
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("OK")


def test_check_config_catches_a_broken_rendered_file(tmp_path: Path) -> None:
    objs = render("overlays/prod")
    workload, _ = node_toml(objs)
    text = mounted_file(objs, workload, "/etc/mta/mta.toml").replace("[redis]", "[redis]\nx = 1")
    done = _mta("check-config", str(_write(tmp_path, "mta.toml", text)))
    assert done.returncode == 2 and "redis.x: unknown key" in done.stderr


@pytest.mark.parametrize("overlay", CLUSTER_OVERLAYS)
def test_rendered_shaping_toml_loads(overlay: str, tmp_path: Path) -> None:
    objs = render(overlay)
    workload, raw = node_toml(objs)
    assert raw["shaping"]["files"] == ["/etc/mta/shaping.toml"]
    path = _write(tmp_path, "shaping.toml", mounted_file(objs, workload, "/etc/mta/shaping.toml"))
    done = _mta("shaping", "check", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("overlay", CLUSTER_OVERLAYS)
def test_rendered_tsa_toml_loads_and_shares_the_nodes_shaping(overlay: str, tmp_path: Path) -> None:
    objs = render(overlay)
    tsa = get(objs, "StatefulSet", "mta-tsa")
    args = tsa["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["tsa", "--config"]
    path = _write(tmp_path, "tsa.toml", mounted_file(objs, tsa, args[2]))
    section = load_tsa_config(path).tsa
    assert [str(p) for p in section.shaping_files] == ["/etc/mta/shaping.toml"]
    assert str(section.state_path).startswith("/var/lib/tsa/")
    workload, _ = node_toml(objs)
    shaping = "/etc/mta/shaping.toml"
    assert mounted_file(objs, tsa, shaping) == mounted_file(objs, workload, shaping)
