"""The `mta queue summary` table: Postfix-qshape-like counts per queue and per age bucket.

The answer (`mta.queue.inspect.QueueInspector.summary`) maps each scheduled and each ready
queue to its `count` (legs: one message for one destination domain), `recipients`, `oldest`,
`next_due` (scheduled only), `in_flight` and `suspended` (ready only) and `ages`, counts per
bucket named in `buckets` ("0-5m", "5-10m", ..., "1280m+"). Times are relative to its `now`,
so a skewed client clock does not matter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from mta.cli_format import cell_text, parse_time, relative, span, table

Queue = Mapping[str, Any]


def summary_text(answer: Any, now: dt.datetime) -> str:
    """The scheduled and the ready queues, TOTAL first as in qshape; a line if nothing waits."""
    if not isinstance(answer, Mapping):
        return cell_text(answer)
    now = parse_time(answer.get("now")) or now
    buckets = [str(name) for name in answer.get("buckets") or []]
    blocks = []
    scheduled = _queues(answer.get("scheduled"))
    if scheduled:
        blocks.append(_scheduled(scheduled, buckets, now))
    ready = _queues(answer.get("ready"))
    if ready:
        blocks.append(_ready(ready, buckets, now))
    text = "\n\n".join(blocks) or "no queued messages"
    return "\n\n".join([text, *_in_force(answer, now)])


def _in_force(answer: Mapping[str, Any], now: dt.datetime) -> list[str]:
    """Admin and automation rules, and shaping overrides, with reason and expiry."""
    blocks = []
    rules = [r for r in answer.get("rules") or [] if isinstance(r, Mapping)]
    if rules:
        rows = [[r.get("kind"), r.get("target"), _until(r, now), r.get("reason")] for r in rules]
        blocks.append(table(["RULE", "TARGET", "EXPIRES", "REASON"], rows))
    overrides = [o for o in answer.get("shaping_overrides") or [] if isinstance(o, Mapping)]
    if overrides:
        rows = [
            [o.get("site_name") or o.get("domain"), o.get("option"), o.get("value"),
             _until(o, now), o.get("reason")]
            for o in overrides
        ]  # fmt: skip
        blocks.append(table(["OVERRIDE", "OPTION", "VALUE", "EXPIRES", "REASON"], rows))
    return blocks


def _until(entry: Mapping[str, Any], now: dt.datetime) -> str | None:
    expires = entry.get("expires")
    return None if expires is None else relative(expires, now)


def bucket_label(name: str) -> str:
    """qshape labels a bucket by its upper bound: "5-10m" -> "10m"; "1280m+" stays."""
    return name.rpartition("-")[2]


def _queues(section: Any) -> dict[str, Queue]:
    if not isinstance(section, Mapping):
        return {}
    return {str(name): queue for name, queue in section.items() if isinstance(queue, Mapping)}


def _scheduled(queues: Mapping[str, Queue], buckets: Sequence[str], now: dt.datetime) -> str:
    headers = ["SCHEDULED QUEUE", "MSGS", "RCPTS", "OLDEST", "NEXT DUE"]
    rows = [
        [name, *_counts(q), _age(q, now), _due(q, now), *_ages(q, buckets)]
        for name, q in queues.items()
    ]
    total = ["TOTAL", *_sums(rows, 1, 3), _oldest(queues, now), _next_due(queues, now)]
    total += _sums(rows, 5, 5 + len(buckets))
    return table([*headers, *map(bucket_label, buckets)], [total, *rows])


def _ready(queues: Mapping[str, Queue], buckets: Sequence[str], now: dt.datetime) -> str:
    headers = ["READY QUEUE", "MSGS", "RCPTS", "OLDEST", "ACTIVE", "SUSPENDED"]
    rows = [
        [name, *_counts(q), _age(q, now), _int(q, "in_flight"), _suspended(q), *_ages(q, buckets)]
        for name, q in queues.items()
    ]
    total = ["TOTAL", *_sums(rows, 1, 3), _oldest(queues, now), *_sums(rows, 4, 5), None]
    total += _sums(rows, 6, 6 + len(buckets))
    return table([*headers, *map(bucket_label, buckets)], [total, *rows])


def _oldest(queues: Mapping[str, Queue], now: dt.datetime) -> str | None:
    times = [t for q in queues.values() if (t := parse_time(q.get("oldest"))) is not None]
    return span((now - min(times)).total_seconds()) if times else None


def _next_due(queues: Mapping[str, Queue], now: dt.datetime) -> str | None:
    times = [t for q in queues.values() if (t := parse_time(q.get("next_due"))) is not None]
    return relative(min(times), now) if times else None


def _counts(queue: Queue) -> list[int]:
    return [_int(queue, "count"), _int(queue, "recipients")]


def _int(queue: Queue, key: str) -> int:
    value = queue.get(key)
    return value if isinstance(value, int) else 0


def _ages(queue: Queue, buckets: Sequence[str]) -> list[int]:
    ages = queue.get("ages")
    if not isinstance(ages, Mapping):
        return [0] * len(buckets)
    return [_int(ages, name) for name in buckets]


def _sums(rows: Sequence[Sequence[Any]], start: int, stop: int) -> list[int]:
    return [sum(row[i] for row in rows) for i in range(start, stop)]


def _age(queue: Queue, now: dt.datetime) -> str | None:
    oldest = parse_time(queue.get("oldest"))
    return None if oldest is None else span((now - oldest).total_seconds())


def _due(queue: Queue, now: dt.datetime) -> str | None:
    due = queue.get("next_due")
    return None if due is None else relative(due, now)


def _suspended(queue: Queue) -> str | None:
    return "yes" if queue.get("suspended") else None
