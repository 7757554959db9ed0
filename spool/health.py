"""Cheap free-space check for the spool filesystem."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

STATVFS_TTL_SECONDS: Final = 0.5


class FreeSpace:
    """Reports when free space drops below a floor; statvfs results are cached briefly."""

    def __init__(self, path: Path, min_free_bytes: int) -> None:
        self._path = path
        self._min_free = min_free_bytes
        self._expires = 0.0
        self._problem: str | None = None

    def problem(self) -> str | None:
        """Why the free space is insufficient, or None."""
        if self._min_free <= 0:
            return None
        now = time.monotonic()
        if now >= self._expires:
            self._problem = self._check()
            self._expires = now + STATVFS_TTL_SECONDS
        return self._problem

    def _check(self) -> str | None:
        try:
            stat = os.statvfs(self._path)
        except OSError as exc:
            return f"cannot check free space on {self._path}: {exc}"
        free = stat.f_bavail * stat.f_frsize
        if free < self._min_free:
            return (
                f"free space on {self._path} is {free} bytes, below min_free_bytes {self._min_free}"
            )
        return None
