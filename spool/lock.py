"""Exclusive lock on a spool directory for the life of a Spool."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

from spool.errors import SpoolLocked

LOCK_NAME: Final = "spool.lock"
_PID_READ_LIMIT: Final = 32


class DirectoryLock:
    """flock(LOCK_EX | LOCK_NB) on ``<directory>/spool.lock``, recording our PID in it."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; SpoolLocked when another process or instance holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise SpoolLocked(
                f"spool directory {self.path.parent} is locked by another process"
                f" ({holder}; lock file {self.path})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The lock file is never deleted: unlinking it would let two holders coexist.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (closing the fd releases the flock); idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, _PID_READ_LIMIT, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return "holder PID unknown"
    return f"PID {text}" if text.isdigit() else "holder PID unknown"
