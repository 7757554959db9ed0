"""MTA-STS (RFC 8461) without I/O: the TXT record, the policy text, MX matching, and what a
policy does to a site.

The fetching and caching live in `sts_fetch.py`; this module only reads and applies.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from mta.replies import Reply

from .types import Site

StsMode = Literal["enforce", "testing", "none"]

STS_VERSION = "STSv1"
MAX_AGE_LIMIT = 31_557_600  # RFC 8461 3.2: max_age is at most a year, in seconds
MAX_ID_LENGTH = 32  # RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT)
SITE_SUFFIX = "@mta-sts"  # an enforced domain's site: hosts and TLS differ from plain MX

_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_MODES: tuple[StsMode, ...] = ("enforce", "testing", "none")

# RFC 3463 X.7.5 cryptographic failure: the policy forbids every MX host. Transient, as
# RFC 8461 5.1 asks: the policy or the MX records may be fixed before the message expires.
S451_STS_NO_MATCHING_MX = Reply(451, "4.7.5", "MTA-STS policy matches no MX host")


class PolicyError(ValueError):
    """A TXT record or policy text that RFC 8461 says to treat as absent."""


@dataclass(frozen=True, slots=True)
class StsPolicy:
    """A parsed policy (RFC 8461 3.2); `mx` patterns are lowercase, without trailing dot."""

    mode: StsMode
    max_age: int
    mx: tuple[str, ...]

    def matches(self, host: str) -> bool:
        return any(mx_matches(pattern, host) for pattern in self.mx)


def _fields(text: str, separator: str, assign: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in text.split(separator):
        if not part.strip():
            continue
        name, found, value = part.partition(assign)
        if not found:
            raise PolicyError(f"malformed field {part.strip()!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


def parse_txt(strings: Iterable[str]) -> str:
    """The policy id of the one `v=STSv1` TXT record among `strings` (each record's strings
    already joined). RFC 8461 3.1: other records are ignored; none, several, or a malformed
    one means no policy (PolicyError)."""
    records = [text for text in strings if text.lstrip().startswith(f"v={STS_VERSION}")]
    if len(records) != 1:
        raise PolicyError(f"{len(records)} v={STS_VERSION} TXT records")
    fields = _fields(records[0], ";", "=")
    if fields[0] != ("v", STS_VERSION):
        raise PolicyError("the TXT record does not start with v=STSv1")
    ids = [value for name, value in fields if name == "id"]
    if not ids or _ID.fullmatch(ids[0]) is None:
        raise PolicyError("the TXT record has no valid id")
    return ids[0]


def parse_policy(text: str) -> StsPolicy:
    """RFC 8461 3.2: "key: value" lines (CRLF or LF), version first; unknown keys ignored;
    `mx` may repeat, other keys count at their first appearance. Raises PolicyError."""
    fields = _fields(text.replace("\r\n", "\n"), "\n", ":")
    if not fields or fields[0] != ("version", STS_VERSION):
        raise PolicyError("the policy does not start with version: STSv1")
    first: dict[str, str] = {}
    for name, value in fields:
        first.setdefault(name, value)
    mode = first.get("mode")
    if mode not in _MODES:
        raise PolicyError(f"bad mode {mode!r}")
    max_age = first.get("max_age", "")
    if not max_age.isdigit() or int(max_age) > MAX_AGE_LIMIT:
        raise PolicyError(f"bad max_age {max_age!r}")
    mx = tuple(_host(value) for name, value in fields if name == "mx")
    if not mx and mode != "none":
        raise PolicyError("no mx pattern")
    return StsPolicy(mode, int(max_age), mx)


def _host(name: str) -> str:
    return name.strip().rstrip(".").lower()


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 4.1: a literal name, or "*." and a name matching exactly one more label on
    the left ("*.example.com" matches "mx.example.com", not "a.mx.example.com")."""
    pattern, host = _host(pattern), _host(host)
    if not pattern.startswith("*."):
        return pattern == host
    label, dot, rest = host.partition(".")
    return bool(label) and bool(dot) and rest == pattern[2:]


def enforced_site(site: Site, policy: StsPolicy) -> Site | Reply:
    """The site an `enforce` policy leaves (RFC 8461 5.1): only the matching MX hosts,
    each with TLS "Required" (a verified certificate for its name), under a site name of
    its own (its sessions must not be shared with unenforced domains on the same MX
    hosts); or the reply for every recipient when no host matches."""
    groups = tuple(
        kept for group in site.hosts if (kept := tuple(h for h in group if policy.matches(h)))
    )
    if not groups:
        return S451_STS_NO_MATCHING_MX
    enforced = dataclasses.replace(site, hosts=groups, tls="Required")
    if enforced == site:
        return site
    return dataclasses.replace(enforced, name=site.name + SITE_SUFFIX)


def unmatched_hosts(site: Site, policy: StsPolicy) -> list[str]:
    """The MX hosts a `testing` policy would have refused (logged, RFC 8461 5)."""
    return [host for group in site.hosts for host in group if not policy.matches(host)]
