"""Threshold triggers: ``{Threshold = "N/period"}`` fires on the Nth match within the
period (a sliding window, as KumoMTA's tsa-daemon counts matching records per rule and
site). Counters live in memory, per (rule hash, site, source), and go into snapshots.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping
from typing import Any

from ..spec import ThrottleSpec

CounterKey = tuple[str, str, str]  # rule hash, site name, source


class MatchCounters:
    """Recent match times, at most N per key (older ones can no longer make a difference)."""

    def __init__(self) -> None:
        self._times: dict[CounterKey, list[float]] = {}
        self._periods: dict[CounterKey, int] = {}

    def hit(self, key: CounterKey, at: float, now: float, spec: ThrottleSpec) -> bool:
        """Count a match at ``at``; whether ``spec.limit`` matches now fall within the
        last ``spec.period_seconds`` (each further match within it fires again)."""
        times = self._times.setdefault(key, [])
        self._periods[key] = spec.period_seconds
        bisect.insort(times, at)
        _prune(times, now - spec.period_seconds)
        del times[: max(0, len(times) - spec.limit)]
        if not times:
            self._forget(key)
        return len(times) >= spec.limit

    def count(self, key: CounterKey, now: float) -> int:
        """Matches of ``key`` within its period before ``now``."""
        times = self._times.get(key, [])
        period = self._periods.get(key, 0)
        return sum(1 for t in times if t > now - period)

    def prune(self, now: float) -> None:
        """Forget keys with no match within their period."""
        for key in [k for k, times in self._times.items() if times[-1] <= now - self._periods[k]]:
            self._forget(key)

    def __len__(self) -> int:
        return len(self._times)

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {"rule_hash": k[0], "site": k[1], "source": k[2], "period": p, "times": t}
            for k, p, t in self._items()
        ]

    def load_json(self, items: list[Mapping[str, Any]], now: float) -> None:
        """Restore :meth:`to_json` output, dropping matches that have left their period."""
        for item in items:
            key = (str(item["rule_hash"]), str(item["site"]), str(item["source"]))
            period = int(item["period"])
            times = sorted(float(t) for t in item["times"] if float(t) > now - period)
            if times:
                self._times[key], self._periods[key] = times, period

    def _items(self) -> Iterator[tuple[CounterKey, int, list[float]]]:
        for key, times in self._times.items():
            yield key, self._periods[key], list(times)

    def _forget(self, key: CounterKey) -> None:
        self._times.pop(key, None)
        self._periods.pop(key, None)


def _prune(times: list[float], cutoff: float) -> None:
    """Drop times at or before ``cutoff`` from the sorted list."""
    del times[: bisect.bisect_right(times, cutoff)]
