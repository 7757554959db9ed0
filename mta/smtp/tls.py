"""The inbound TLS context: certificate and key from files, reloaded when they change.

One SSLContext lives as long as the server: the STARTTLS sessions and the implicit-TLS
listeners all hold it, so a reload loads the new pair into that same context and every
connection made afterwards presents it (OpenSSL copies the certificate into each connection
when it is created, so connections already open keep theirs). A new pair is first loaded
into a scratch context: a half-written or mismatched pair (a Secret being rotated) is logged
and the old pair stays.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MIN_TLS_VERSION = ssl.TLSVersion.TLSv1_2  # RFC 8996: TLS 1.0 and 1.1 are deprecated
CHECK_INTERVAL_SECONDS = 1.0  # at most one pair of stat() calls per second, however busy

Fingerprint = tuple[tuple[int, int, int], ...]


class TlsError(ValueError):
    """The certificate or key cannot be used; the message names the files."""


def server_context() -> ssl.SSLContext:
    """A server context with our floor on the protocol version and no client certificates."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MIN_TLS_VERSION
    return context


def _fingerprint(paths: tuple[Path, ...]) -> Fingerprint:
    """(inode, mtime, size) of each file: a Secret update swaps a symlink, a new inode."""
    result = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            result.append((-1, -1, -1))
        else:
            result.append((info.st_ino, info.st_mtime_ns, info.st_size))
    return tuple(result)


class TlsProvider:
    """The live context for `cert_file` / `key_file`; call `refresh()` on new connections."""

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._paths = (cert_file, key_file)
        self._clock = clock
        self._next_check = 0.0
        self.context = server_context()
        self._stamp = _fingerprint(self._paths)
        self._load(self.context)  # a startup error names the files
        self._next_check = clock() + CHECK_INTERVAL_SECONDS

    def refresh(self) -> None:
        """Reload the pair when the files changed (checked at most once a second)."""
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_INTERVAL_SECONDS
        stamp = _fingerprint(self._paths)
        if stamp == self._stamp:
            return
        self._stamp = stamp  # a bad pair is reported once per change, not once a second
        try:
            self._load(server_context())  # proves the new pair before touching the live one
            self._load(self.context)
        except TlsError as exc:
            log.warning("TLS certificate not reloaded, keeping the previous one: %s", exc)
            return
        log.info("TLS certificate reloaded from %s", self._paths[0])

    def _load(self, context: ssl.SSLContext) -> None:
        cert, key = self._paths
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"{cert} / {key}: {type(exc).__name__}: {exc}") from None
