"""Queue administration, as KumoMTA's admin API: bounce, suspend, suspend a ready queue, inspect.

- A bounce removes every queued leg that matches now (one `AdminBounce` record per recipient
  unless logging is suppressed; no DSN, as KumoMTA), and while it lasts every matching leg met
  on its way: when promoted, when a worker takes it, and when it comes back for a retry. So a
  leg in flight when the bounce is made is bounced if (and only if) its attempt leaves it
  queued, which is what KumoMTA does; what its attempt delivered stays delivered.
- A suspension holds matching legs in their scheduled queue until it ends: each hold logs a
  `TransientFailure` "451 4.4.4 scheduled queue is suspended: <reason>" (as KumoMTA) and is not
  a delivery attempt. Cancelling the suspension makes the held legs due at once.
- A ready-queue suspension stops new attempts from that ready queue; attempts in flight finish.

Rules expire by themselves and live in memory only, as in KumoMTA: a restart forgets them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Collection
from typing import Any

from mta.logs import RecordLog
from mta.queue.admin_api import rfc3339
from mta.queue.events import QueueEvents
from mta.queue.inspect import QueueInspector
from mta.queue.manager import QueueManager
from mta.queue.ports import Key
from mta.queue.rules import AdminRule, Matcher, RuleSet
from mta.replies import S451_SCHEDULED_SUSPENDED, Reply

logger = logging.getLogger(__name__)

S551_ADMIN_BOUNCE = Reply(551, "5.7.1", "Administrator bounced with reason")  # KumoMTA's reply


class QueueAdmin:
    """The administrator's rules over one queue manager, and views of its queues.

    Registers itself with `queue` (`set_admin`). Call it from the event loop's thread.
    """

    def __init__(
        self, queue: QueueManager, records: RecordLog, clock: Callable[[], float] = time.time
    ) -> None:
        self._queue = queue
        self._events = QueueEvents(records)
        self._clock = clock
        self._inspector = QueueInspector(queue)
        self._bounces = RuleSet(clock)
        self._suspensions = RuleSet(clock)
        self._ready = RuleSet(clock)
        self._timers: dict[str, asyncio.TimerHandle] = {}  # ready rule id -> its end
        # More state shown in the summary, e.g. shaping overrides made by automation.
        self.summary_sections: dict[str, Callable[[], Any]] = {}
        queue.set_admin(self)

    def now(self) -> float:
        """The time by this admin's clock (rules expire by it)."""
        return self._clock()

    # -- bounce ----------------------------------------------------------------------------

    async def bounce(
        self, matcher: Matcher, *, reason: str, expires: float, suppress_logging: bool = False
    ) -> AdminRule:
        """Bounce every queued leg that matches, and new matches until `expires`.

        The first sweep happens even when `expires` is already past: a one-time bounce.
        """
        rule = self.new_bounce_rule(
            matcher, reason=reason, expires=expires, suppress_logging=suppress_logging
        )
        await self.apply_bounce(rule)
        return rule

    def new_bounce_rule(
        self, matcher: Matcher, *, reason: str, expires: float, suppress_logging: bool = False
    ) -> AdminRule:
        """Make a bounce rule active for legs met from now on (see `apply_bounce`)."""
        rule = self._new_rule(reason, expires, matcher=matcher, suppress_logging=suppress_logging)
        self._bounces.add(rule)
        logger.warning("admin bounce %s of %s: %s", rule.id, _describe(matcher), reason)
        return rule

    async def apply_bounce(self, rule: AdminRule) -> None:
        """Bounce the legs queued now that `rule` matches."""
        for msg_id, meta in list(self._queue.messages.items()):
            for domain in list(meta["legs"]):
                key = (msg_id, domain)
                if key not in self._queue.handling and self._matches(rule, key):
                    await self._bounce_leg(rule, key)

    def bounces(self) -> list[AdminRule]:
        return self._bounces.active()

    def cancel_bounce(self, rule_id: str) -> bool:
        return self._bounces.remove(rule_id) is not None

    # -- suspend scheduled queues ----------------------------------------------------------

    def suspend(self, matcher: Matcher, *, reason: str, expires: float) -> AdminRule:
        """Hold matching legs in their scheduled queues until `expires`."""
        rule = self._new_rule(reason, expires, matcher=matcher)
        replaced = self._suspensions.add(rule)
        if replaced is not None:
            self._release(replaced)
        logger.warning("admin suspension %s of %s: %s", rule.id, _describe(matcher), reason)
        return rule

    def suspensions(self) -> list[AdminRule]:
        return self._suspensions.active()

    def cancel_suspension(self, rule_id: str) -> bool:
        rule = self._suspensions.remove(rule_id)
        if rule is not None:
            self._release(rule)
        return rule is not None

    def _release(self, rule: AdminRule) -> None:
        for key in rule.held:
            self._queue.release(key, rule.expires)
        rule.held.clear()

    # -- suspend ready queues --------------------------------------------------------------

    def suspend_ready(self, name: str, *, reason: str, expires: float) -> AdminRule:
        """No new attempts from ready queue `name` (a site name) until `expires`."""
        rule = self._new_rule(reason, expires, name=name)
        replaced = self._ready.add(rule)
        if replaced is not None:
            self._end_timer(replaced)
        delay = rule.remaining(self._clock())
        if delay > 0:
            self._queue.set_ready_suspended(name, True)
            loop = asyncio.get_running_loop()
            self._timers[rule.id] = loop.call_later(delay, self._ready_expired, rule)
        logger.warning("admin suspension %s of ready queue %s: %s", rule.id, name, reason)
        return rule

    def ready_suspensions(self) -> list[AdminRule]:
        return self._ready.active()

    def cancel_ready_suspension(self, rule_id: str) -> bool:
        rule = self._ready.remove(rule_id)
        if rule is not None:
            self._end_timer(rule)
            self._resume_if_free(rule.name)
        return rule is not None

    def _ready_expired(self, rule: AdminRule) -> None:
        # The loop's timer and our clock may disagree by a hair: the timer decides.
        self._timers.pop(rule.id, None)
        self._ready.remove(rule.id)
        self._resume_if_free(rule.name)

    def _end_timer(self, rule: AdminRule) -> None:
        timer = self._timers.pop(rule.id, None)
        if timer is not None:
            timer.cancel()

    def _resume_if_free(self, name: str) -> None:
        if not self.ready_suspended(name):
            self._queue.set_ready_suspended(name, False)

    # -- the gate the queue manager consults (mta.queue.ports.AdminGate) -------------------

    async def take(self, key: Key) -> bool:
        """At promotion and dispatch: bounce or hold the leg when a rule matches it."""
        if await self.take_requeued(key):
            return True
        rule = self._suspensions.matching(lambda rule: self._matches(rule, key))
        if rule is None:
            return False
        self._hold(rule, key)
        return True

    async def take_requeued(self, key: Key) -> bool:
        """Before a retry is scheduled: bounce the leg when a bounce rule matches it."""
        rule = self._bounces.matching(lambda rule: self._matches(rule, key))
        if rule is None:
            return False
        await self._bounce_leg(rule, key)
        return True

    def ready_suspended(self, name: str) -> bool:
        return self._ready.matching(lambda rule: rule.name == name) is not None

    # -- inspection ------------------------------------------------------------------------

    def inspect_message(self, msg_id: str, *, want_body: bool) -> dict[str, Any] | None:
        """KumoMTA's inspect-message answer; None when no such message is queued."""
        return self._inspector.message(msg_id, want_body=want_body)

    def ready_queue_states(self, queues: Collection[str] = ()) -> dict[str, Any]:
        """KumoMTA's ready-q-states answer (all ready queues, or those named), with counts."""
        return self._inspector.ready_states(self._ready.active(), queues)

    def inspect_scheduled_queue(
        self, name: str, *, want_body: bool, limit: int | None
    ) -> dict[str, Any] | None:
        """KumoMTA's inspect-sched-q answer; None when nothing is queued under `name`."""
        now = self._clock()
        return self._inspector.scheduled_queue(name, want_body=want_body, limit=limit, now=now)

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """Per scheduled and ready queue: counts, oldest, next due and qshape age buckets;
        then the rules in force (with reason and expiry) and any extra `summary_sections`."""
        now = self._clock() if now is None else now
        suspended = {rule.name for rule in self._ready.active()}
        answer = self._inspector.summary(now, suspended)
        answer["rules"] = [
            _rule_json(kind, rule)
            for kind, rules in (
                ("ready_suspension", self._ready),
                ("suspension", self._suspensions),
                ("bounce", self._bounces),
            )
            for rule in rules.active()
        ]
        for name, section in self.summary_sections.items():
            answer[name] = section()
        return answer

    # -- helpers ---------------------------------------------------------------------------

    def _new_rule(self, reason: str, expires: float, **fields: Any) -> AdminRule:
        return AdminRule(str(uuid.uuid4()), reason, self._clock(), expires, **fields)

    def _matches(self, rule: AdminRule, key: Key) -> bool:
        meta = self._queue.messages.get(key[0])
        leg = None if meta is None else meta["legs"].get(key[1])
        if meta is None or leg is None:
            return False
        return rule.matcher.matches(
            queue=leg["queue"],
            domain=key[1],
            tenant=meta.get("tenant"),
            campaign=meta.get("campaign"),
            routing_domain=meta.get("routing_domain"),
        )

    async def _bounce_leg(self, rule: AdminRule, key: Key) -> None:
        meta = self._queue.messages[key[0]]
        leg = meta["legs"][key[1]]
        if not rule.suppress_logging:
            reply = S551_ADMIN_BOUNCE.with_text(f"{S551_ADMIN_BOUNCE.text}: {rule.reason}")
            for rcpt in leg["rcpts"]:
                self._events.admin_bounce(key[0], meta, leg, rcpt, reply)
        rule.bounced[leg["queue"]] += 1
        await self._queue.drop_leg(key)

    def _hold(self, rule: AdminRule, key: Key) -> None:
        meta = self._queue.messages[key[0]]
        leg = meta["legs"][key[1]]
        reply = S451_SCHEDULED_SUSPENDED.with_text(
            f"{S451_SCHEDULED_SUSPENDED.text}: {rule.reason}"
        )
        for rcpt in leg["rcpts"]:
            self._events.suspended(key[0], meta, leg, rcpt, reply)
        self._queue.hold(key, rule.expires)
        rule.held.add(key)


def _rule_json(kind: str, rule: AdminRule) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": rule.id,
        "target": rule.name or _describe(rule.matcher),
        "reason": rule.reason,
        "expires": rfc3339(rule.expires),
    }


def _describe(matcher: Matcher) -> str:
    if matcher.matches_everything:
        return "ALL queues"
    given = ((f.name, getattr(matcher, f.name)) for f in dataclasses.fields(matcher))
    return ", ".join(f"{name}={value}" for name, value in given if value)
