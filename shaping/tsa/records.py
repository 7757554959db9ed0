"""Reading what automation needs out of a KumoMTA-style JSON log record (pure).

Only ``TransientFailure`` and ``Bounce`` records carry a remote's push-back; every other
type is ignored. The destination is the recipient's domain; ``site`` is the MX rollup
name (sorted MX hosts joined with ``|``), a relay name (``relay:host:port``) or, as
KumoMTA writes it, ``source->site``.

Internal responses: a response this MTA synthesized itself (a connection failure, a
shaping refusal, an expiry) has no SMTP command (``response.command`` null or absent),
or content starting with ``KumoMTA internal`` (KumoMTA's spelling, for records from a
KumoMTA node). Rules see them only with ``match_internal = true``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping
from typing import Any, Final

from ..rules import normalize_host
from .events import UNSPECIFIED_SOURCE, EventFormatError, parse_expires

AUTOMATION_TYPES: Final = frozenset({"TransientFailure", "Bounce"})
INTERNAL_PREFIX: Final = "KumoMTA internal"
RELAY_PREFIX: Final = "relay:"
_HOSTNAME: Final = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_-]+)*$")


@dataclasses.dataclass(frozen=True, slots=True)
class Observation:
    """The parts of one record that automation looks at."""

    domain: str
    site_name: str
    mx_hosts: tuple[str, ...]
    source: str  # UNSPECIFIED_SOURCE when the record names none
    tenant: str | None
    campaign: str | None
    response: str  # "<code> <enhanced> <content>" on one line
    internal: bool
    timestamp: float

    @property
    def source_or_none(self) -> str | None:
        """The source for shaping lookups (None: the record named none)."""
        return None if self.source == UNSPECIFIED_SOURCE else self.source


def observe_record(record: Mapping[str, Any], now: float | None = None) -> Observation | None:
    """The observation in ``record``, or None when automation does not apply to it (other
    record types, no recipient domain, no response)."""
    if record.get("type") not in AUTOMATION_TYPES:
        return None
    domain = recipient_domain(record.get("recipient"))
    response = record.get("response")
    if domain is None or not isinstance(response, Mapping):
        return None
    site = _site(record.get("site"), domain)
    tenant, campaign = tenant_and_campaign(record)
    timestamp = record.get("timestamp")
    return Observation(
        domain=domain,
        site_name=site,
        mx_hosts=mx_hosts_of(site),
        source=_text(record.get("egress_source")) or UNSPECIFIED_SOURCE,
        tenant=tenant,
        campaign=campaign,
        response=response_line(response),
        internal=is_internal(response),
        timestamp=_timestamp(timestamp, now),
    )


def recipient_domain(recipient: object) -> str | None:
    """The lowercased domain of ``user@domain`` (angle brackets allowed)."""
    if not isinstance(recipient, str):
        return None
    _, at, domain = recipient.strip().strip("<>").rpartition("@")
    domain = normalize_host(domain)
    return domain if at and domain else None


def mx_hosts_of(site: str) -> tuple[str, ...]:
    """The MX hosts of an MX rollup site name; () for a relay or anything else."""
    if not site or site.startswith(RELAY_PREFIX):
        return ()
    hosts = tuple(normalize_host(part) for part in site.split("|"))
    return hosts if all(_HOSTNAME.match(host) for host in hosts) else ()


def tenant_and_campaign(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """From ``meta`` (``tenant`` / ``campaign``), else from the scheduled queue name
    ``campaign:tenant@domain`` (parts absent when unset)."""
    meta = record.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    queue_tenant, queue_campaign = _parse_queue(record.get("queue"))
    tenant = _text(meta.get("tenant")) or queue_tenant
    campaign = _text(meta.get("campaign")) or queue_campaign
    return tenant, campaign


def response_line(response: Mapping[str, Any]) -> str:
    """``"<code> <class.subject.detail> <content>"`` (the enhanced code left out when
    absent), multi-line content joined with spaces."""
    parts = [str(response.get("code", ""))]
    enhanced = response.get("enhanced_code")
    if isinstance(enhanced, Mapping):
        parts.append(".".join(str(enhanced.get(k, "")) for k in ("class", "subject", "detail")))
    content = response.get("content")
    if isinstance(content, str) and content:
        parts.append(" ".join(content.splitlines()))
    return " ".join(parts)


def is_internal(response: Mapping[str, Any]) -> bool:
    """Whether this MTA synthesized the response (see the module docstring)."""
    content = response.get("content")
    if isinstance(content, str) and content.startswith(INTERNAL_PREFIX):
        return True
    return response.get("command") is None


def _site(value: object, domain: str) -> str:
    site = _text(value) or ""
    if "->" in site:  # KumoMTA's "source->site_name"
        site = site.split("->", 1)[1]
    return site or domain


def _parse_queue(queue: object) -> tuple[str | None, str | None]:
    text = _text(queue)
    if text is None or "@" not in text:
        return None, None
    head = text.rpartition("@")[0]
    campaign, colon, tenant = head.partition(":")
    if not colon:
        return head or None, None
    return tenant or None, campaign or None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _timestamp(value: object, now: float | None) -> float:
    """Unix seconds (a number, or an RFC 3339 string); the current time when absent."""
    if value is not None and not isinstance(value, bool):
        try:
            return parse_expires(value)
        except EventFormatError:
            pass
    return time.time() if now is None else now
