"""/metrics moves by the expected amounts as real scenarios run on a node: delivered,
451-then-delivered, bounced with a class, expired, admin-bounced, refused at RCPT, injected
over HTTP; gauges show an open SMTP session, pooled outbound connections, the oldest queued
message, an admin rule in force and the spool's free space; a message rate makes legs wait;
Redis calls are timed, and counted as errors once Redis is gone."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import aiosmtplib

from tests.e2e.test_http_metrics_after_delivery import Samples, scrape
from tests.integration.test_admin_harness import AdminNode
from tests.support.node import InProcessNode, node_settings
from tests.support.redis_server import RedisServer
from tests.support.scenario import relay_target

SENDER = "alice@example.org"


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return get(after, name, **labels) - get(before, name, **labels)


async def _inject(url: str, rcpt: str) -> None:
    content = "Subject: hi\r\n\r\nHi\r\n"
    payload = {"envelope_sender": SENDER, "recipients": [{"email": rcpt}], "content": content}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + "/api/inject/v1", json=payload) as r,
    ):
        assert r.status == 200 and (await r.json())["success_count"] == 1


async def _open_session(address: tuple[str, int]) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname=address[0], port=address[1], start_tls=False, timeout=10)
    await client.connect()
    await client.ehlo()
    return client


async def test_counters_histograms_and_gauges_move(tmp_path, sink_factory) -> None:
    relay = relay_target()
    await relay.start_sink(
        sink_factory,
        rcpt_replies_once={"retry@example.com": ["451 4.3.0 later"]},
        rcpt_replies={
            "bad@example.com": "550 5.1.1 no such user",
            "slow@example.com": "450 4.2.1 mailbox busy",
            "held@held.example": "451 4.4.1 held",
        },
    )
    settings = node_settings(
        tmp_path,
        routes=relay.routes,
        smtp={"max_recipients": 1},
        queue={"retry_interval": "0.3s", "max_retry_interval": "0.3s", "max_age": "3s"},
        delivery={"idle_timeout": "60s"},  # pooled connections stay for the gauge
    )
    async with AdminNode(settings) as node:
        before = await scrape(node.http_url)
        for rcpt in ("good@example.com", "retry@example.com", "bad@example.com"):
            await node.send(SENDER, [rcpt])
        await node.send(SENDER, ["slow@example.com"])
        await node.send(SENDER, ["held@held.example"])
        refused, _ = await node.send(SENDER, ["good2@example.com", "extra@example.com"])
        assert list(refused) == ["extra@example.com"]
        await _inject(node.http_url, "http@example.com")
        await node.wait_for_record("TransientFailure", "held@held.example")
        await node.ok("POST", "/api/admin/bounce/v1", {"domain": "held.example", "reason": "x"})
        session = await _open_session(node.address)
        await node.wait_for_record("TransientFailure", "slow@example.com")
        during = await scrape(node.http_url)
        session.close()
        for rcpt in ("good@example.com", "retry@example.com", "good2@example.com"):
            await node.wait_for_record("Delivery", rcpt)
        await node.wait_for_record("Delivery", "http@example.com")
        await node.wait_for_record("Bounce", "bad@example.com")
        await node.wait_for_record("AdminBounce", "held@held.example")
        await node.wait_for_record("Expiration", "slow@example.com")
        await node.wait_for_record("Delivery", SENDER, count=2)  # the DSNs: bounce, expiry
        after = await scrape(node.http_url)

    # Counters: per recipient, by protocol, kind and class.
    assert moved(before, after, "mta_messages_received_total", protocol="ESMTP") == 6
    assert moved(before, after, "mta_messages_received_total", protocol="HTTP") == 1
    assert moved(before, after, "mta_messages_received_total", protocol="Internal") == 2
    assert moved(before, after, "mta_messages_delivered_total") == 4 + 2
    assert moved(before, after, "mta_bounces_total", classification="InvalidRecipient") == 1
    assert moved(before, after, "mta_deliveries_failed_total", kind="bounce") == 1
    assert moved(before, after, "mta_deliveries_failed_total", kind="expired") == 1
    transient = moved(before, after, "mta_deliveries_failed_total", kind="transient")
    by_class = sum(
        value - get(before, name, **dict(labels))
        for (name, labels), value in after.items()
        if name == "mta_transient_failures_total"
    )
    assert transient >= 3 and by_class == transient  # retry, slow (several), held
    assert moved(before, after, "mta_admin_bounces_total") == 1
    assert moved(before, after, "mta_rejections_total", protocol="ESMTP", reply_class="4xx") == 1
    # Histograms: one accept per message, one delivery latency per Delivery.
    assert moved(before, after, "mta_accept_seconds_count", protocol="ESMTP") == 6
    assert moved(before, after, "mta_accept_seconds_count", protocol="HTTP") == 1
    assert moved(before, after, "mta_accept_seconds_sum", protocol="ESMTP") > 0
    assert moved(before, after, "mta_delivery_latency_seconds_count") == 6
    # Gauges while slow@ waits for its retries, held@ is bounced and a session is open.
    assert get(during, "mta_connections_in") == 1
    assert get(during, "mta_queue_oldest_message_age_seconds") > 0
    assert get(during, "mta_admin_rules_active", kind="bounce") == 1
    assert get(during, "mta_spool_free_bytes") > 0
    assert get(during, "mta_spool_filesystem_bytes") >= get(during, "mta_spool_free_bytes")
    assert get(after, "mta_connections_in") == 0
    assert get(after, "mta_connections_out") >= 1
    assert get(after, "mta_connections_out_idle") == get(after, "mta_connections_out")
    assert get(after, "mta_queue_oldest_message_age_seconds") == 0
    assert get(after, "mta_ready_queues") == 1


async def test_a_message_rate_makes_legs_wait(tmp_path, sink_factory) -> None:
    relay = relay_target()
    await relay.start_sink(sink_factory)
    shaping = tmp_path / "shaping.toml"
    shaping.write_text('["default"]\nmax_message_rate = "4/s,max_burst=1"\n')
    settings = node_settings(tmp_path, routes=relay.routes, shaping={"files": [str(shaping)]})
    async with InProcessNode(settings) as node:
        before = await scrape(node.http_url)
        await node.send(SENDER, [f"r{i}@example.com" for i in range(3)])
        await node.send(SENDER, ["r3@example.com"])
        await node.wait_for_record("Delivery", count=4)
        after = await scrape(node.http_url)
    waits = moved(before, after, "mta_throttle_wait_seconds_count", reason="message_rate")
    assert waits >= 1
    assert moved(before, after, "mta_throttle_wait_seconds_sum", reason="message_rate") > 0
    assert get(after, "mta_throttle_waiting") == 0


async def test_redis_calls_are_timed_and_failures_counted(
    tmp_path: Path, sink_factory, redis_server: RedisServer
) -> None:
    relay = relay_target()
    await relay.start_sink(sink_factory)
    shaping = tmp_path / "shaping.toml"  # a message rate: each delivery asks Redis
    shaping.write_text('["default"]\nmax_message_rate = "1000/s"\n')
    settings = node_settings(
        tmp_path,
        routes=relay.routes,
        redis={"url": redis_server.url},
        shaping={"files": [str(shaping)]},
    )
    async with InProcessNode(settings) as node:
        await node.send(SENDER, ["a@example.com"])
        await node.wait_for_record("Delivery", "a@example.com")
        healthy = await scrape(node.http_url)
        redis_server.kill()
        await node.send(SENDER, ["b@example.com"])
        await node.wait_for_record("Delivery", "b@example.com")
        down = await scrape(node.http_url)
    assert get(healthy, "mta_shaping_redis_call_seconds_count") >= 1
    assert get(healthy, "mta_shaping_redis_call_seconds_sum") > 0
    assert get(healthy, "mta_shaping_redis_errors_total") == 0
    assert get(healthy, "mta_shaping_redis_fallback") == 0
    assert get(down, "mta_shaping_redis_errors_total") >= 1
    assert get(down, "mta_shaping_redis_fallback") == 1
    assert get(down, "mta_shaping_redis_call_seconds_count") > get(
        healthy, "mta_shaping_redis_call_seconds_count"
    )
