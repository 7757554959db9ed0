"""Automation on a node: events (suspensions, bounces, config overrides) made by the rule
engine, either here from the node's own records (no TSA configured) or by TSA daemons for
the whole cluster, applied through the queue administration and the live shaping rules.

Applied suspensions and bounces are ordinary admin rules, so they show in the admin API and
the queue summary with their reason and expiry; overrides show as a shaping layer of their
own (`mta shaping resolve` and the summary's `shaping_overrides`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from mta.queue.admin import QueueAdmin
from mta.queue.rules import Matcher
from shaping.tsa import (
    AutomationEvent,
    ConfigOverride,
    ReadyQueueSuspension,
    SchedQueueBounce,
    SchedQueueSuspension,
)
from shaping.tsa.events import UNSPECIFIED_SOURCE
from shaping.tsa.state import AutomationState

from .rules import NodeRules

logger = logging.getLogger(__name__)

ACTED_ON: Final = frozenset({"TransientFailure", "Bounce"})
OVERRIDES_REFRESH: Final = 1.0  # seconds between checks for expired local overrides


class AutomationApplier:
    """Turns each event into an admin rule, once: the same event again (a TSA's backlog on
    reconnect, or a second TSA) changes nothing unless it expires later."""

    def __init__(
        self, admin: QueueAdmin, *, origin: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._admin = admin
        self._origin = origin  # "automation" or "TSA", in each rule's reason
        self._clock = clock
        self._applied: dict[tuple[object, ...], tuple[str, float]] = {}  # key -> rule id, end
        self._tasks: set[asyncio.Task[Any]] = set()
        self._overrides: dict[tuple[object, ...], ConfigOverride] = {}
        self.applied = 0  # events that made or extended a rule, for metrics

    def overrides(self) -> list[dict[str, Any]]:
        """The active shaping overrides, soonest expiry first (for the queue summary)."""
        now = self._clock()
        self._overrides = {k: e for k, e in self._overrides.items() if e.expires > now}
        active = sorted(self._overrides.values(), key=lambda event: event.expires)
        return [{"origin": self._origin, **event.to_json()} for event in active]

    def apply(self, event: AutomationEvent) -> None:
        now = self._clock()
        if isinstance(event, ConfigOverride):
            # The rules take overrides as shaping TOML (NodeRules.set_overrides); kept here
            # to be listed.
            known_override = self._overrides.get(event.key())
            if event.expires > now and (
                known_override is None or known_override.expires < event.expires
            ):
                self._overrides[event.key()] = event
            return
        self._applied = {k: v for k, v in self._applied.items() if v[1] > now}
        key = event.key()
        known = self._applied.get(key)
        if event.expires <= now or (known is not None and known[1] >= event.expires):
            return
        reason = f"{self._origin}: {event.reason}"
        rule_id = self._make_rule(event, reason, known[0] if known else None)
        self._applied[key] = (rule_id, event.expires)
        self.applied += 1

    def _make_rule(self, event: AutomationEvent, reason: str, previous: str | None) -> str:
        admin = self._admin
        if isinstance(event, ReadyQueueSuspension):
            if previous is not None:
                admin.cancel_ready_suspension(previous)
            name = event.site_name  # with a source: its ready queue "source->site"
            if event.source != UNSPECIFIED_SOURCE:
                name = f"{event.source}->{name}"
            return admin.suspend_ready(name, reason=reason, expires=event.expires).id
        assert isinstance(event, SchedQueueSuspension | SchedQueueBounce)
        matcher = Matcher(domain=event.domain, tenant=event.tenant, campaign=event.campaign)
        if isinstance(event, SchedQueueSuspension):
            if previous is not None:
                admin.cancel_suspension(previous)
            return admin.suspend(matcher, reason=reason, expires=event.expires).id
        if previous is not None:
            admin.cancel_bounce(previous)
        rule = admin.new_bounce_rule(matcher, reason=reason, expires=event.expires)
        task = asyncio.get_running_loop().create_task(admin.apply_bounce(rule))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return rule.id


class LocalAutomation:
    """The rule engine run on this node's own records (no TSA configured)."""

    def __init__(self, rules: NodeRules, applier: AutomationApplier) -> None:
        self._rules = rules
        self._applier = applier
        self.state = AutomationState(lambda: rules.live.rules)

    def observe(self, record: dict[str, Any]) -> None:
        """A RecordLog listener: cheap for records the engine does not act on."""
        if record.get("type") not in ACTED_ON:
            return
        events = self.state.observe(record)
        for event in events:
            self._applier.apply(event)
        if any(isinstance(event, ConfigOverride) for event in events):
            self.refresh_overrides()

    def refresh_overrides(self) -> None:
        self._rules.set_overrides(self.state.shaping_toml())

    async def expire_overrides(self) -> None:
        """Drop overrides when they expire (the rules are reloaded only if they changed)."""
        while True:
            await asyncio.sleep(OVERRIDES_REFRESH)
            if self.state.overrides():
                self.refresh_overrides()
            elif self._rules.overrides:
                self._rules.set_overrides("")
