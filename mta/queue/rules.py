"""Administrator rules: which scheduled queues a bounce or suspension applies to, and how long.

Matching follows KumoMTA (`kumod` `queue_name_multi_index.rs`): every criterion given must equal
the queue's part, a part the queue lacks never matches a criterion, no criterion at all matches
every queue, and `queue_names`, when given, takes precedence over the other criteria. A rule
with the same criteria as an active one replaces it (that is how a reason or an expiry is
updated). Rules live in memory only, as in KumoMTA: a restart forgets them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from mta.queue.ports import Key


@dataclass(frozen=True, slots=True)
class Matcher:
    """Criteria on a scheduled queue (`campaign:tenant@domain!routing_domain`).

    Domains compare case-insensitively (they are stored lowercased); tenant and campaign
    compare exactly, as in KumoMTA. `queue_names` is kept sorted, so that the same set of
    names is the same criteria.
    """

    domain: str | None = None
    routing_domain: str | None = None
    tenant: str | None = None
    campaign: str | None = None
    queue_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("domain", "routing_domain"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, value.lower().rstrip("."))
        object.__setattr__(self, "queue_names", tuple(sorted(set(self.queue_names))))

    @property
    def matches_everything(self) -> bool:
        return self == Matcher()

    def matches(
        self,
        *,
        queue: str,
        domain: str,
        tenant: str | None = None,
        campaign: str | None = None,
        routing_domain: str | None = None,
    ) -> bool:
        """True when a leg of scheduled queue `queue` with these parts falls under the rule."""
        if self.queue_names:
            return queue in self.queue_names
        wanted = (self.domain, self.routing_domain, self.tenant, self.campaign)
        routing = None if routing_domain is None else routing_domain.lower()
        actual = (domain.lower(), routing, tenant, campaign)
        return all(want is None or want == have for want, have in zip(wanted, actual, strict=True))


@dataclass(eq=False)
class AdminRule:
    """One bounce, suspension or ready-queue suspension, active until `expires` (epoch)."""

    id: str
    reason: str
    created: float
    expires: float
    matcher: Matcher = field(default_factory=Matcher)
    name: str = ""  # the ready queue of a ready-queue suspension
    suppress_logging: bool = False
    bounced: Counter[str] = field(default_factory=Counter)  # queue name -> legs bounced
    held: set[Key] = field(default_factory=set, repr=False)  # legs a suspension holds

    @property
    def criteria(self) -> Hashable:
        """What makes two rules the same rule (the later one replaces the earlier)."""
        return self.name or self.matcher

    @property
    def total_bounced(self) -> int:
        return sum(self.bounced.values())

    def remaining(self, now: float) -> float:
        return max(0.0, self.expires - now)


class RuleSet:
    """The active rules of one kind; expired rules vanish the next time the set is read."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rules: dict[str, AdminRule] = {}  # by id, in order of creation

    def __bool__(self) -> bool:
        return bool(self._rules)

    def add(self, rule: AdminRule) -> AdminRule | None:
        """Add `rule`; return the active rule with the same criteria that it replaced."""
        replaced = next((r for r in self.active() if r.criteria == rule.criteria), None)
        if replaced is not None:
            del self._rules[replaced.id]
        self._rules[rule.id] = rule
        return replaced

    def remove(self, rule_id: str) -> AdminRule | None:
        """Take an active rule out; None when there is none with this id (or it expired)."""
        self.active()
        return self._rules.pop(rule_id, None)

    def get(self, rule_id: str) -> AdminRule | None:
        rule = self._rules.get(rule_id)
        return rule if rule is not None and rule.expires > self._clock() else None

    def active(self) -> list[AdminRule]:
        """The rules in force now, oldest first; drops the expired ones."""
        now = self._clock()
        expired = [rule_id for rule_id, rule in self._rules.items() if rule.expires <= now]
        for rule_id in expired:
            del self._rules[rule_id]
        return list(self._rules.values())

    def matching(self, predicate: Callable[[AdminRule], bool]) -> AdminRule | None:
        """The active rule satisfying `predicate` that lasts longest (None if none does)."""
        if not self._rules:
            return None  # the common case: no rule at all, nothing to compute
        found = [rule for rule in self.active() if predicate(rule)]
        return max(found, key=lambda rule: rule.expires, default=None)
