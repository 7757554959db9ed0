"""SMTP AUTH (RFC 4954): the users, password checks, and the failed-attempt budget per IP.

Users come from `[smtp] auth_users_file` / `auth_users_dir` in the formats of the HTTP API's
users (mta.http.credentials: bcrypt, {SHA256} or plain; one file per user for a mounted
Kubernetes Secret), re-read when the files change. Passwords and the AUTH command's
arguments are never logged: `RedactAuth` scrubs aiosmtpd's per-line log records.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt
from aiosmtpd.smtp import LoginPassword

from mta.http import credentials
from mta.http.credentials import Secret, SecretKind
from mta.replies import Reply

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 5.0  # how stale a rotated Secret may be before we notice it
BCRYPT_CONCURRENCY = 2  # bcrypt is CPU-bound: more threads only slow the event loop down
BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt reads no further
MAX_FAILURE_DELAY_SECONDS = 10.0  # the growing delay stops growing here
_DUMMY_DIGEST = credentials.sha256("not a password")

# RFC 4954 4: "An AUTH command issued during a mail transaction MUST be rejected with a 503".
S503_AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "AUTH not permitted during a mail transaction")


class SmtpUsers:
    """The AUTH users; `verify` checks one user's password without blocking the loop."""

    def __init__(
        self,
        users_file: Path | None,
        users_dir: Path | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._paths = [path for path in (users_file, users_dir) if path is not None]
        self._users_file, self._users_dir = users_file, users_dir
        self._clock = clock
        self._bcrypt_slots = asyncio.Semaphore(BCRYPT_CONCURRENCY)
        self._users: dict[str, Secret] = {}
        self._stamp: object = None
        self._next_check = 0.0
        self._load()  # CredentialsError at startup names the file

    @property
    def configured(self) -> bool:
        return bool(self._paths)

    def _load(self) -> None:
        stamp = credentials.stamp(self._paths)
        users: dict[str, Secret] = {}
        if self._users_file is not None:
            users.update(credentials.load_users_file(self._users_file))
        if self._users_dir is not None:
            users.update(credentials.load_users_dir(self._users_dir))
        self._users, self._stamp = users, stamp
        self._next_check = self._clock() + RELOAD_CHECK_SECONDS

    def _reload_if_changed(self) -> None:
        """Blocking (stat and read): runs in a thread. Keeps the old users on errors."""
        if credentials.stamp(self._paths) == self._stamp:
            return
        try:
            self._load()
        except credentials.CredentialsError as exc:
            log.warning("SMTP AUTH users not reloaded, keeping the previous ones: %s", exc)
        else:
            log.info("SMTP AUTH users reloaded: %d users", len(self._users))

    async def verify(self, user: str, password: str) -> bool:
        """True when `password` is `user`'s; unknown users cost the same digest check."""
        if self._paths and self._clock() >= self._next_check:
            self._next_check = self._clock() + RELOAD_CHECK_SECONDS
            await asyncio.to_thread(self._reload_if_changed)
        secret = self._users.get(user)
        if secret is None:
            hmac.compare_digest(credentials.sha256(password), _DUMMY_DIGEST)
            return False
        if secret.kind is SecretKind.SHA256:
            return secret.matches_digest(password)
        async with self._bcrypt_slots:
            return await asyncio.to_thread(_bcrypt_ok, password, secret.value)


def _bcrypt_ok(password: str, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:BCRYPT_MAX_PASSWORD_BYTES], hashed)
    except ValueError:  # a corrupt hash in the file: no password matches it
        return False


class FailureBudget:
    """Failed AUTH attempts per client IP, as a bucket that drains over `window`.

    Each failure adds one; the level falls by `max_failures` per `window` seconds, so an IP
    that stops failing gets its whole budget back after `window`. At `max_failures` the IP
    is `exhausted` until the level falls below it again.
    """

    def __init__(
        self,
        max_failures: int,
        window: float,
        delay: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_failures
        self._drain_per_second = max_failures / window
        self._delay = delay
        self._clock = clock
        self._levels: dict[str, tuple[float, float]] = {}  # ip -> (level, when)

    def _level(self, ip: str) -> float:
        level, when = self._levels.get(ip, (0.0, 0.0))
        return max(0.0, level - (self._clock() - when) * self._drain_per_second)

    def exhausted(self, ip: str) -> bool:
        return self._level(ip) > self._max - 1

    def fail(self, ip: str) -> float:
        """Count one failure; returns the delay (seconds) to wait before answering it."""
        level = self._level(ip) + 1
        if len(self._levels) > 10_000:  # bounded: forget IPs whose bucket has drained
            self._levels = {k: v for k, v in self._levels.items() if self._level(k) > 0}
        self._levels[ip] = (level, self._clock())
        return min(self._delay * level, MAX_FAILURE_DELAY_SECONDS)


class RedactAuth(logging.Filter):
    """Replaces the arguments of AUTH lines in aiosmtpd's command log (`mail.log`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.args, tuple):
            return True
        if "base64" in str(record.msg):  # an undecodable AUTH response: maybe a raw password
            record.args = tuple(b"[redacted]" if isinstance(a, bytes) else a for a in record.args)
        elif any(_is_auth_line(arg) for arg in record.args):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _is_auth_line(value: object) -> bool:
    return isinstance(value, bytes) and value[:5].upper() in (b"AUTH ", b"AUTH\r")


def _redacted(value: object) -> object:
    if not _is_auth_line(value):
        return value
    assert isinstance(value, bytes)
    mechanism = value.split()[1] if len(value.split()) > 1 else b""
    return b"AUTH " + mechanism + b" [redacted]"


def install_log_redaction() -> None:
    """Add RedactAuth to aiosmtpd's logger once (idempotent)."""
    logger = logging.getLogger("mail.log")
    if not any(isinstance(f, RedactAuth) for f in logger.filters):
        logger.addFilter(RedactAuth())


async def check_login(
    users: SmtpUsers, failures: FailureBudget, ip: str, given: LoginPassword
) -> str | None:
    """The user name when `given` is right; else counts a failure and waits its delay."""
    user = given.login.decode("utf-8", "replace")
    if await users.verify(user, given.password.decode("utf-8", "replace")):
        log.info("AUTH succeeded from %s", ip)
        return user
    delay = failures.fail(ip)
    log.info("AUTH failed from %s; answering in %.1f s", ip, delay)  # no user name: typos leak
    await asyncio.sleep(delay)  # the growing delay: guessing gets slower with every miss
    return None
