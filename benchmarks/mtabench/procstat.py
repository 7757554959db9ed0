"""CPU time and memory of a process group, read from /proc (Linux only, no psutil).

Every MTA under test runs as one process group: our node is started in a new session, and
Postfix's master calls setsid() and forks every daemon (smtpd, cleanup, qmgr, smtp, ...) into
its group. CPU of the group = user+system time of every live member, plus what the leader has
collected from children that already exited and were reaped (cutime+cstime). That counts the
short-lived smtpd and smtp processes too, without cgroups.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# Field numbers in /proc/PID/stat after the ")" that ends the command name (proc(5) - 3).
_PGRP, _UTIME, _STIME, _CUTIME, _CSTIME = 2, 11, 12, 13, 14


@dataclass(frozen=True, slots=True)
class Usage:
    """One snapshot of a process group."""

    cpu_seconds: float  # live members' utime+stime plus the leader's reaped children
    rss_bytes: int  # sum of resident set sizes (shared pages counted once per process)
    pss_bytes: int  # sum of proportional set sizes (shared pages divided among sharers)
    processes: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Every live process whose process group is `pgid`."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and int(fields[_PGRP]) == pgid:
            members.append(int(entry.name))
    return members


def _pss_bytes(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _rss_bytes(pid: int) -> int:
    try:
        return int((PROC / str(pid) / "statm").read_text().split()[1]) * PAGE_SIZE
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return 0


def group_usage(pgid: int, *, memory: bool = True) -> Usage:
    """CPU and memory of process group `pgid` whose leader is the process `pgid`."""
    ticks = 0
    rss = pss = 0
    members = group_members(pgid)
    for pid in members:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        ticks += int(fields[_UTIME]) + int(fields[_STIME])
        if pid == pgid:
            ticks += int(fields[_CUTIME]) + int(fields[_CSTIME])
        if memory:
            rss += _rss_bytes(pid)
            pss += _pss_bytes(pid)
    return Usage(ticks / CLOCK_TICKS, rss, pss, len(members))


def peak_rss_bytes(pid: int) -> int:
    """The kernel's high-water mark of one process's resident set (VmHWM)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (user, nice, system, irq, softirq, steal)."""
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS
