"""Which envelope senders (MAIL FROM) each authenticated user may use.

`[smtp] sender_policy_file`, one user per line (blank lines and `#` comments ignored):

    alice: alice@example.com, @billing.example.com
    newsletter: @news.example.com

An entry with `@` in front allows every address at exactly that domain; any other entry is
one address. Addresses and domains compare case-insensitively. Several lines for one user add
up. A user without a line may send as anyone, unless `sender_policy_default = "deny"`. The
null sender `<>` (bounces, auto-replies; RFC 5321 4.5.5) is always allowed. The file is
re-read when it changes; a broken new version is logged and the previous one kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mta.http import credentials

log = logging.getLogger(__name__)

RELOAD_CHECK_SECONDS = 5.0


class SenderPolicyError(ValueError):
    """The policy file cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Allowed:
    """What one user may send as."""

    addresses: frozenset[str]
    domains: frozenset[str]

    def permits(self, sender: str) -> bool:
        sender = sender.lower()
        return sender in self.addresses or sender.rpartition("@")[2] in self.domains


def parse_policy(text: str, where: str) -> dict[str, Allowed]:
    """`user: entry, entry` lines to a table of users; SenderPolicyError names a bad line."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        user, sep, rest = line.partition(":")
        entries = [entry.strip().lower() for entry in rest.replace(",", " ").split()]
        if not sep or not user.strip() or not entries or not all(_valid(e) for e in entries):
            raise SenderPolicyError(f"{where}:{number}: expected user: addr@domain, @domain")
        addresses, domains = found.setdefault(user.strip(), (set(), set()))
        domains.update(entry[1:] for entry in entries if entry.startswith("@"))
        addresses.update(entry for entry in entries if not entry.startswith("@"))
    return {user: Allowed(frozenset(a), frozenset(d)) for user, (a, d) in found.items()}


def _valid(entry: str) -> bool:
    local, at, domain = entry.rpartition("@")
    return bool(at and domain and "@" not in local)


class SenderPolicy:
    """The policy from `path` (None: everyone unrestricted unless `default` is "deny")."""

    def __init__(
        self,
        path: Path | None,
        default: str = "allow",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._deny_unlisted = default == "deny"
        self._clock = clock
        self._users: dict[str, Allowed] = {}
        self._stamp: object = None
        self._next_check = 0.0
        if path is not None:
            self._load(path)  # SenderPolicyError at startup

    def _load(self, path: Path) -> None:
        stamp = credentials.stamp([path])
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SenderPolicyError(f"{path}: cannot read: {type(exc).__name__}") from None
        self._users, self._stamp = parse_policy(text, str(path)), stamp
        self._next_check = self._clock() + RELOAD_CHECK_SECONDS

    def _maybe_reload(self) -> None:
        if self._path is None or self._clock() < self._next_check:
            return
        self._next_check = self._clock() + RELOAD_CHECK_SECONDS
        if credentials.stamp([self._path]) == self._stamp:
            return
        try:
            self._load(self._path)
        except SenderPolicyError as exc:
            log.warning("sender policy not reloaded, keeping the previous one: %s", exc)

    def permits(self, user: str, sender: str) -> bool:
        """Whether authenticated `user` may use envelope sender `sender` ("" is <>)."""
        self._maybe_reload()
        if not sender:
            return True
        allowed = self._users.get(user)
        if allowed is None:
            return not self._deny_unlisted
        return allowed.permits(sender)
