"""Prometheus view of the webhooks, labelled by webhook key (its name or a hash of its URL,
never the URL itself: it may carry a token)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mta.webhooks.channel import ChannelStats

COUNTERS = {
    "queued": "Log records written to the webhook's disk queue",
    "sent": "Log records the webhook's receiver acknowledged (2xx)",
    "failures": "Failed POSTs to the webhook (timeouts, errors, non-2xx answers)",
    "dropped": "Log records dropped because the webhook's backlog was full",
}


class WebhookCollector(Collector):
    """`mta_webhook_backlog` and the `mta_webhook_*_total` counters, read at scrape time."""

    def __init__(self, stats: Callable[[], Mapping[str, ChannelStats]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        backlog = GaugeMetricFamily(
            "mta_webhook_backlog", "Log records waiting to be sent", labels=["webhook"]
        )
        for key, values in stats.items():
            backlog.add_metric([key], values.backlog)
        yield backlog
        for name, doc in COUNTERS.items():
            counter = CounterMetricFamily(f"mta_webhook_{name}", doc, labels=["webhook"])
            for key, values in stats.items():
                counter.add_metric([key], getattr(values, name))
            yield counter
