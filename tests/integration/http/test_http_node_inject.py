"""The inject endpoint of a whole node: real messages to a sink, the inject service's refusals
passed through with their status, storage trouble answered 503 by the probes and inject."""

from __future__ import annotations

import os

import aiohttp
import orjson

from tests.support.net import free_port, unused_loopback_address
from tests.support.node import InProcessNode, node_settings

INJECT = "/api/inject/v1"
BODY = {
    "envelope_sender": "alice@example.org",
    "content": "Subject: hi {{ name }}\r\n\r\nHello {{ name }}\r\n",
    "recipients": [
        {"email": "bob@example.com", "name": "Bob"},
        {"email": "not an address"},
    ],
}


JSON = {"Content-Type": "application/json"}


async def post(url: str, body: object) -> tuple[int, str, str]:
    data = orjson.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + INJECT, data=data, headers=JSON) as response,
    ):
        return response.status, response.content_type, await response.text()


async def relay_sink(sink_factory):
    host = unused_loopback_address()
    port = free_port(host)
    sink = await sink_factory(host=host, port=port)
    return sink, [{"domains": ["*"], "relay": f"{host}:{port}"}]


async def test_inject_through_the_node(tmp_path, sink_factory) -> None:
    sink, routes = await relay_sink(sink_factory)
    async with InProcessNode(node_settings(tmp_path, routes=routes)) as node:
        status, content_type, text = await post(node.http_url, BODY)
        await sink.wait_for_messages(1)
        template = await post(node.http_url, {**BODY, "content": "Subject: {{ x\r\n\r\nx"})
        missing = await post(node.http_url, {"envelope_sender": "a@example.org", "content": "x"})
        deferred = await post(node.http_url, {**BODY, "deferred_generation": True})
        await sink.wait_for_messages(2)

    assert (status, content_type) == (200, "application/json")
    answer = orjson.loads(text)
    assert (answer["success_count"], answer["fail_count"]) == (1, 1)
    assert answer["failed_recipients"] == ["not an address"]
    assert answer["errors"][0].startswith("not an address: ")
    assert b"Subject: hi Bob" in sink.messages[0].data
    reception = node.of_type("Reception", "bob@example.com")[0]
    assert reception["reception_protocol"] == "HTTP"
    assert reception["peer_address"]["addr"] == "127.0.0.1"
    assert template[:2] == (422, "text/plain")
    assert missing == (400, "text/plain", "recipients: required")
    assert deferred[0] == 200
    assert orjson.loads(deferred[2])["success_count"] == 0  # as KumoMTA: generated later


async def test_storage_trouble_is_503_with_the_spools_reason(tmp_path) -> None:
    stats = os.statvfs(tmp_path)
    too_much = stats.f_bavail * stats.f_frsize * 2  # never that much free space
    settings = node_settings(tmp_path, spool={"min_free_bytes": too_much})
    async with InProcessNode(settings) as node, aiohttp.ClientSession() as session:
        async with session.get(node.http_url + "/readyz") as response:
            readyz = response.status, await response.text()
        async with session.get(node.http_url + "/livez") as response:
            livez = response.status
        inject = await post(node.http_url, BODY)

    assert readyz[0] == 503
    assert readyz[1].startswith("free space on ") and "below min_free_bytes" in readyz[1]
    assert livez == 200
    assert inject == (503, "text/plain", readyz[1])
