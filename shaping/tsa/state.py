"""The automation engine: log records in, suspensions, bounces and overrides out.

Pure logic (no I/O, no HTTP): the TSA daemon runs it for a cluster, and a node without
a TSA runs it in process. For each ``TransientFailure`` / ``Bounce`` record, the rules
that apply to the record's destination (``Rules.resolve(...).automation``) are tried in
order; a rule whose regex matches ``"<code> <enhanced> <content>"`` (internal responses
only with ``match_internal``, see :mod:`.records`) triggers at once (``Immediate``) or on
the Nth match within a period (``Threshold``), and then every one of its actions makes an
event expiring ``duration`` after the record's timestamp (as KumoMTA's tsa-daemon does,
so replicas fed the same stream agree). An event about something already active extends
it when it expires later; otherwise it changes nothing and is not reported.

Actions that need a tenant (``SuspendTenant``, ``BounceTenant``) or a campaign
(``SuspendCampaign``, ``BounceCampaign``) do nothing for records without one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from ..automation import Action, AutomationRule
from ..loader import Origin
from ..rules import Rules
from .events import (
    EVENT_TYPES,
    AutomationEvent,
    ConfigOverride,
    EventFormatError,
    ReadyQueueSuspension,
    SchedQueueBounce,
    SchedQueueSuspension,
    event_from_json,
)
from .records import Observation, observe_record
from .render import raw_option_value, render_overrides
from .triggers import MatchCounters

SNAPSHOT_VERSION: Final = 1
Clock = Callable[[], float]
EventKey = tuple[object, ...]


def rule_hash(rule: AutomationRule) -> str:
    """A stable id of a rule: sha256 of its content (not of where it is written, so that
    every replica and node computes the same id for the same rule)."""
    body = {
        "regex": [pattern.pattern for pattern in rule.regex],
        "actions": [
            [a.kind, a.name, raw_option_value(a.name or "", a.value)] for a in rule.actions
        ],
        "duration": rule.duration,
        "threshold": str(rule.threshold) if rule.threshold else None,
        "match_internal": rule.match_internal,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class AutomationState:
    """Active events and threshold counters, fed with log records."""

    def __init__(self, rules_provider: Callable[[], Rules], clock: Clock = time.time) -> None:
        self._rules_provider = rules_provider
        self._clock = clock
        self._active: dict[EventKey, AutomationEvent] = {}
        self._counters = MatchCounters()
        self._sites: dict[str, str] = {}  # rollup domain -> its site, learned from records
        self._bound: tuple[Rules, dict[str, str], Rules] | None = None
        self.records_seen = 0  # every record given to observe()
        self.events_made = 0  # events reported by observe() (new or extended)

    def observe(self, record: Mapping[str, Any]) -> list[AutomationEvent]:
        """Feed one log record; the events it created or extended."""
        self.records_seen += 1
        now = self._clock()
        seen = observe_record(record, now)
        if seen is None:
            return []
        resolved = self._rules_for(seen).resolve(
            seen.domain, mx_hosts=seen.mx_hosts, source=seen.source_or_none,
            site_name=seen.site_name,
        )  # fmt: skip
        made: list[AutomationEvent] = []
        tried: set[str] = set()
        for rule, origin in resolved.automation:
            digest = rule_hash(rule)
            if digest not in tried:  # the same rule written twice counts once per record
                tried.add(digest)
                made.extend(self._try_rule(rule, digest, origin, seen, now))
        self.events_made += len(made)
        return made

    def add(self, event: AutomationEvent, now: float | None = None) -> bool:
        """Make ``event`` active (or extend the active one); whether anything changed."""
        now = self._clock() if now is None else now
        if event.expires <= now:
            return False
        current = self._active.get(event.key())
        if current is not None and current.expires > now and current.expires >= event.expires:
            return False
        self._active[event.key()] = event
        return True

    def active(self, now: float | None = None) -> list[AutomationEvent]:
        """Every active event, soonest expiry first (expired ones are dropped)."""
        now = self._clock() if now is None else now
        for key in [k for k, e in self._active.items() if e.expires <= now]:
            del self._active[key]
        self._counters.prune(now)
        return sorted(self._active.values(), key=lambda e: (e.expires, e.KIND, e.rule_hash))

    def counts(self, now: float | None = None) -> dict[str, int]:
        """Active events per kind (``ReadyQSuspension``, ...)."""
        found = dict.fromkeys(EVENT_TYPES, 0)
        for event in self.active(now):
            found[event.KIND] += 1
        return found

    def suspensions_json(self, now: float | None = None) -> dict[str, list[dict[str, Any]]]:
        """KumoMTA's ``suspended.json``: ``{"ready_q": [...], "sched_q": [...]}``."""
        active = self.active(now)
        return {
            "ready_q": [e.to_json() for e in active if isinstance(e, ReadyQueueSuspension)],
            "sched_q": [e.to_json() for e in active if isinstance(e, SchedQueueSuspension)],
        }

    def bounces_json(self, now: float | None = None) -> list[dict[str, Any]]:
        """KumoMTA's ``bounced.json``: a list of scheduled-queue bounces."""
        return [e.to_json() for e in self.active(now) if isinstance(e, SchedQueueBounce)]

    def overrides(self, now: float | None = None) -> list[ConfigOverride]:
        return [e for e in self.active(now) if isinstance(e, ConfigOverride)]

    def shaping_toml(self, now: float | None = None) -> str:
        """The active configuration overrides as shaping.toml text (see :mod:`.render`)."""
        return render_overrides(self.overrides(now))

    def to_snapshot(self) -> dict[str, Any]:
        """A JSON-able, versioned dict of the active events and threshold counters."""
        now = self._clock()
        return {
            "version": SNAPSHOT_VERSION,
            "saved_at": now,
            "records_seen": self.records_seen,
            "events": [{"kind": e.KIND, "event": e.to_json()} for e in self.active(now)],
            "counters": self._counters.to_json(),
        }

    @classmethod
    def from_snapshot(
        cls, snapshot: Mapping[str, Any], rules_provider: Callable[[], Rules],
        clock: Clock = time.time,
    ) -> AutomationState:  # fmt: skip
        """A state restored from :meth:`to_snapshot` output, without what has expired
        since; raises EventFormatError for a snapshot it cannot read."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise EventFormatError(f"unsupported snapshot version {snapshot.get('version')!r}")
        state = cls(rules_provider, clock)
        now = clock()
        state.records_seen = int(snapshot.get("records_seen", 0))
        for item in _list(snapshot, "events"):
            state.add(event_from_json(str(item.get("kind")), item.get("event", {})), now)
        try:
            state._counters.load_json(_list(snapshot, "counters"), now)
        except (KeyError, TypeError, ValueError) as error:
            raise EventFormatError(f"counters: {error!r}") from None
        return state

    def _rules_for(self, seen: Observation) -> Rules:
        """The rules, with the sites of rollup domains learned from records: a record for
        ``gmail.com`` at site S makes ``["gmail.com"]`` (``mx_rollup = true``) apply to
        every domain seen at S, as a node does after resolving the MX records (this
        engine does no DNS)."""
        rules = self._rules_provider()
        if seen.mx_hosts and seen.domain in rules.sites:
            self._sites[seen.domain] = seen.site_name
        if not self._sites:
            return rules
        if self._bound is None or self._bound[0] is not rules or self._bound[1] != self._sites:
            self._bound = (rules, dict(self._sites), rules.with_sites(self._sites))
        return self._bound[2]

    def _try_rule(
        self, rule: AutomationRule, digest: str, origin: Origin, seen: Observation, now: float
    ) -> list[AutomationEvent]:
        if not rule.matches(seen.response, internal=seen.internal):
            return []
        if rule.threshold is not None:
            key = (digest, seen.site_name, seen.source)
            if not self._counters.hit(key, seen.timestamp, now, rule.threshold):
                return []
        common = {
            "rule_hash": digest,
            "reason": _reason(rule, origin, seen),
            # milliseconds: an expiry survives its RFC 3339 spelling exactly
            "expires": round(seen.timestamp + rule.duration, 3),
        }
        made = (_event(action, seen, common) for action in rule.actions)
        return [event for event in made if event is not None and self.add(event, now)]


def _reason(rule: AutomationRule, origin: Origin, seen: Observation) -> str:
    patterns = ", ".join(pattern.pattern for pattern in rule.regex)
    return f"automation rule {origin} ({patterns}) matched: {seen.response}"


def _event(action: Action, seen: Observation, common: dict[str, Any]) -> AutomationEvent | None:
    return _MAKERS[action.kind](action, seen, common)


def _suspend(_: Action, seen: Observation, common: dict[str, Any]) -> AutomationEvent:
    return ReadyQueueSuspension(site_name=seen.site_name, source=seen.source, **common)


def _suspend_tenant(_: Action, seen: Observation, common: dict[str, Any]) -> AutomationEvent | None:
    if seen.tenant is None:
        return None
    return SchedQueueSuspension(domain=seen.domain, tenant=seen.tenant, campaign=None, **common)


def _suspend_campaign(
    _: Action, seen: Observation, common: dict[str, Any]
) -> AutomationEvent | None:
    if seen.campaign is None:
        return None
    return SchedQueueSuspension(
        domain=seen.domain, tenant=seen.tenant, campaign=seen.campaign, **common
    )


def _bounce(_: Action, seen: Observation, common: dict[str, Any]) -> AutomationEvent:
    return SchedQueueBounce(domain=seen.domain, **common)


def _bounce_tenant(_: Action, seen: Observation, common: dict[str, Any]) -> AutomationEvent | None:
    if seen.tenant is None:
        return None
    return SchedQueueBounce(domain=seen.domain, tenant=seen.tenant, **common)


def _bounce_campaign(
    _: Action, seen: Observation, common: dict[str, Any]
) -> AutomationEvent | None:
    if seen.campaign is None:
        return None
    return SchedQueueBounce(
        domain=seen.domain, tenant=seen.tenant, campaign=seen.campaign, **common
    )


def _set_config(action: Action, seen: Observation, common: dict[str, Any]) -> AutomationEvent:
    option = action.name or ""
    return ConfigOverride(
        domain=seen.domain,
        site_name=seen.site_name,
        source=seen.source_or_none,
        mx_rollup=action.kind == "SetConfig",  # SetDomainConfig: this domain only
        option=option,
        value=raw_option_value(option, action.value),
        **common,
    )


_MAKERS: Final[
    Mapping[str, Callable[[Action, Observation, dict[str, Any]], AutomationEvent | None]]
] = {
    "Suspend": _suspend,
    "SuspendTenant": _suspend_tenant,
    "SuspendCampaign": _suspend_campaign,
    "Bounce": _bounce,
    "BounceTenant": _bounce_tenant,
    "BounceCampaign": _bounce_campaign,
    "SetConfig": _set_config,
    "SetDomainConfig": _set_config,
}


def _list(snapshot: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = snapshot.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise EventFormatError(f"{key}: expected a list of objects")
    return items
