"""The wire format of the admin API (KumoMTA's `kumo-api-types`): request checks, answers.

No I/O here: `mta.http.admin_routes` reads requests and writes answers with these functions.
Every `RequestError` names the field at fault, so a client sees what to fix.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mta.queue.rules import AdminRule, Matcher
from mta.units import parse_duration

DEFAULT_DURATION_SECONDS = 300.0  # KumoMTA's default lifetime of a rule ("5m")
# Rules longer than this are cut to it: nobody means a rule to outlive the node, and
# timestamps past year 9999 cannot even be written.
MAX_RULE_SECONDS = 10 * 366 * 86400.0
MAX_LIMIT_DIGITS = 18
MATCHER_FIELDS = ("domain", "routing_domain", "tenant", "campaign")
BOUNCE_FIELDS = frozenset(
    {*MATCHER_FIELDS, "queue_names", "reason", "duration", "expires", "suppress_logging"}
)
# RFC 3339 section 5.6 date-time (lowercase "t" and "z" are allowed there too), as the OpenAPI
# schema's pattern; the date must also exist (no Feb 30), as its `date-time` format says.
EXPIRES_PATTERN = (
    r"^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):([0-5][0-9])"
    r":([0-5][0-9])(\.[0-9]+)?([Zz]|([+-])([01][0-9]|2[0-3]):([0-5][0-9]))$"
)
_RFC3339 = re.compile(EXPIRES_PATTERN)
# What `mta.units.parse_duration` reads ("20m", "1h 30m", "500ms"), as the OpenAPI pattern says.
DURATION_PATTERN = r"^\s*([0-9]+(\.[0-9]+)?\s*([mM][sS]|[smhdwSMHDW])\s*)+$"
_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?\s*(?:[mM][sS]|[smhdwSMHDW])\s*)+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


class RequestError(ValueError):
    """A request the admin API refuses (HTTP 400); the text names the field."""


@dataclass(frozen=True, slots=True)
class RuleRequest:
    """A bounce or suspension to create."""

    matcher: Matcher
    reason: str
    expires: float
    suppress_logging: bool = False


@dataclass(frozen=True, slots=True)
class ReadyRuleRequest:
    """A ready-queue suspension to create."""

    name: str
    reason: str
    expires: float


# -- requests ----------------------------------------------------------------------------


def parse_bounce(body: Any, now: float) -> RuleRequest:
    """`BounceV1Request`: unknown fields are refused, as KumoMTA's `deny_unknown_fields`."""
    fields = _object(body)
    unknown = sorted(set(fields) - BOUNCE_FIELDS)
    if unknown:
        raise RequestError(f"{unknown[0]}: unknown field")
    suppress = fields.get("suppress_logging", False)
    if not isinstance(suppress, bool):
        raise RequestError("suppress_logging: expected true or false")
    request = parse_suspend(fields, now)
    return RuleRequest(request.matcher, request.reason, request.expires, suppress)


def parse_suspend(body: Any, now: float) -> RuleRequest:
    """`SuspendV1Request` (plus `routing_domain`); unknown fields are ignored, as KumoMTA."""
    fields = _object(body)
    criteria = {name: _optional_string(fields, name) for name in MATCHER_FIELDS}
    matcher = Matcher(**criteria, queue_names=_string_list(fields, "queue_names"))
    return RuleRequest(matcher, _reason(fields), _expires(fields, now))


def parse_suspend_ready(body: Any, now: float) -> ReadyRuleRequest:
    """`SuspendReadyQueueV1Request`: `name` (our ready queue name is the site name)."""
    fields = _object(body)
    name = fields.get("name")
    if not isinstance(name, str):
        raise RequestError("name: required, the name of a ready queue")
    return ReadyRuleRequest(name, _reason(fields), _expires(fields, now))


def parse_cancel(body: Any) -> str:
    """`{"id": "<uuid>"}` of a DELETE; the id lowercased as we hand them out."""
    rule_id = _object(body).get("id")
    if not isinstance(rule_id, str) or not _UUID.fullmatch(rule_id):
        raise RequestError("id: required, the id (a UUID) the rule was created with")
    return rule_id.lower()


def parse_bool(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name, "false")
    if value not in ("true", "false"):
        raise RequestError(f"{name}: expected true or false, got {value!r}")
    return value == "true"


def parse_limit(query: Mapping[str, str]) -> int | None:
    value = query.get("limit")
    if value is None:
        return None
    if not value.isascii() or not value.isdigit():
        raise RequestError(f"limit: expected a whole number of messages, got {value!r}")
    # More digits than any queue has messages means no limit (and spares int() its limit).
    return int(value) if len(value) <= MAX_LIMIT_DIGITS else None


