"""Prometheus view of the record log: records written, dropped (buffer full), write errors.

Read from the `RecordLog` counters at scrape time, so the logging path stays a plain `+= 1`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class RecordLogLike(Protocol):
    @property
    def dropped(self) -> int: ...
    @property
    def written(self) -> int: ...
    @property
    def write_errors(self) -> int: ...
    @property
    def buffered(self) -> int: ...


class RecordLogCollector(Collector):
    """`mta_log_records_dropped_total` and friends for one `RecordLog`."""

    def __init__(self, records: RecordLogLike) -> None:
        self._records = records

    def collect(self) -> Iterator[Metric]:
        records = self._records
        yield CounterMetricFamily(
            "mta_log_records_dropped",
            "Log records not written because the writer's buffer was full",
            value=records.dropped,
        )
        yield CounterMetricFamily(
            "mta_log_records_written", "Log records written to the sinks", value=records.written
        )
        yield CounterMetricFamily(
            "mta_log_write_errors",
            "Batches of log records a sink failed to write",
            value=records.write_errors,
        )
        yield GaugeMetricFamily(
            "mta_log_records_buffered",
            "Log records waiting for the writer",
            value=records.buffered,
        )
