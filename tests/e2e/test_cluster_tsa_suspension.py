"""Cluster proof, part 2: a receiver's push-back suspends the destination on every node.

The sink starts answering `421 4.7.28 rate limited`; the nodes publish those transient
failures to both TSAs, whose rule (Suspend, Immediate, 6 s) makes a ready-queue suspension
that every node receives over its event stream within a few seconds. While it lasts no node
delivers there; after it expires (the sink is healthy again) everything is delivered.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.cluster import SITE, Cluster, cluster
from tests.support.dns_server import TestDNSServer

MESSAGES = 60
SUSPENDED_PATH = "/api/admin/suspend-ready-q/v1"


async def suspended_nodes(the: Cluster) -> int:
    count = 0
    for node in the.nodes:
        rules = await the.admin_get(node, SUSPENDED_PATH)
        if any(rule["name"] == SITE and "TSA" in rule["reason"] for rule in rules):
            count += 1
    return count


@pytest.mark.timeout(150)
async def test_tsa_suspends_the_site_on_every_node_then_all_is_delivered(
    tmp_path: Path, dns_server: TestDNSServer
) -> None:
    async with cluster(tmp_path, dns_server) as the:
        first = await the.inject(20, prefix="before")
        await the.wait_delivered(first, timeout=30)

        the.sink.mail_reply = "421 4.7.28 rate limited"
        started = time.monotonic()
        subjects = await the.inject(MESSAGES)
        while await suspended_nodes(the) < len(the.nodes):
            assert time.monotonic() - started < 10, "not every node suspended the site"
            await asyncio.sleep(0.1)

        # Suspended everywhere: attempts in flight may finish, then nothing starts.
        await asyncio.sleep(0.5)
        attempts = the.sink.transactions
        await asyncio.sleep(2.0)
        assert the.sink.transactions == attempts

        the.sink.mail_reply = None
        await the.wait_delivered(subjects, timeout=60)
        assert set(subjects) <= the.sink.subjects()
