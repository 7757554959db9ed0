"""What traffic-shaping automation produces, and its JSON wire shapes.

The shapes follow KumoMTA's tsa-daemon (``kumo_api_types::tsa``):

- a ready-queue suspension ``{"rule_hash", "site_name", "source", "reason", "expires"}``;
- a scheduled-queue suspension ``{"rule_hash", "domain", "tenant", "campaign", "reason",
  "expires"}``;
- a scheduled-queue bounce, the same fields as the suspension (tenant may be null);
- a configuration override (ours: KumoMTA only publishes them as shaping.toml):
  ``{"rule_hash", "domain", "site_name", "source", "mx_rollup", "option", "value",
  "reason", "expires"}``; ``value`` is spelled as in shaping.toml (``"1/m"``, ``"90s"``,
  ``5``, ``true``, or a table for the ``additional_*`` options).

``expires`` is an RFC 3339 UTC time on the wire (``"2026-11-22T17:30:00.250000Z"``, as
KumoMTA's chrono serializes it) and unix seconds in the dataclasses; ``from_json`` also
accepts a number of unix seconds.

Websocket messages of ``/subscribe_event_v1`` wrap one event in a one-key object named for
its kind, as KumoMTA's ``SubscriptionItem``: ``{"ReadyQSuspension": {...}}``,
``{"SchedQSuspension": {...}}``, ``{"SchedQBounce": {...}}``, and our
``{"ConfigOverride": {...}}``. Receivers ignore kinds they do not know
(:func:`message_to_event` returns None), so either side can grow new kinds.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Self, TypeAlias

import orjson

UNSPECIFIED_SOURCE: Final = "unspecified"  # KumoMTA's name for "no egress source"
JsonDict: TypeAlias = dict[str, Any]


class EventFormatError(ValueError):
    """A JSON event or message that does not have the expected shape."""


def format_expires(unix_seconds: float) -> str:
    """RFC 3339 UTC with microseconds and a ``Z``."""
    moment = datetime.datetime.fromtimestamp(unix_seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_expires(value: object) -> float:
    """Unix seconds from an RFC 3339 string (or a number of unix seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise EventFormatError(f"expires: expected an RFC 3339 time, got {value!r}")
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise EventFormatError(f"expires: not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise EventFormatError(f"{key}: expected a string, got {value!r}")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise EventFormatError(f"{key}: expected a string or null, got {value!r}")
    return value


def _common(data: Mapping[str, Any]) -> JsonDict:
    return {
        "rule_hash": _text(data, "rule_hash"),
        "reason": _text(data, "reason"),
        "expires": parse_expires(data.get("expires")),
    }


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Event:
    rule_hash: str  # stable id of the rule (and action) that made this event
    reason: str  # why, including the response that matched
    expires: float  # unix seconds

    KIND: ClassVar[str] = ""

    def key(self) -> tuple[object, ...]:
        """What this event is about, without reason or expiry: an event with the same
        key and a later expiry extends an active one."""
        fields = (f.name for f in dataclasses.fields(self) if f.name not in ("reason", "expires"))
        return (self.KIND, *(getattr(self, name) for name in fields))

    def to_json(self) -> JsonDict:
        """A JSON-able dict (``expires`` as RFC 3339)."""
        data = dataclasses.asdict(self)
        data["expires"] = format_expires(self.expires)
        return data

    def with_expiry(self, expires: float, reason: str | None = None) -> Self:
        """A copy expiring at ``expires`` (and with ``reason`` when given)."""
        return dataclasses.replace(self, expires=expires, reason=reason or self.reason)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReadyQueueSuspension(_Event):
    """Suspend the ready queue(s) of ``site_name`` from ``source`` (action ``Suspend``)."""

    site_name: str
    source: str = UNSPECIFIED_SOURCE

    KIND: ClassVar[str] = "ReadyQSuspension"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReadyQueueSuspension:
        return cls(
            site_name=_text(data, "site_name"),
            source=_optional_text(data, "source") or UNSPECIFIED_SOURCE,
            **_common(data),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SchedQueueSuspension(_Event):
    """Suspend scheduled queues for ``domain`` of ``tenant`` (``SuspendTenant``: campaign
    None, every campaign of the tenant) or of one ``campaign`` (``SuspendCampaign``)."""

    domain: str
    tenant: str | None
    campaign: str | None = None

    KIND: ClassVar[str] = "SchedQSuspension"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SchedQueueSuspension:
        return cls(
            domain=_text(data, "domain"),
            tenant=_optional_text(data, "tenant"),
            campaign=_optional_text(data, "campaign"),
            **_common(data),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SchedQueueBounce(_Event):
    """Bounce what is queued (and what arrives) for ``domain``: all of it (``Bounce``), a
    tenant's (``BounceTenant``) or a campaign's (``BounceCampaign``); None = any."""

    domain: str
    tenant: str | None = None
    campaign: str | None = None

    KIND: ClassVar[str] = "SchedQBounce"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SchedQueueBounce:
        return cls(
            domain=_text(data, "domain"),
            tenant=_optional_text(data, "tenant"),
            campaign=_optional_text(data, "campaign"),
            **_common(data),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConfigOverride(_Event):
    """Set egress path ``option`` to ``value`` (shaping.toml spelling) for ``domain``:
    ``SetConfig`` applies to the whole site (``mx_rollup`` true), ``SetDomainConfig`` to
    the domain only. ``source`` None applies to every egress source."""

    domain: str
    site_name: str
    source: str | None
    mx_rollup: bool
    option: str
    value: Any

    KIND: ClassVar[str] = "ConfigOverride"

    def key(self) -> tuple[object, ...]:
        # The value is left out: a newer value for the same option replaces the older one.
        where = (self.domain, self.site_name, self.source, self.mx_rollup)
        return (self.KIND, self.rule_hash, *where, self.option)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConfigOverride:
        mx_rollup = data.get("mx_rollup")
        if not isinstance(mx_rollup, bool):
            raise EventFormatError(f"mx_rollup: expected true or false, got {mx_rollup!r}")
        if data.get("value") is None:
            raise EventFormatError("value: missing")
        return cls(
            domain=_text(data, "domain"),
            site_name=_text(data, "site_name"),
            source=_optional_text(data, "source"),
            mx_rollup=mx_rollup,
            option=_text(data, "option"),
            value=data["value"],
            **_common(data),
        )


AutomationEvent: TypeAlias = (
    ReadyQueueSuspension | SchedQueueSuspension | SchedQueueBounce | ConfigOverride
)
EVENT_TYPES: Final[Mapping[str, type[AutomationEvent]]] = {
    cls.KIND: cls
    for cls in (ReadyQueueSuspension, SchedQueueSuspension, SchedQueueBounce, ConfigOverride)
}


def event_from_json(kind: str, data: Mapping[str, Any]) -> AutomationEvent:
    """The event of ``kind`` (an :data:`EVENT_TYPES` name) from its JSON dict."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise EventFormatError(f"unknown event kind {kind!r}")
    if not isinstance(data, Mapping):
        raise EventFormatError(f"{kind}: expected an object, got {data!r}")
    return cls.from_json(data)


def event_to_message(event: AutomationEvent) -> str:
    """One websocket text message: ``{"<Kind>": {...}}``."""
    return orjson.dumps({event.KIND: event.to_json()}).decode()


def message_to_event(message: str | bytes | Mapping[str, Any]) -> AutomationEvent | None:
    """The event in a websocket message; None for a kind this version does not know.
    Raises EventFormatError for a malformed message."""
    if isinstance(message, str | bytes):
        try:
            message = orjson.loads(message)
        except orjson.JSONDecodeError as error:
            raise EventFormatError(f"not JSON: {error}") from None
    if not isinstance(message, Mapping) or len(message) != 1:
        raise EventFormatError(f"expected a one-key object, got {message!r}")
    ((kind, body),) = message.items()
    if kind not in EVENT_TYPES:
        return None
    return event_from_json(kind, body)
