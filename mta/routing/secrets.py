"""A relay's SASL password: from a file (a mounted Secret, re-read when it changes) or from
an environment variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mta.config import RouteAuthConfig


class SecretUnavailable(Exception):
    """The password cannot be read now (the message says why); delivery waits for it."""


class PasswordSource:
    """`username` and `password()` of a route's `auth` table.

    The file is read again whenever its modification time, size or inode changes, so a
    Kubernetes Secret update (an atomic symlink swap) or a plain rewrite takes effect at the
    next connection without a restart. Trailing newlines are not part of the password.
    """

    def __init__(self, auth: RouteAuthConfig, environ: Mapping[str, str] | None = None) -> None:
        self.username = auth.username
        self._file = auth.password_file
        self._env = auth.password_env
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._stamp: tuple[int, int, int] | None = None
        self._password = ""

    def password(self) -> str:
        """The current password; raises SecretUnavailable."""
        if self._file is None:
            return self._from_env()
        try:
            stat = self._file.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp != self._stamp:
                self._password = _read(self._file)
                self._stamp = stamp
        except OSError as exc:
            raise SecretUnavailable(f"cannot read password_file {self._file}: {exc}") from None
        return self._password

    def _from_env(self) -> str:
        value = self._environ.get(self._env or "")
        if not value:
            raise SecretUnavailable(f"environment variable {self._env} is not set")
        return value


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8").rstrip("\r\n")
