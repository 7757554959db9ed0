"""Prometheus metrics of one node, in a registry of its own (no process-wide state).

Counters move with the log records (`Metrics.observe` is a `RecordLog` listener), so a
counter and the JSON log always agree. Like KumoMTA's records, they count per recipient: a
message to three recipients is three receptions and, later, three deliveries. Gauges (queue
and spool sizes) are read when Prometheus scrapes, so they cost nothing in between.

Label cardinality is bounded: labels carry a protocol, a record kind, a bounce class (the
classes of the rules files), a reply class or a throttle reason, never a recipient, a message,
a tenant or a site. Per-queue gauges (`mta.metrics_node`) keep the deepest few queues and sum
the rest into `queue="other"`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from mta.bounce import DEFAULT_BOUNCE_RULES, UNCATEGORIZED

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
# Series that exist from the start (zeros), so that rate() and the dashboards work at once.
KNOWN_PROTOCOLS = ("ESMTP", "HTTP")
KNOWN_CLASSES = (*DEFAULT_BOUNCE_RULES, UNCATEGORIZED)
THROTTLE_REASONS = ("message_rate", "connection", "queue_rate")
# Bucket bounds in seconds. Accepting is a sign-and-fsync away (milliseconds); delivery runs
# from a second (a direct send) to the queue's max_age (days, after retries).
ACCEPT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_BUCKETS = (
    1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 259200, 604800,
)  # fmt: skip
THROTTLE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


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
    """Counters and histograms driven by log records and by the accept path and the queue
    (`observe_accept`, `observe_throttle_wait`); gauges read at scrape time."""

    def __init__(
        self,
        *,
        queue_stats: Callable[[], Mapping[str, int]],
        spool_stats: Callable[[], SpoolStatsLike],
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters()
        self._histograms()
        self.registry.register(_StatsCollector(queue_stats, spool_stats))

    def _counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, list(labels), registry=self.registry)

    def _counters(self) -> None:
        self.received = self._counter(
            "mta_messages_received", "Recipients accepted (Reception records)", ("protocol",)
        )
        self.delivered = self._counter(
            "mta_messages_delivered", "Recipients delivered (Delivery records)"
        )
        self.failed = self._counter(
            "mta_deliveries_failed",
            "Failed delivery attempts per recipient: transient, bounce, expired",
            ("kind",),
        )
        self.bounces = self._counter(
            "mta_bounces", "Recipients bounced (Bounce records), by class", ("classification",)
        )
        self.transient = self._counter(
            "mta_transient_failures",
            "Transient failures per recipient (TransientFailure records), by class",
            ("classification",),
        )
        self.admin_bounces = self._counter(
            "mta_admin_bounces", "Recipients bounced by an administrator (AdminBounce records)"
        )
        self.rejections = self._counter(
            "mta_rejections",
            "Inbound commands or recipients refused with a 4xx/5xx (Rejection records)",
            ("protocol", "reply_class"),
        )
        for kind in FAILURE_KINDS.values():
            self.failed.labels(kind=kind)  # export zeros, so rate() works from the start
        for protocol in KNOWN_PROTOCOLS:
            self.received.labels(protocol=protocol)
            for reply_class in ("4xx", "5xx"):
                self.rejections.labels(protocol=protocol, reply_class=reply_class)
        for cls in KNOWN_CLASSES:
            self.bounces.labels(classification=cls)
            self.transient.labels(classification=cls)

    def _histograms(self) -> None:
        self.accept_latency = Histogram(
            "mta_accept_seconds",
            "From the end of the client's message to durable, queued and logged, by protocol",
            ["protocol"],
            buckets=ACCEPT_BUCKETS,
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "mta_delivery_latency_seconds",
            "From reception to delivery per recipient (Delivery record: timestamp - created)",
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self.throttle_wait = Histogram(
            "mta_throttle_wait_seconds",
            "Waits shaping imposed on a leg: for a message rate, a connection, a queue rate",
            ["reason"],
            buckets=THROTTLE_BUCKETS,
            registry=self.registry,
        )
        for protocol in KNOWN_PROTOCOLS:
            self.accept_latency.labels(protocol=protocol)
        for reason in THROTTLE_REASONS:
            self.throttle_wait.labels(reason=reason)

    def observe(self, record: Mapping[str, Any]) -> None:
        """A RecordLog listener: count one log record."""
        kind = record.get("type")
        if kind == "Reception":
            self.received.labels(protocol=_protocol(record)).inc()
        elif kind == "Delivery":
            self.delivered.inc()
            latency = record.get("timestamp", 0) - record.get("created", 0)
            self.delivery_latency.observe(max(0, latency))
        elif kind in FAILURE_KINDS:
            self.failed.labels(kind=FAILURE_KINDS[kind]).inc()
            self._classify(kind, record)
        elif kind == "AdminBounce":
            self.admin_bounces.inc()
        elif kind == "Rejection":
            code = (record.get("response") or {}).get("code") or 0
            reply_class = "4xx" if 400 <= code < 500 else "5xx"
            self.rejections.labels(protocol=_protocol(record), reply_class=reply_class).inc()

    def _classify(self, kind: str, record: Mapping[str, Any]) -> None:
        cls = record.get("bounce_classification") or UNCATEGORIZED
        if kind == "Bounce":
            self.bounces.labels(classification=cls).inc()
        elif kind == "TransientFailure":
            self.transient.labels(classification=cls).inc()

    def observe_accept(self, protocol: str, seconds: float) -> None:
        """`Acceptor.on_stored`: one message accepted in `seconds`."""
        self.accept_latency.labels(protocol=protocol).observe(seconds)

    def observe_throttle_wait(self, reason: str, seconds: float) -> None:
        """`QueueManager.on_throttle_wait`: shaping held a leg back for `seconds`."""
        self.throttle_wait.labels(reason=reason).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def _protocol(record: Mapping[str, Any]) -> str:
    return str(record.get("reception_protocol") or "unknown")


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
