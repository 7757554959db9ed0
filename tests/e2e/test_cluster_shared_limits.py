"""Cluster proof, part 1: limits hold across three nodes sharing Redis.

300 messages for a domain shaped to `max_message_rate = "20/s"` and `connection_limit = 2`
are injected spread over three node processes; the sink never sees more than 2 connections
at once, and no 1 s window holds more than the rate plus its burst.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import CONNECTIONS, RATE, cluster
from tests.support.dns_server import TestDNSServer

MESSAGES = 300


@pytest.mark.timeout(150)
async def test_three_nodes_share_one_rate_and_connection_limit(
    tmp_path: Path, dns_server: TestDNSServer
) -> None:
    async with cluster(tmp_path, dns_server) as the:
        subjects = await the.inject(MESSAGES)
        await the.wait_delivered(subjects, timeout=90)

        assert the.sink.subjects() == set(subjects)
        assert the.sink.max_concurrent <= CONNECTIONS
        assert the.sink.busiest_second() <= RATE + RATE  # the rate plus the burst (= the rate)
        for node in the.nodes:  # shared limits were in force, never the local fallback
            assert await the.metric(node, "mta_shaping_redis_in_use") == 1
            assert await the.metric(node, "mta_shaping_redis_fallbacks_total") == 0