def required_param(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    if value is None:
        raise RequestError(f"{name}: required query parameter")
    return value


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise RequestError("request body: expected a JSON object")
    return body


def _optional_string(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise RequestError(f"{name}: expected a string")
    return value


def _string_list(fields: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = fields.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestError(f"{name}: expected an array of strings")
    return tuple(value)


def _reason(fields: Mapping[str, Any]) -> str:
    reason = fields.get("reason")
    if not isinstance(reason, str):
        raise RequestError("reason: required, a string saying why (it is logged)")
    return reason


def _expires(fields: Mapping[str, Any], now: float) -> float:
    """`expires` (RFC 3339) wins over `duration`, as in KumoMTA; "5m" when neither is given."""
    duration = _duration(fields.get("duration"))  # checked even when expires wins
    expires = fields.get("expires")
    when = now + duration if expires is None else _rfc3339_seconds(expires)
    return min(when, now + MAX_RULE_SECONDS)


def _duration(value: Any) -> float:
    if value is None:
        return DEFAULT_DURATION_SECONDS
    if isinstance(value, str):
        if not _DURATION.fullmatch(value.strip()):
            raise RequestError(f'duration: {value!r} is not a duration such as "30s" or "20m"')
        value = re.sub(r"\s+", "", value)
    try:
        seconds = float(parse_duration(value))
    except ValueError as exc:
        raise RequestError(f"duration: {exc}") from exc
    # A number too long for a float ("1e400" digit by digit) is just a very long duration.
    return seconds if math.isfinite(seconds) else MAX_RULE_SECONDS


def _rfc3339_seconds(value: Any) -> float:
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if match is None:
        raise RequestError('expires: expected an RFC 3339 time such as "2030-01-31T12:00:00Z"')
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    if day > calendar.monthrange(max(year, 1), month)[1]:
        raise RequestError(f"expires: {value!r} is not a valid date")
    # timegm does plain arithmetic: no overflow near year 9999 nor for big offsets.
    whole = calendar.timegm((max(year, 1), month, day, hour, minute, second))
    seconds = whole + float(match[7] or 0)
    if match[9]:
        offset = int(match[10]) * 3600 + int(match[11]) * 60
        seconds -= offset if match[9] == "+" else -offset
    return seconds


# -- answers -----------------------------------------------------------------------------


def rfc3339(seconds: float) -> str:
    """An epoch time as KumoMTA writes `DateTime<Utc>`: "2024-05-01T12:00:00.123Z"."""
    when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def format_duration(seconds: float) -> str:
    """Humantime style, as KumoMTA's `duration_serde`: "4m 59s 998ms", "0s" for nothing."""
    millis = max(0, round(seconds * 1000))
    whole, ms = divmod(millis, 1000)
    parts = []
    for unit, size in _DURATION_UNITS:
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return " ".join(parts) or "0s"


def rule_created(rule: AdminRule, *, with_counts: bool = False) -> dict[str, Any]:
    """`BounceV1Response` (`with_counts`) or `SuspendV1Response`."""
    if not with_counts:
        return {"id": rule.id}
    return {"id": rule.id, "bounced": dict(rule.bounced), "total_bounced": rule.total_bounced}


def bounce_entry(rule: AdminRule, now: float) -> dict[str, Any]:
    """`BounceV1ListEntry`, plus `queue_names`."""
    return {
        **_criteria(rule),
        "reason": rule.reason,
        "duration": _remaining(rule, now),
        "bounced": dict(rule.bounced),
        "total_bounced": rule.total_bounced,
    }


def suspend_entry(rule: AdminRule, now: float) -> dict[str, Any]:
    """`SuspendV1ListEntry`, plus `routing_domain` and `queue_names`."""
    return {**_criteria(rule), "reason": rule.reason, "duration": _remaining(rule, now)}


def ready_entry(rule: AdminRule, now: float) -> dict[str, Any]:
    """`SuspendReadyQueueV1ListEntry`."""
    return {
        "id": rule.id,
        "name": rule.name,
        "reason": rule.reason,
        "duration": _remaining(rule, now),
        "expires": rfc3339(rule.expires),
    }


def _criteria(rule: AdminRule) -> dict[str, Any]:
    matcher = rule.matcher
    return {
        "id": rule.id,
        "campaign": matcher.campaign,
        "tenant": matcher.tenant,
        "domain": matcher.domain,
        "routing_domain": matcher.routing_domain,
        "queue_names": list(matcher.queue_names),
    }


def _remaining(rule: AdminRule, now: float) -> str:
    return format_duration(rule.remaining(now))
