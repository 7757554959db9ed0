"""Postfix transport maps as Mailman 3 writes them (`var/data/postfix_lmtp`), re-read on change.

Two formats (Mailman's `transport_file_type`):

- "postfix-hash-source": the source of a hash table, `key value` lines such as
  `list-bounces@lists.example.com lmtp:[mailman-core]:8024`. Looked up as Postfix does for
  transport_maps (transport(5)): the full address, then without its `+extension`
  (recipient_delimiter = "+"), then the domain, then `.parent` domains.
- "postfix-regex": regexp_table(5) lines `/pattern/flags value`, tried in order against the
  full address, case-insensitive unless the `i` flag toggles it, as docker-mailman uses:
  `/^list(|\\+.*|-bounces(\\+.*)?|-request)@lists\\.example\\.com$/ lmtp:[mailman-core]:8024`.

The domains a map covers are those of its entries; a recipient of a covered domain that
matches no entry has no mailbox (`NO_ENTRY`: refused at RCPT).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from mta.config import RouteMapFormat

from .destination import Destination, parse_transport

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0  # seconds between two looks at the file (a stat per recipient is waste)
RECIPIENT_DELIMITER = "+"  # what Mailman's Postfix setup uses (VERP: list-bounces+user=...)
NO_ENTRY: Final = "no-entry"
_REGEX_LINE = re.compile(r"^(!?)/(.*)/([A-Za-z]*)\s+(\S.*)$")
# The literal domain at the end of a Mailman regex: "@lists\.example\.com$".
_REGEX_DOMAIN = re.compile(r"@((?:[A-Za-z0-9-]|\\\.)+)\$$")

Answer = Destination | Literal["no-entry"] | None


@dataclass
class MapEntries:
    """A parsed map: exact keys (hash) or ordered patterns (regex), and the covered domains."""

    exact: dict[str, Destination] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern[str], Destination]] = field(default_factory=list)
    domains: set[str] = field(default_factory=set)

    def lookup(self, address: str, domain: str) -> Answer:
        """The destination of `address` (lowercase), NO_ENTRY or None (domain not covered)."""
        found = self._find(address, domain)
        if found is not None:
            return found
        return NO_ENTRY if domain in self.domains else None

    def _find(self, address: str, domain: str) -> Destination | None:
        for pattern, destination in self.patterns:
            if pattern.search(address):
                return destination
        for key in _hash_keys(address, domain):
            found = self.exact.get(key)
            if found is not None:
                return found
        return None


def _hash_keys(address: str, domain: str) -> Iterator[str]:
    """transport(5) lookup order: user+ext@domain, user@domain, domain, .parent domains."""
    yield address
    local = address.rpartition("@")[0]
    base, sep, _ = local.partition(RECIPIENT_DELIMITER)
    if sep and base:
        yield f"{base}@{domain}"
    yield domain
    labels = domain.split(".")
    for i in range(len(labels)):
        yield "." + ".".join(labels[i:])


def parse_map(text: str, fmt: RouteMapFormat, source: str = "transport map") -> MapEntries:
    """Parse a map's text; lines that cannot be used are logged and skipped."""
    entries = MapEntries()
    add = _add_regex if fmt == "postfix-regex" else _add_hash
    for number, line in _logical_lines(text):
        try:
            add(entries, line)
        except (ValueError, re.error) as exc:
            logger.warning("%s line %d ignored: %s", source, number, exc)
    return entries


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Non-blank, non-comment lines, with Postfix continuation lines (leading space) joined."""
    current: tuple[int, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0] in " \t" and current is not None:
            current = (current[0], f"{current[1]} {raw.strip()}")
            continue
        if current is not None:
            yield current
        current = (number, raw.strip())
    if current is not None:
        yield current


def _add_hash(entries: MapEntries, line: str) -> None:
    parts = line.split(None, 1)
    if len(parts) != 2:
        raise ValueError(f"expected 'key value', got {line!r}")
    key = parts[0].lower().rstrip(".")
    entries.exact[key] = parse_transport(parts[1])
    if "@" in key:
        entries.domains.add(key.rpartition("@")[2])


def _add_regex(entries: MapEntries, line: str) -> None:
    match = _REGEX_LINE.match(line)
    if match is None:
        raise ValueError(f"expected '/pattern/flags value', got {line!r}")
    negated, pattern, flags, value = match.groups()
    if negated:
        raise ValueError("negated patterns (!/.../) are not supported")
    ignore_case = flags.count("i") % 2 == 0  # regexp_table(5): "i" toggles; default ignores
    compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    entries.patterns.append((compiled, parse_transport(value)))
    domain = _REGEX_DOMAIN.search(pattern)
    if domain is not None:
        entries.domains.add(domain[1].replace("\\.", ".").lower())


class TransportMap:
    """A transport map file, re-read when it changes (checked at most once a second).

    A file that is missing or unreadable keeps the last good entries (none at first) and is
    tried again at the next check: Mailman rewrites it while lists come and go.
    """

    def __init__(
        self,
        path: Path,
        fmt: RouteMapFormat,
        *,
        check_interval: float = CHECK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._format = fmt
        self._interval = check_interval
        self._clock = clock
        self._next_check = float("-inf")
        self._stamp: tuple[int, int, int] | None = None
        self.entries = MapEntries()

    def lookup(self, address: str, domain: str) -> Answer:
        """See `MapEntries.lookup`; `address` and `domain` lowercase."""
        self.refresh()
        return self.entries.lookup(address, domain)

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the file if it changed since it was last read."""
        now = self._clock()
        if not force and now < self._next_check:
            return
        self._next_check = now + self._interval
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp == self._stamp:
                return
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            if self._stamp is not None or force:
                logger.warning("transport map %s: %s; keeping the last entries", self.path, exc)
            self._stamp = None
            return
        self.entries = parse_map(text, self._format, str(self.path))
        self._stamp = stamp
        logger.info("transport map %s: %d entries", self.path, self._count())

    def _count(self) -> int:
        return len(self.entries.exact) + len(self.entries.patterns)
