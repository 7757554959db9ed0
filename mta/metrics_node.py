"""Gauges of a running node, read when Prometheus scrapes: connections in and out, ready
queues (the deepest few by name, the rest as "other"), the oldest queued message, the spool
volume's free space, the administrator's rules in force, legs waiting for a throttle.

Everything here is read from the components' own counters and views; nothing is counted on
the mail path.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from mta.app import Node

logger = logging.getLogger(__name__)

# Ready queues with a series of their own: the deepest ones; the others are summed into
# `queue="other"` (always present). Ready queues are per destination site, so a node sending
# to the whole Internet has thousands: the label must not follow them all.
MAX_QUEUE_SERIES = 20
OTHER = "other"
# The oldest queued message is looked for among the first messages queued (insertion order,
# which is acceptance order, and spool order after a restart): a scan of a million messages
# at each scrape would stall the event loop.
OLDEST_SCAN = 10_000
ADMIN_RULE_KINDS = ("bounce", "suspend", "suspend_ready_q")


@dataclass(frozen=True)
class NodeSources:
    """Where the gauges come from (callables, so a test can feed plain numbers)."""

    connections_in: Callable[[], int]
    connections_out: Callable[[], int]
    connections_out_idle: Callable[[], int]
    ready_queues: Callable[[], Mapping[str, int]]
    oldest_created: Callable[[], float | None]
    admin_rules: Callable[[], Mapping[str, int]]
    throttle_waiting: Callable[[], int]
    spool_path: Path
    spool_min_free_bytes: int
    clock: Callable[[], float] = time.time


def node_sources(node: Node) -> NodeSources:
    """The sources of a node's gauges."""
    queue, engine, admin = node.queue, node.engine, node.api.admin
    return NodeSources(
        connections_in=lambda: node.smtp.active_sessions,
        connections_out=lambda: engine.open_sessions,
        connections_out_idle=engine.idle_sessions,
        ready_queues=queue.ready_queues,
        oldest_created=lambda: oldest_created(m.created for m in queue.messages.values()),
        admin_rules=lambda: {
            "bounce": len(admin.bounces()),
            "suspend": len(admin.suspensions()),
            "suspend_ready_q": len(admin.ready_suspensions()),
        },
        throttle_waiting=lambda: queue.throttle_waiting,
        spool_path=node.config.spool.path,
        spool_min_free_bytes=node.config.spool.min_free_bytes,
    )


def oldest_created(created: Iterable[float], limit: int = OLDEST_SCAN) -> float | None:
    """The smallest of the first `limit` creation times, or None when there are none."""
    return min(islice(created, limit), default=None)


def capped(sizes: Mapping[str, int], limit: int = MAX_QUEUE_SERIES) -> dict[str, int]:
    """The `limit` largest entries by value (ties by name), plus `OTHER` holding the sum of
    the rest (0 when there is no rest)."""
    ranked = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:limit])
    kept[OTHER] = kept.get(OTHER, 0) + sum(size for _, size in ranked[limit:])
    return kept


class NodeCollector(Collector):
    """The node gauges listed in the module docstring."""

    def __init__(self, sources: NodeSources) -> None:
        self._sources = sources

    def describe(self) -> Iterator[Metric]:
        # The registry would otherwise collect at registration, before the spool exists.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        yield from self._connections()
        yield from self._queues()
        yield from self._spool()
        s = self._sources
        rules = GaugeMetricFamily(
            "mta_admin_rules_active",
            "Administrator rules in force: bounces, scheduled-queue and ready-queue suspensions",
            labels=["kind"],
        )
        active = s.admin_rules()
        for kind in ADMIN_RULE_KINDS:
            rules.add_metric([kind], active.get(kind, 0))
        yield rules
        yield GaugeMetricFamily(
            "mta_throttle_waiting",
            "Legs a delivery worker holds while it waits for a message rate",
            value=s.throttle_waiting(),
        )

    def _connections(self) -> Iterator[Metric]:
        s = self._sources
        yield GaugeMetricFamily(
            "mta_connections_in", "Inbound SMTP sessions open", value=s.connections_in()
        )
        yield GaugeMetricFamily(
            "mta_connections_out",
            "Outbound delivery connections open (busy or idle; each holds its leases)",
            value=s.connections_out(),
        )
        yield GaugeMetricFamily(
            "mta_connections_out_idle",
            "Outbound connections kept open for reuse",
            value=s.connections_out_idle(),
        )

    def _queues(self) -> Iterator[Metric]:
        s = self._sources
        sizes = s.ready_queues()
        yield GaugeMetricFamily("mta_ready_queues", "Ready queues (sites) known", len(sizes))
        depth = GaugeMetricFamily(
            "mta_ready_queue_depth",
            f"Entries per ready queue: the {MAX_QUEUE_SERIES} deepest, the rest as 'other'",
            labels=["queue"],
        )
        for name, size in capped(sizes).items():
            depth.add_metric([name], size)
        yield depth
        oldest = s.oldest_created()
        age = 0.0 if oldest is None else max(0.0, s.clock() - oldest)
        yield GaugeMetricFamily(
            "mta_queue_oldest_message_age_seconds",
            "Age of the oldest queued message (0 when the queue is empty)",
            value=age,
        )

    def _spool(self) -> Iterator[Metric]:
        s = self._sources
        yield GaugeMetricFamily(
            "mta_spool_min_free_bytes",
            "[spool] min_free_bytes: below this free space new mail is refused",
            value=s.spool_min_free_bytes,
        )
        try:
            stat = os.statvfs(s.spool_path)
        except OSError as exc:  # the series go missing; absent() alerts can see that
            logger.warning("cannot read free space of %s: %s", s.spool_path, exc)
            return
        yield GaugeMetricFamily(
            "mta_spool_free_bytes",
            "Free space on the spool's filesystem (available to the node)",
            value=stat.f_bavail * stat.f_frsize,
        )
        yield GaugeMetricFamily(
            "mta_spool_filesystem_bytes",
            "Size of the spool's filesystem",
            value=stat.f_blocks * stat.f_frsize,
        )
