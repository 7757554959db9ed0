"""Credential files for the HTTP API: users (HTTP Basic) and bearer tokens.

Formats (blank lines and lines starting with `#` are ignored everywhere):

`users_file`: one `user:secret` per line, split at the first `:` (a user name cannot contain
`:`, a secret can). The secret is one of

- a bcrypt hash: `alice:$2b$12$...` (also `$2a$` / `$2y$`; make one with
  `python -c 'import bcrypt; print(bcrypt.hashpw(b"PASSWORD", bcrypt.gensalt()).decode())'`
  or `htpasswd -nbB alice PASSWORD`),
- a SHA-256 digest: `alice:{SHA256}<base64 of sha256(password)>`
  (`printf %s PASSWORD | openssl dgst -sha256 -binary | base64`),
- anything else is the plain password: `alice:PASSWORD`.

`users_dir`: one file per user, the file name is the user name and the content (one line,
surrounding whitespace stripped) is the secret in any of the forms above. This is how a
Kubernetes Secret mounted as a volume looks (`kubectl create secret generic mta-http-users
--from-literal=user1=PASSWORD`); names starting with `.` (the Secret's `..data` links) are
skipped. When both are configured a user in `users_dir` overrides the same user in
`users_file`.

`tokens_file`: one bearer token per line, optionally named: `ci:9f86d081...`. The name is the
identity the token authenticates as (for `admin_users`); an unnamed token is `bearer`.

Secrets are kept only as digests or hashes in memory, compared in constant time, and never
logged: parse errors name the file and line number only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from mta.config import HttpConfig

logger = logging.getLogger(__name__)

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
SHA256_PREFIX = "{SHA256}"
UNNAMED_TOKEN = "bearer"
RELOAD_CHECK_SECONDS = 5.0  # how stale a rotated Secret may be before we notice it
SHA256_BYTES = 32


class CredentialsError(ValueError):
    """A credential file cannot be used; the message names the file, never a secret."""


class SecretKind(Enum):
    BCRYPT = "bcrypt"
    SHA256 = "sha256"  # plain passwords are stored as their digest too


@dataclass(frozen=True, slots=True)
class Secret:
    """A stored password: a bcrypt hash, or a SHA-256 digest of the password."""

    kind: SecretKind
    value: bytes

    def matches_digest(self, password: str) -> bool:
        """Constant-time check for a SHA256 secret (bcrypt needs `bcrypt.checkpw`)."""
        return hmac.compare_digest(sha256(password), self.value)


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def parse_secret(text: str, where: str) -> Secret:
    """The stored form of one secret from a users file or users directory entry."""
    if text.startswith(BCRYPT_PREFIXES):
        return Secret(SecretKind.BCRYPT, text.encode("ascii", "replace"))
    if text.startswith(SHA256_PREFIX):
        try:
            digest = base64.b64decode(text[len(SHA256_PREFIX) :], validate=True)
        except binascii.Error:
            digest = b""
        if len(digest) != SHA256_BYTES:
            raise CredentialsError(f"{where}: {SHA256_PREFIX} value is not a base64 SHA-256")
        return Secret(SecretKind.SHA256, digest)
    if not text:
        raise CredentialsError(f"{where}: empty password")
    return Secret(SecretKind.SHA256, sha256(text))


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"{path}: cannot read: {type(exc).__name__}") from None
    numbered = enumerate(text.splitlines(), start=1)
    return [(n, line.strip()) for n, line in numbered if line.strip() and line[:1] != "#"]


def load_users_file(path: Path) -> dict[str, Secret]:
    """Parse a `user:secret` file."""
    users: dict[str, Secret] = {}
    for number, line in _lines(path):
        user, sep, secret = line.partition(":")
        if not sep or not user:
            raise CredentialsError(f"{path}:{number}: expected user:password")
        users[user] = parse_secret(secret, f"{path}:{number}")
    return users


def load_users_dir(path: Path) -> dict[str, Secret]:
    """Parse a directory of one file per user (a mounted Kubernetes Secret)."""
    try:
        names = sorted(os.listdir(path))
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot list: {type(exc).__name__}") from None
    users: dict[str, Secret] = {}
    for name in names:
        entry = path / name
        if name.startswith(".") or not entry.is_file():
            continue
        lines = _lines(entry)
        if len(lines) != 1:
            raise CredentialsError(f"{entry}: expected exactly one line (the password)")
        users[name] = parse_secret(lines[0][1], str(entry))
    return users


def load_tokens_file(path: Path) -> list[tuple[str, bytes]]:
    """Parse a tokens file into (name, sha256 of the token) pairs."""
    tokens = []
    for _number, line in _lines(path):
        name, sep, token = line.partition(":")
        if not sep:
            name, token = UNNAMED_TOKEN, line
        tokens.append((name or UNNAMED_TOKEN, sha256(token)))
    return tokens


def stamp(paths: list[Path]) -> tuple[tuple[str, int, int, int], ...]:
    """A cheap fingerprint of files and directories (inode, mtime, size) to notice changes."""
    result = []
    for path in paths:
        entries = [path]
        if path.is_dir():
            with contextlib.suppress(OSError):  # removed meanwhile: the stat below says so
                entries += [path / name for name in sorted(os.listdir(path))]
        for entry in entries:
            try:
                info = entry.stat()
            except OSError:
                result.append((str(entry), -1, -1, -1))
            else:
                result.append((str(entry), info.st_ino, info.st_mtime_ns, info.st_size))
    return tuple(result)


class CredentialStore:
    """Users and tokens from the configured files, re-read when the files change."""

    def __init__(
        self,
        config: HttpConfig,
        *,
        reload_seconds: float = RELOAD_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users_file = config.users_file
        self._users_dir = config.users_dir
        self._tokens_file = config.tokens_file
        self._clock = clock
        self._reload_seconds = reload_seconds
        self._next_check = 0.0
        self._stamp: object = None
        self.users: dict[str, Secret] = {}
        self.tokens: list[tuple[str, bytes]] = []

    @property
    def _paths(self) -> list[Path]:
        paths = (self._users_file, self._users_dir, self._tokens_file)
        return [path for path in paths if path is not None]

    def load(self) -> None:
        """Read every configured file; CredentialsError names a file that cannot be used."""
        fingerprint = stamp(self._paths)
        users: dict[str, Secret] = {}
        if self._users_file is not None:
            users.update(load_users_file(self._users_file))
        if self._users_dir is not None:
            users.update(load_users_dir(self._users_dir))
        tokens = []
        if self._tokens_file is not None:
            tokens = load_tokens_file(self._tokens_file)
        self.users, self.tokens, self._stamp = users, tokens, fingerprint
        self._next_check = self._clock() + self._reload_seconds

    def claim_reload(self) -> bool:
        """True at most once per reload interval: the caller then runs `reload_if_changed`."""
        if not self._paths or self._clock() < self._next_check:
            return False
        self._next_check = self._clock() + self._reload_seconds
        return True

    def reload_if_changed(self) -> None:
        """Blocking (stat and read): run it in a thread. Keeps the old set on errors."""
        if stamp(self._paths) == self._stamp:
            return
        try:
            self.load()
        except CredentialsError as exc:
            logger.warning("HTTP credentials not reloaded, keeping the previous ones: %s", exc)
        else:
            logger.info("HTTP credentials reloaded: %d users, %d tokens", *self.counts())

    def counts(self) -> tuple[int, int]:
        return len(self.users), len(self.tokens)
