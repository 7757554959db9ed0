"""Metrics without a node: record-driven counters, bounded labels, node gauges from plain
sources, Redis call timing, and the dashboard/alerts covering what the issue asks for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from mta.metrics import Metrics
from mta.metrics_node import OTHER, NodeCollector, NodeSources, capped, oldest_created
from shaping.fallback import RedisHealth, ResilientThrottle
from shaping.redis_throttle import RedisThrottle
from shaping.spec import parse_throttle_spec
from spool.store import SpoolStats
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2] / "k8s" / "observability"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _metrics() -> Metrics:
    return Metrics(queue_stats=dict, spool_stats=lambda: SpoolStats(0, 0, 0, 0))


def _record(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "recipient": "someone@example.com",
        "reception_protocol": "ESMTP",
        "response": {"code": 250},
        "bounce_classification": "Uncategorized",
        "timestamp": 1000,
        "created": 1000,
        **fields,
    }


def test_records_move_their_counters_and_labels_stay_bounded() -> None:
    metrics = _metrics()
    for record in (
        _record("Reception", reception_protocol="HTTP"),
        _record("Delivery", created=970),
        _record("Bounce", bounce_classification="InvalidRecipient"),
        _record("TransientFailure", bounce_classification="QuotaIssues"),
        _record("Expiration", bounce_classification="MessageExpired"),
        _record("AdminBounce"),
        _record("Rejection", response={"code": 451}),
        _record("Rejection", response={"code": 550}),
    ):
        metrics.observe(record)
    got = _samples(metrics.render().decode())
    assert got[("mta_messages_received_total", (("protocol", "HTTP"),))] == 1
    assert got[("mta_bounces_total", (("classification", "InvalidRecipient"),))] == 1
    assert got[("mta_transient_failures_total", (("classification", "QuotaIssues"),))] == 1
    assert got[("mta_deliveries_failed_total", (("kind", "expired"),))] == 1
    assert got[("mta_admin_bounces_total", ())] == 1
    for reply_class in ("4xx", "5xx"):
        key = ("mta_rejections_total", (("protocol", "ESMTP"), ("reply_class", reply_class)))
        assert got[key] == 1
    assert got[("mta_delivery_latency_seconds_sum", ())] == 30
    assert got[("mta_delivery_latency_seconds_bucket", (("le", "30.0"),))] == 1
    assert got[("mta_delivery_latency_seconds_bucket", (("le", "10.0"),))] == 0
    labels = {name for (_, pairs) in got for name, _ in pairs}
    assert labels <= {"protocol", "kind", "classification", "reply_class", "reason", "le"}


def test_accept_and_throttle_observations() -> None:
    metrics = _metrics()
    metrics.observe_accept("ESMTP", 0.003)
    metrics.observe_throttle_wait("connection", 3.0)
    got = _samples(metrics.render().decode())
    assert got[("mta_accept_seconds_bucket", (("le", "0.005"), ("protocol", "ESMTP")))] == 1
    assert got[("mta_accept_seconds_bucket", (("le", "0.0025"), ("protocol", "ESMTP")))] == 0
    assert got[("mta_throttle_wait_seconds_sum", (("reason", "connection"),))] == 3.0
    assert got[("mta_throttle_wait_seconds_count", (("reason", "message_rate"),))] == 0


def test_capped_keeps_the_deepest_and_sums_the_rest() -> None:
    sizes = {f"q{i}": i for i in range(30)}
    kept = capped(sizes, limit=3)
    assert kept == {"q29": 29, "q28": 28, "q27": 27, OTHER: sum(range(27))}
    assert capped({}, limit=3) == {OTHER: 0}
    assert capped({"b": 1, "a": 1}, limit=1) == {"a": 1, OTHER: 1}  # ties by name


def test_oldest_created_scans_a_bounded_prefix() -> None:
    assert oldest_created([], limit=5) is None
    assert oldest_created([5.0, 3.0, 4.0], limit=5) == 3.0
    assert oldest_created([5.0, 4.0, 1.0], limit=2) == 4.0


def _sources(tmp_path: Path, **overrides: Any) -> NodeSources:
    fields: dict[str, Any] = {
        "connections_in": lambda: 2,
        "connections_out": lambda: 3,
        "connections_out_idle": lambda: 1,
        "ready_queues": lambda: {"a": 4, "b": 0},
        "oldest_created": lambda: 100.0,
        "admin_rules": lambda: {"suspend": 2},
        "throttle_waiting": lambda: 5,
        "spool_path": tmp_path,
        "spool_min_free_bytes": 1024,
        "clock": lambda: 160.0,
    }
    fields.update(overrides)
    return NodeSources(**fields)


def _collect(sources: NodeSources) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in NodeCollector(sources).collect()
        for s in family.samples
    }


def test_node_gauges_from_their_sources(tmp_path: Path) -> None:
    got = _collect(_sources(tmp_path))
    assert got[("mta_connections_in", ())] == 2
    assert got[("mta_connections_out", ())] == 3
    assert got[("mta_connections_out_idle", ())] == 1
    assert got[("mta_ready_queue_depth", (("queue", "a"),))] == 4
    assert got[("mta_ready_queue_depth", (("queue", OTHER),))] == 0
    assert got[("mta_ready_queues", ())] == 2
    assert got[("mta_queue_oldest_message_age_seconds", ())] == 60
    assert got[("mta_admin_rules_active", (("kind", "suspend"),))] == 2
    assert got[("mta_admin_rules_active", (("kind", "bounce"),))] == 0
    assert got[("mta_throttle_waiting", ())] == 5
    assert got[("mta_spool_min_free_bytes", ())] == 1024
    assert 0 < got[("mta_spool_free_bytes", ())] <= got[("mta_spool_filesystem_bytes", ())]


def test_node_gauges_without_a_spool_directory_or_a_queue(tmp_path: Path) -> None:
    sources = _sources(tmp_path, spool_path=tmp_path / "missing", oldest_created=lambda: None)
    got = _collect(sources)
    assert ("mta_spool_free_bytes", ()) not in got  # absent, not a made-up number
    assert got[("mta_queue_oldest_message_age_seconds", ())] == 0


async def test_redis_calls_are_counted_timed_and_failures_counted() -> None:
    redis = Redis(port=free_port(), socket_connect_timeout=0.5)  # nothing listens there
    health = RedisHealth(local_share=0.5)
    throttle = ResilientThrottle(RedisThrottle(redis, timeout=0.5), health)
    try:
        result = await throttle.check("k", parse_throttle_spec("10/s"))
    finally:
        await redis.aclose()
    assert not result.throttled  # answered from memory
    calls = health.calls
    assert (calls.calls, calls.errors, sum(calls.buckets)) == (1, 1, 1)
    assert calls.seconds > 0 and not health.using_redis


@pytest.mark.parametrize(
    "wanted",
    [
        "mta_bounces_total",
        "mta_transient_failures_total",
        "mta_accept_seconds_bucket",
        "mta_delivery_latency_seconds_bucket",
        "mta_throttle_wait_seconds_bucket",
        "mta_spool_free_bytes",
        "mta_queue_oldest_message_age_seconds",
        "mta_ready_queue_depth",
        "mta_connections_out",
        "mta_webhook_backlog",
        "mta_shaping_redis_call_seconds_bucket",
    ],
)
def test_the_dashboard_shows(wanted: str) -> None:
    dashboard = json.loads((ROOT / "dashboard-mta.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    assert wanted in exprs


def test_the_alerts_the_issue_lists_exist() -> None:
    rules = yaml.safe_load((ROOT / "prometheusrule.yaml").read_text())
    exprs = {r["alert"]: r["expr"] for g in rules["spec"]["groups"] for r in g["rules"]}
    expected = {
        "MtaDeliveryFailureRateSpike": "mta_deliveries_failed_total",
        "MtaQueueGrowing": "mta_queue_messages",
        "MtaOldestMessageOld": "mta_queue_oldest_message_age_seconds",
        "MtaSpoolFreeSpaceLow": "mta_spool_free_bytes",
        "MtaWebhookBacklog": "mta_webhook_backlog",
        "MtaRedisFallback": "mta_shaping_redis_fallback",
    }
    for alert, metric in expected.items():
        assert metric in exprs[alert]
