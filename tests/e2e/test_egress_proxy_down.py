"""A SOCKS5 proxy that is down: its source is marked unavailable (logged, and the gauge
`mta_egress_source_healthy` says 0); its mail waits as transient failures, nothing bounced,
and goes out through the proxy once it is back. With a second source in the pool, new mail
takes that one meanwhile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from tests.support.net import free_port
from tests.support.node import InProcessNode, node_settings, wait_until
from tests.support.smtp_sink import ScriptedSink
from tests.support.socks5_server import Socks5Server

GAUGE = "mta_egress_source_healthy"


def settings(tmp_path: Path, sink_port: int, proxy_port: int, **egress: Any) -> dict[str, Any]:
    sources = {
        "proxied": {
            "socks5_proxy": f"127.0.0.1:{proxy_port}",
            "socks5_source_address": "127.0.0.4",
        },
        "direct": {"source_address": "127.0.0.2"},
    }
    route = {"domains": ["*"], "relay": [f"127.0.0.1:{sink_port}"], "tls": "none"}
    return node_settings(tmp_path, routes=[route], egress={"sources": sources, **egress})


async def gauge(node: InProcessNode, source: str) -> float | None:
    async with aiohttp.ClientSession() as http, http.get(f"{node.http_url}/metrics") as reply:
        text = await reply.text()
    for line in text.splitlines():
        if line.startswith(f'{GAUGE}{{source="{source}"}}'):
            return float(line.split()[-1])
    return None


async def test_mail_waits_for_the_proxy_then_goes_through_it(tmp_path: Path) -> None:
    proxy = Socks5Server(port=free_port("127.0.0.1"), bind_address="127.0.0.4")
    egress = {
        "pools": {"proxied": {"sources": [{"name": "proxied"}]}},
        "default_pool": "proxied",
        "retry_interval": "0.2s",
        "max_retry_interval": "0.5s",
    }
    async with (
        ScriptedSink() as sink,
        InProcessNode(settings(tmp_path, sink.port, proxy.port, **egress)) as node,
    ):
        await node.send("app@example.org", ["bob@example.com", "carol@example.net"])
        failures = await node.wait_for_record("TransientFailure", count=2)
        assert await gauge(node, "proxied") == 0.0
        assert len(node.node.spool) == 1 and not sink.messages
        async with proxy:  # the proxy is back
            await sink.wait_for_messages(2)
            deliveries = await node.wait_for_record("Delivery", count=2)
            await wait_until(lambda: len(node.node.spool) == 0, what="an empty spool")
        assert await gauge(node, "proxied") == 1.0
        assert not node.of_type("Bounce")
    reason = failures[0]["response"]
    assert reason["code"] == 451 and "egress source proxied: SOCKS5 proxy" in reason["content"]
    assert failures[0]["egress_source"] == "proxied"
    assert {m.peer for m in sink.messages} == {"127.0.0.4"}
    assert {r["egress_source"] for r in deliveries} == {"proxied"}


async def test_new_mail_takes_the_healthy_source(tmp_path: Path) -> None:
    proxy_port = free_port("127.0.0.1")  # nothing listens: the proxy is down
    egress = {
        "pools": {
            "proxied": {"sources": [{"name": "proxied"}]},
            "mixed": {"sources": [{"name": "proxied"}, {"name": "direct"}]},
        },
        "tenant_pools": {"first": "proxied", "second": "mixed"},
        "retry_interval": "1h",  # not tried again during the test
        "max_retry_interval": "1h",
    }
    async with (
        ScriptedSink() as sink,
        InProcessNode(settings(tmp_path, sink.port, proxy_port, **egress)) as node,
    ):
        first = b"X-Tenant: first\r\nSubject: 1\r\n\r\nHello.\r\n"
        await node.send("app@example.org", ["a@example.com"], first)
        await node.wait_for_record("TransientFailure", "a@example.com")
        second = b"X-Tenant: second\r\nSubject: 2\r\n\r\nHello.\r\n"
        recipients = [f"u{i}@example.com" for i in range(8)]
        for rcpt in recipients:
            await node.send("app@example.org", [rcpt], second)
        await sink.wait_for_messages(len(recipients))
        deliveries = await node.wait_for_record("Delivery", count=len(recipients))
        assert await gauge(node, "proxied") == 0.0 and await gauge(node, "direct") == 1.0
        assert node.of_type("TransientFailure") == node.of_type("TransientFailure", "a@example.com")
    assert {m.peer for m in sink.messages} == {"127.0.0.2"}
    assert {(r["egress_pool"], r["egress_source"]) for r in deliveries} == {("mixed", "direct")}
