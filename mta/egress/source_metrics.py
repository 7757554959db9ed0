"""The health of each egress source as a Prometheus gauge (read at scrape time)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from .sources import EgressSources


def source_health(sources: EgressSources | None) -> Iterator[Metric]:
    """`mta_egress_source_healthy{source}`: 1 while a source may take new legs, 0 while it
    is unavailable (its proxy down); no series without `[egress]` pools."""
    if sources is None:
        return
    gauge = GaugeMetricFamily(
        "mta_egress_source_healthy",
        "1 while the egress source is available, 0 while it is not (its SOCKS5 proxy is down)",
        labels=["source"],
    )
    for name, healthy in sorted(sources.healthy().items()):
        gauge.add_metric([name], 1 if healthy else 0)
    yield gauge
