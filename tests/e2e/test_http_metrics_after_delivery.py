"""/metrics counts what happened: two recipients received over SMTP, a 451 from the sink (a
transient failure each), then their delivery; a refused recipient is a rejection. The queue and
spool gauges show the state at scrape time."""

import aiohttp
import aiosmtplib
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings, wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_counters_follow_a_delivery(tmp_path, sink_factory) -> None:
    sink_host = unused_loopback_address()
    sink_port = free_port(sink_host)
    sink = await sink_factory(host=sink_host, port=sink_port, data_replies=["451 4.3.0 try again"])
    routes = [{"domains": ["*"], "relay": f"{sink_host}:{sink_port}"}]
    async with InProcessNode(node_settings(tmp_path, routes=routes)) as node:
        before = await scrape(node.http_url)
        await node.send("alice@example.org", ["bob@example.com", "carol@example.com"])
        await node.wait_for_record("TransientFailure", "carol@example.com")
        queued = await scrape(node.http_url)
        await node.wait_for_record("Delivery", "bob@example.com")
        await node.wait_for_record("Delivery", "carol@example.com")
        await wait_until(lambda: len(node.node.spool) == 0, what="the spool to empty")
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await node.send("alice@example.org", ["not an address"])
        after = await scrape(node.http_url)

    assert value(before, "mta_messages_delivered_total") == 0
    assert value(before, "mta_deliveries_failed_total", kind="transient") == 0
    assert value(queued, "mta_messages_received_total", protocol="ESMTP") == 2
    assert value(queued, "mta_queue_messages") == 1
    assert value(queued, "mta_spool_messages") == 1
    assert value(after, "mta_messages_delivered_total") == 2
    assert value(after, "mta_deliveries_failed_total", kind="transient") == 2
    assert value(after, "mta_deliveries_failed_total", kind="bounce") == 0
    assert value(after, "mta_rejections_total", protocol="ESMTP", reply_class="5xx") >= 1
    assert value(after, "mta_queue_messages") == 0
    assert value(after, "mta_spool_messages") == 0
    assert [m.rcpt_tos for m in sink.messages] == [["bob@example.com", "carol@example.com"]]
