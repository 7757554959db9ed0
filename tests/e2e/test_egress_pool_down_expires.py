"""A leg kept from every attempt (its whole egress pool is down, the source retried only in an
hour) still expires at its max_age: an Expiration record with the last error, not an hour's
wait."""

from __future__ import annotations

from pathlib import Path

from tests.support.net import free_port
from tests.support.node import InProcessNode, node_settings, wait_until
from tests.support.smtp_sink import ScriptedSink


async def test_leg_of_a_down_pool_expires(tmp_path: Path) -> None:
    proxy_port = free_port("127.0.0.1")  # nothing listens: the proxy is down
    egress = {
        "sources": {"proxied": {"socks5_proxy": f"127.0.0.1:{proxy_port}"}},
        "pools": {"proxied": {"sources": [{"name": "proxied"}]}},
        "default_pool": "proxied",
        "retry_interval": "1h",  # the source is tried again only in an hour
        "max_retry_interval": "1h",
    }
    async with ScriptedSink() as sink:
        route = {"domains": ["*"], "relay": [f"127.0.0.1:{sink.port}"], "tls": "none"}
        queue = {"retry_interval": "0.3s", "max_retry_interval": "0.3s", "max_age": "3s"}
        settings = node_settings(tmp_path, routes=[route], egress=egress, queue=queue)
        async with InProcessNode(settings) as node:
            await node.send("", ["bob@example.com"])  # null sender: no DSN to deliver
            [failure] = await node.wait_for_record("TransientFailure", "bob@example.com")
            [expiration] = await node.wait_for_record("Expiration", "bob@example.com")
            await wait_until(lambda: len(node.node.spool) == 0, what="an empty spool")

    assert expiration["response"]["code"] == 551
    assert "SOCKS5 proxy" in expiration["response"]["content"]  # the last attempt's error
    assert failure["response"]["code"] == 451
    assert not sink.messages
