"""Prometheus metrics of one node, in a registry of its own (no process-wide state).

Counters move with the log records (`Metrics.observe` is a `RecordLog` listener), so a
counter and the JSON log always agree. Like KumoMTA's records, they count per recipient: a
message to three recipients is three receptions and, later, three deliveries. Gauges (queue
and spool sizes) are read when Prometheus scrapes, so they cost nothing in between.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_LATEST
FAILURE_KINDS = {"TransientFailure": "transient", "Bounce": "bounce", "Expiration": "expired"}
QUEUE_GAUGES = {
    "messages": "Messages in the queues (each may have several recipient domains)",
    "scheduled": "Recipient-domain entries waiting for their next attempt time",
    "due": "Entries due and waiting to be bound to a ready queue",
    "ready": "Entries in ready queues waiting for a connection",
    "in_flight": "Entries being delivered now",
}
SPOOL_GAUGES = {
    "messages": "Messages in the spool",
    "segments": "Spool segment files",
    "bytes_on_disk": "Bytes of spool segment files",
    "quarantined": "Segments or tails quarantined at the last spool recovery",
}


class SpoolStatsLike(Protocol):
    @property
    def messages(self) -> int: ...
    @property
    def segments(self) -> int: ...
    @property
    def bytes_on_disk(self) -> int: ...
    @property
    def quarantined(self) -> int: ...


class Metrics:
    """Counters driven by log records, gauges read from the queue and spool at scrape time."""

    def __init__(
        self,
        *,
        queue_stats: Callable[[], Mapping[str, int]],
        spool_stats: Callable[[], SpoolStatsLike],
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.received = Counter(
            "mta_messages_received",
            "Recipients accepted (Reception records), by protocol",
            ["protocol"],
            registry=self.registry,
        )
        self.delivered = Counter(
            "mta_messages_delivered",
            "Recipients delivered (Delivery records)",
            registry=self.registry,
        )
        self.failed = Counter(
            "mta_deliveries_failed",
            "Failed delivery attempts per recipient: transient, bounce, expired",
            ["kind"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "mta_rejections",
            "Inbound SMTP commands refused with a 4xx/5xx (Rejection records)",
            registry=self.registry,
        )
        for kind in FAILURE_KINDS.values():
            self.failed.labels(kind=kind)  # export zeros, so rate() works from the start
        self.registry.register(_StatsCollector(queue_stats, spool_stats))

    def observe(self, record: Mapping[str, Any]) -> None:
        """A RecordLog listener: count one log record."""
        kind = record.get("type")
        if kind == "Reception":
            self.received.labels(protocol=record.get("reception_protocol") or "unknown").inc()
        elif kind == "Delivery":
            self.delivered.inc()
        elif kind in FAILURE_KINDS:
            self.failed.labels(kind=FAILURE_KINDS[kind]).inc()
        elif kind == "Rejection":
            self.rejections.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _StatsCollector(Collector):
    def __init__(
        self,
        queue_stats: Callable[[], Mapping[str, int]],
        spool_stats: Callable[[], SpoolStatsLike],
    ) -> None:
        self._queue_stats = queue_stats
        self._spool_stats = spool_stats

    def collect(self) -> Iterator[Metric]:
        queue = self._queue_stats()
        for name, doc in QUEUE_GAUGES.items():
            yield GaugeMetricFamily(f"mta_queue_{name}", doc, value=queue.get(name, 0))
        spool = self._spool_stats()
        for name, doc in SPOOL_GAUGES.items():
            yield GaugeMetricFamily(f"mta_spool_{name}", doc, value=getattr(spool, name))
