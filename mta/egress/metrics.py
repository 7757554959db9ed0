"""Prometheus gauges of the egress side, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from shaping.fallback import REDIS_LATENCY_BUCKETS, RedisCalls

from .source_metrics import source_health

if TYPE_CHECKING:
    from .node import Egress


class EgressCollector(Collector):
    """Redis use and fallbacks, automation events applied, the TSA link and its backlog."""

    def __init__(self, egress: Egress) -> None:
        self._egress = egress

    def collect(self) -> Iterator[Metric]:
        egress = self._egress
        health = egress.limits.health
        yield GaugeMetricFamily(
            "mta_shaping_redis_in_use",
            "1 while shared limits are on Redis, 0 on local limits (or no Redis configured)",
            value=1 if egress.limits.using_redis else 0,
        )
        yield CounterMetricFamily(
            "mta_shaping_redis_fallbacks",
            "Switches from Redis to local limits",
            value=health.fallbacks if health is not None else 0,
        )
        yield GaugeMetricFamily(
            "mta_shaping_redis_fallback",
            "1 while Redis is configured but unreachable (limits enforced locally), else 0",
            value=1 if health is not None and not health.using_redis else 0,
        )
        yield from _redis_calls(health.calls if health is not None else RedisCalls())
        yield CounterMetricFamily(
            "mta_shaping_automation_applied",
            "Automation events (suspensions, bounces) applied on this node",
            value=egress.applier.applied if egress.applier is not None else 0,
        )
        yield from self._tsa()
        yield from source_health(egress.sources)

    def _tsa(self) -> Iterator[Metric]:
        egress = self._egress
        if egress.subscriber is not None:
            yield GaugeMetricFamily(
                "mta_tsa_subscribed",
                "1 while the TSA event stream is connected",
                value=1 if egress.subscriber.connected else 0,
            )
        if egress.publisher is None:
            return
        stats = egress.publisher.stats()
        backlog = GaugeMetricFamily(
            "mta_tsa_publish_backlog", "Records waiting to be published", labels=["url"]
        )
        for url, count in stats.backlog.items():
            backlog.add_metric([url], count)
        yield backlog
        for name, value, doc in (
            ("mta_tsa_published_records", stats.sent, "Records published to TSAs"),
            ("mta_tsa_publish_dropped_records", stats.dropped, "Records dropped by the bounds"),
            ("mta_tsa_publish_failures", stats.failures, "Failed attempts to post a batch"),
        ):
            yield CounterMetricFamily(name, doc, value=value)


def _redis_calls(calls: RedisCalls) -> Iterator[Metric]:
    """Latency of every Redis call made by the throttles and leases, and the failed ones
    (zeros without Redis, so that dashboards and alerts find the series)."""
    cumulative, buckets = 0, []
    for bound, count in zip(REDIS_LATENCY_BUCKETS, calls.buckets, strict=False):
        cumulative += count
        buckets.append((repr(float(bound)), cumulative))
    buckets.append(("+Inf", calls.calls))
    yield HistogramMetricFamily(
        "mta_shaping_redis_call_seconds",
        "Time of the Redis calls of shared throttles and leases",
        buckets=buckets,
        sum_value=calls.seconds,
    )
    yield CounterMetricFamily(
        "mta_shaping_redis_errors",
        "Redis calls that failed (timeouts, connection errors, server errors)",
        value=calls.errors,
    )
