"""Cluster proof, part 3: Redis dies in the middle of a run.

Delivery carries on with local limits (each node its share of the cluster limit), nothing
is lost, and every node returns to the shared limits once Redis is back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cluster import cluster
from tests.support.dns_server import TestDNSServer
from tests.support.node import wait_until

MESSAGES = 200


@pytest.mark.timeout(150)
async def test_delivery_continues_without_redis_and_returns_to_it(
    tmp_path: Path, dns_server: TestDNSServer
) -> None:
    async with cluster(tmp_path, dns_server) as the:
        subjects = await the.inject(MESSAGES)
        await wait_until(lambda: len(the.sink.subjects()) >= MESSAGES // 4, 60, "deliveries")
        the.redis.kill()
        during = len(the.sink.subjects())

        def still_delivering() -> bool:
            return len(the.sink.subjects()) >= during + MESSAGES // 4

        await wait_until(still_delivering, 30, "deliveries without Redis")
        fallbacks = [await the.metric(n, "mta_shaping_redis_fallbacks_total") for n in the.nodes]
        assert sum(fallbacks) >= 1

        the.redis.start()
        await the.wait_delivered(subjects, timeout=90)
        assert the.sink.subjects() == set(subjects)

        # Each node goes back to Redis on its next shaping decision.
        after = await the.inject(len(the.nodes) * 2, prefix="after")
        await the.wait_delivered(after, timeout=30)
        for node in the.nodes:
            assert await the.metric(node, "mta_shaping_redis_in_use") == 1
