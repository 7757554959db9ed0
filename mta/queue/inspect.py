"""Read-only views of the queues for the admin API: messages, scheduled queues, ready queues.

A leg is in exactly one place: waiting in its scheduled queue (for its time, or for a promoter),
waiting in the ready queue of its site, or being attempted ("in flight"). The shapes follow
KumoMTA's `InspectMessageV1Response`, `InspectQueueV1Response` and `ReadyQueueStateResponse`;
the queue summary is ours, shaped like Postfix's `qshape` (counts by age).
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mta.queue.admin_api import format_duration, rfc3339
from mta.queue.manager import QueueManager
from mta.queue.meta import Leg, Meta, record_meta
from mta.queue.ports import Key
from mta.queue.rules import AdminRule

# qshape's age buckets, in minutes: each twice the one before.
AGE_BUCKET_MINUTES = (5, 10, 20, 40, 80, 160, 320, 640, 1280)
AGE_BUCKETS = (
    "0-5m",
    *(f"{low}-{high}m" for low, high in itertools.pairwise(AGE_BUCKET_MINUTES)),
    f"{AGE_BUCKET_MINUTES[-1]}m+",
)
SUSPENDED_STATE = "suspended"  # a ready-queue state name, with KumoMTA's QueueState shape


def age_bucket(age_seconds: float) -> str:
    """The qshape bucket of a message `age_seconds` old (a negative age counts as new)."""
    return AGE_BUCKETS[bisect.bisect_right(AGE_BUCKET_MINUTES, age_seconds / 60)]


@dataclass
class _Tally:
    """Counts of one queue for the summary."""

    count: int = 0
    recipients: int = 0
    oldest: float | None = None
    next_due: float | None = None
    in_flight: int = 0
    ages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AGE_BUCKETS, 0))

    def add(self, meta: Meta, leg: Leg, now: float, due: float | None) -> None:
        self.count += 1
        self.recipients += len(leg["rcpts"])
        self.ages[age_bucket(now - meta["created"])] += 1
        self.oldest = _earliest(self.oldest, meta["created"])
        self.next_due = _earliest(self.next_due, due)

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "recipients": self.recipients,
            "oldest": _time(self.oldest),
            "next_due": _time(self.next_due),
            "ages": self.ages,
        }


class QueueInspector:
    """Builds the inspection answers from a queue manager's read-only views."""

    def __init__(self, queue: QueueManager) -> None:
        self._queue = queue

    def message(self, msg_id: str, *, want_body: bool) -> dict[str, Any] | None:
        """`InspectMessageV1Response`, plus `created` and `queues` (one entry per leg)."""
        meta = self._queue.messages.get(msg_id)
        if meta is None:
            return None
        legs = [((msg_id, domain), leg) for domain, leg in meta["legs"].items()]
        info = self._information(msg_id, meta, legs, want_body)
        info["created"] = rfc3339(meta["created"])
        places = self._places()
        info["queues"] = [self._leg_entry(key, leg, places) for key, leg in legs]
        return {"id": msg_id, "message": info}

    def scheduled_queue(
        self, name: str, *, want_body: bool, limit: int | None, now: float
    ) -> dict[str, Any] | None:
        """`InspectQueueV1Response` for the legs waiting in scheduled queue `name`."""
        places = self._places()
        legs = [(key, leg) for key, _meta, leg in self._legs() if leg["queue"] == name]
        if not legs:
            return None
        waiting = sorted(
            ((key, leg) for key, leg in legs if key not in places), key=lambda kl: self._due(*kl)
        )
        return {
            "queue_name": name,
            "messages": [self._sample(key, leg, want_body) for key, leg in waiting[:limit]],
            "num_scheduled": len(waiting),
            "queue_config": self._queue_config(),
            "delayed_metric": sum(1 for key, leg in waiting if self._due(key, leg) > now),
            "now": rfc3339(now),
            "last_changed": rfc3339(self._queue.last_change(name) or now),
        }

    def ready_states(
        self, rules: Iterable[AdminRule], names: Collection[str] = ()
    ) -> dict[str, Any]:
        """`ReadyQueueStateResponse`, plus `counts_by_ready_queue` (waiting, in flight)."""
        suspended = {rule.name: rule for rule in rules}
        located = Counter(self._places().values())  # (ready queue, attempted) -> legs
        states: dict[str, Any] = {}
        counts: dict[str, Any] = {}
        for name in self._queue.ready_queue_map:
            if names and name not in names:
                continue
            counts[name] = {"ready_count": located[name, False], "in_flight": located[name, True]}
            rule = suspended.get(name)
            if rule is not None:
                state = {"context": rule.reason, "since": rfc3339(rule.created)}
                states[name] = {SUSPENDED_STATE: state}
        return {"states_by_ready_queue": states, "counts_by_ready_queue": counts}

    def summary(self, now: float, suspended: Collection[str]) -> dict[str, Any]:
        """Per scheduled and ready queue: count, recipients, oldest, next due, counts by age.

        Suspended ready queues are listed even when empty, so that a suspension shows.
        """
        scheduled: dict[str, _Tally] = {}
        ready: dict[str, _Tally] = {name: _Tally() for name in suspended}
        total = _Tally()
        places = self._places()
        for key, meta, leg in self._legs():
            place = places.get(key)
            if place is None:
                tally = scheduled.setdefault(leg["queue"], _Tally())
                tally.add(meta, leg, now, self._due(key, leg))
            else:
                tally = ready.setdefault(place[0], _Tally())
                tally.add(meta, leg, now, None)
                tally.in_flight += place[1]
            total.add(meta, leg, now, None)
        return {
            "now": rfc3339(now),
            "buckets": list(AGE_BUCKETS),
            "scheduled": {name: tally.as_json() for name, tally in sorted(scheduled.items())},
            "ready": {name: _ready_json(t, name in suspended) for name, t in sorted(ready.items())},
            "total": {"count": total.count, "recipients": total.recipients, "ages": total.ages},
        }

    # -- helpers -----------------------------------------------------------------------------

    def _legs(self) -> Iterator[tuple[Key, Meta, Leg]]:
        for msg_id, meta in self._queue.messages.items():
            for domain, leg in meta["legs"].items():
                yield (msg_id, domain), meta, leg

    def _places(self) -> dict[Key, tuple[str, bool]]:
        """Legs bound to a ready queue: key -> (ready queue name, being attempted)."""
        places: dict[Key, tuple[str, bool]] = {}
        for name, ready in self._queue.ready_queue_map.items():
            places.update((key, (name, False)) for key in ready if self._exists(key))
        for key, site in self._queue.handling.items():
            if site is not None:
                places[key] = (site, True)
        return places

    def _exists(self, key: Key) -> bool:
        # A ready queue may still hold the key of a leg an administrator bounced.
        meta = self._queue.messages.get(key[0])
        return meta is not None and key[1] in meta["legs"]

    def _due(self, key: Key, leg: Leg) -> float:
        """When the leg is next considered: its scheduler entry (a suspension may hold it
        longer than its stored due time) or, out of the scheduler, its stored due time."""
        entry = self._queue.scheduled(key)
        return leg["due"] if entry is None else entry.due

    def _information(
        self, msg_id: str, meta: Meta, legs: list[tuple[Key, Leg]], want_body: bool
    ) -> dict[str, Any]:
        """KumoMTA's `MessageInformation` for some legs of a message."""
        rcpts = [rcpt for _, leg in legs for rcpt in leg["rcpts"]]
        info: dict[str, Any] = {
            "sender": meta["sender"],
            "recipient": rcpts[0] if len(rcpts) == 1 else rcpts,
            "meta": {
                **record_meta(meta),
                "received_from": meta.get("peer"),
                "reception_protocol": meta.get("reception_protocol"),
            },
            "data": self._body(msg_id) if want_body else None,
        }
        if legs:
            info["due"] = rfc3339(min(self._due(key, leg) for key, leg in legs))
            info["num_attempts"] = max(leg["attempts"] for _, leg in legs)
        return info

    def _sample(self, key: Key, leg: Leg, want_body: bool) -> dict[str, Any]:
        meta = self._queue.messages[key[0]]
        return {"id": key[0], "message": self._information(key[0], meta, [(key, leg)], want_body)}

    def _leg_entry(self, key: Key, leg: Leg, places: dict[Key, tuple[str, bool]]) -> dict[str, Any]:
        place = places.get(key)
        state = "scheduled" if place is None else "in_flight" if place[1] else "ready"
        return {
            "queue_name": leg["queue"],
            "recipients": list(leg["rcpts"]),
            "due": rfc3339(self._due(key, leg)),
            "num_attempts": leg["attempts"],
            "last_reply": leg.get("last_reply"),
            "state": state,
            "ready_queue": None if place is None else place[0],
        }

    def _body(self, msg_id: str) -> str:
        # Like KumoMTA: the bytes as UTF-8, invalid sequences replaced.
        return self._queue.body(msg_id).decode("utf-8", "replace")

    def _queue_config(self) -> dict[str, Any]:
        config = self._queue.queue_config
        return {
            "retry_interval": format_duration(config.retry_interval),
            "max_retry_interval": format_duration(config.max_retry_interval),
            "max_age": format_duration(config.max_age),
        }


def _ready_json(tally: _Tally, suspended: bool) -> dict[str, Any]:
    answer = tally.as_json()
    del answer["next_due"]  # everything in a ready queue is due already
    return {**answer, "in_flight": tally.in_flight, "suspended": suspended}


def _earliest(current: float | None, value: float | None) -> float | None:
    if value is None:
        return current
    return value if current is None else min(current, value)


def _time(value: float | None) -> str | None:
    return None if value is None else rfc3339(value)
