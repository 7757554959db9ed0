"""Prometheus view of the suppression list, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mta.suppression.service import Suppression

SOURCES = ("bounce", "admin")
OPERATIONS = ("lookup", "add", "remove", "list", "purge")


class SuppressionCollector(Collector):
    """`mta_suppression_*`: entries (node-local store only), additions, refusals, failures."""

    def __init__(self, suppression: Suppression) -> None:
        self._suppression = suppression

    def collect(self) -> Iterator[Metric]:
        s = self._suppression
        count = s.entry_count()
        if count is not None:
            yield GaugeMetricFamily(
                "mta_suppression_entries", "Entries on this node's suppression list", count
            )
        added = CounterMetricFamily(
            "mta_suppression_added", "Recipients added to the suppression list", labels=["source"]
        )
        for source in SOURCES:
            added.add_metric([source], s.added[source])
        yield added
        yield CounterMetricFamily(
            "mta_suppression_refused", "Recipients refused because suppressed", value=s.refused
        )
        yield CounterMetricFamily(
            "mta_suppression_fail_open",
            "Recipients accepted unchecked because the suppression store could not answer",
            value=s.fail_open,
        )
        errors = CounterMetricFamily(
            "mta_suppression_errors", "Failed suppression store calls", labels=["operation"]
        )
        for operation in OPERATIONS:
            errors.add_metric([operation], s.errors[operation])
        yield errors
