"""The wire format of `/api/admin/suppression/v1`: request checks, no I/O.

- `GET ?tenant=T&recipient=R`: the live entries; without `tenant`, every tenant's; an empty
  `tenant=` is the default tenant (messages without one).
- `POST {"recipient", "tenant"?, "reason"?, "classification"?, "duration"?}`: add or replace.
- `DELETE ?recipient=R&tenant=T`: remove one entry (default tenant without `tenant`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mta.queue.admin_api import RequestError
from mta.suppression.store import ALL_TENANTS, TenantFilter
from mta.units import parse_duration

SUPPRESSION_PATH = "/api/admin/suppression/v1"
DEFAULT_REASON = "added by an administrator"
DEFAULT_CLASSIFICATION = "InvalidRecipient"
MAX_RECIPIENT = 320  # RFC 5321 4.5.3.1: 64 octets of local part, @, 255 of domain
MAX_TENANT = 128  # as the accept path's X-Tenant values (mta.accept.MAX_META_VALUE)
MAX_TEXT = 1000
MAX_TTL_SECONDS = 10 * 366 * 86400.0  # as admin rules: longer is a mistake
RECIPIENT_PATTERN = r"^[^@\s]+@[^@\s]+$"
CLASS_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
POST_FIELDS = frozenset({"recipient", "tenant", "reason", "classification", "duration"})
_RECIPIENT = re.compile(RECIPIENT_PATTERN)
_CLASS = re.compile(CLASS_PATTERN)


@dataclass(frozen=True, slots=True)
class AddRequest:
    """An entry to add; `ttl` None means `[suppression] ttl`."""

    recipient: str
    tenant: str | None
    reason: str
    classification: str
    ttl: float | None


def parse_add(body: Any) -> AddRequest:
    """The POST body; unknown fields are refused, as the bounce endpoint does."""
    if not isinstance(body, dict):
        raise RequestError("expected a JSON object")
    unknown = sorted(set(body) - POST_FIELDS)
    if unknown:
        raise RequestError(f"{unknown[0]}: unknown field")
    classification = _text(body, "classification", DEFAULT_CLASSIFICATION, 64)
    if not _CLASS.match(classification):
        raise RequestError("classification: a class name is letters, digits and '_'")
    return AddRequest(
        recipient=recipient(body.get("recipient")),
        tenant=tenant(body.get("tenant")),
        reason=_text(body, "reason", DEFAULT_REASON, MAX_TEXT),
        classification=classification,
        ttl=_ttl(body.get("duration")),
    )


def parse_list(query: Mapping[str, str]) -> tuple[TenantFilter, str | None]:
    """GET: (tenant or ALL_TENANTS, recipient or None)."""
    wanted = ALL_TENANTS if "tenant" not in query else tenant(query["tenant"])
    rcpt = query.get("recipient")
    return wanted, None if rcpt is None else recipient(rcpt)


def parse_remove(query: Mapping[str, str]) -> tuple[str | None, str]:
    """DELETE: (tenant, recipient)."""
    return tenant(query.get("tenant")), recipient(query.get("recipient"))


def recipient(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise RequestError("recipient: required, an email address")
    if len(value) > MAX_RECIPIENT or not _RECIPIENT.match(value) or not value.isprintable():
        raise RequestError(f"recipient: not an email address: {value[:80]!r}")
    return value


def tenant(value: Any) -> str | None:
    """A tenant name; None or "" is the default tenant."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TENANT or not value.isprintable():
        raise RequestError(f"tenant: expected a name of at most {MAX_TENANT} characters")
    return value


def _text(body: Mapping[str, Any], name: str, default: str, limit: int) -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) > limit:
        raise RequestError(f"{name}: expected a string of at most {limit} characters")
    return value or default


def _ttl(value: Any) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except (ValueError, OverflowError):
        raise RequestError('duration: expected "30d", "12h 30m" or a number of seconds') from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise RequestError("duration: must be more than zero")
    return min(seconds, MAX_TTL_SECONDS)
