"""What the numbers were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _command(*args: str) -> str | None:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    return out.stdout.strip() or None


def filesystem(path: Path) -> str:
    """The type of the file system `path` lives on (from /proc/mounts, longest mount point)."""
    best, kind = "", "unknown"
    target = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        mount, fstype = fields[1], fields[2]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, kind = mount, fstype
    return kind


def describe(workroot: Path) -> dict[str, Any]:
    memory = _first("/proc/meminfo", "MemTotal")
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postfix": _command("dpkg-query", "-W", "-f", "${Version}", "postfix"),
        "workdir": str(workroot),
        "workdir_filesystem": filesystem(workroot),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def one_line(info: dict[str, Any]) -> str:
    return (
        f"{info['nproc']} CPUs ({info['cpu_model']}), {info['memory']} RAM, "
        f"Linux {info['kernel']}, Python {info['python']}, Postfix {info['postfix']}, "
        f"spools on {info['workdir_filesystem']}"
    )
