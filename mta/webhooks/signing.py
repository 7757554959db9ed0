"""The webhook signature: HMAC-SHA256 over the timestamp and the exact body bytes.

Every POST carries `X-MTA-Timestamp: <unix seconds>`. With a `secret_file` it also carries
`X-MTA-Signature: sha256=<hex>`, where hex is the lowercase HMAC-SHA256, keyed with the secret
(the file's bytes without trailing whitespace), of

    <X-MTA-Timestamp value> "." <body bytes exactly as received>

A receiver recomputes it over the raw body (before any JSON parsing), compares in constant
time, and refuses timestamps outside its tolerance (5 minutes is usual) so that a captured
request cannot be replayed later. A retried batch is signed again with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from pathlib import Path
from typing import Final

_log = logging.getLogger(__name__)

SIGNATURE_HEADER: Final = "X-MTA-Signature"
TIMESTAMP_HEADER: Final = "X-MTA-Timestamp"
SCHEME: Final = "sha256"
DEFAULT_TOLERANCE: Final = 300.0  # seconds a receiver should accept a timestamp either side


def signed_content(timestamp: str, body: bytes) -> bytes:
    """The bytes the signature covers: the timestamp, a dot, the body."""
    return timestamp.encode("ascii") + b"." + body


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """The `X-MTA-Signature` value: `sha256=<hex HMAC-SHA256>`."""
    digest = hmac.new(secret, signed_content(timestamp, body), hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(
    secret: bytes,
    timestamp: str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent enough."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


class SecretFile:
    """A secret read from a file (a mounted Secret), re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._value = b""
        self.value()  # a missing or empty file stops the start, naming the file
        if not self._value:
            raise ValueError(f"{path}: the webhook secret file is empty")

    def value(self) -> bytes:
        """The current secret; the last good one if the file cannot be read now."""
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                secret = self.path.read_bytes().rstrip()
                if secret:
                    self._value, self._stamp = secret, stamp
        except OSError as error:
            if not self._value:
                raise
            _log.warning(
                "webhook secret %s unreadable (%s); keeping the last one", self.path, error
            )
        return self._value
