"""Deployment 3 with a proxy layer that owns the public IPs: a source sends through a SOCKS5
proxy (username/password from a file), which connects to the destination from its own
address (127.0.0.4 here); the sink sees that address and the source's EHLO name."""

from __future__ import annotations

from pathlib import Path

from tests.support.node import InProcessNode, node_settings
from tests.support.smtp_sink import ScriptedSink
from tests.support.socks5_server import Socks5Server


async def test_delivered_through_socks5_proxy(tmp_path: Path) -> None:
    (tmp_path / "proxy-password").write_text("s3cret\n")
    async with (
        ScriptedSink() as sink,
        Socks5Server(users={"mta": "s3cret"}, bind_address="127.0.0.4") as proxy,
    ):
        egress = {
            "sources": {
                "proxied-1": {
                    "socks5_proxy": proxy.address,
                    "socks5_source_address": "127.0.0.4",
                    "socks5_username": "mta",
                    "socks5_password_file": str(tmp_path / "proxy-password"),
                    "ehlo_domain": "out-1.mta.test",
                }
            },
            "pools": {"proxied": {"sources": [{"name": "proxied-1"}]}},
            "tenant_pools": {"acme": "proxied"},
        }
        route = {"domains": ["*"], "relay": [f"127.0.0.1:{sink.port}"], "tls": "none"}
        settings = node_settings(tmp_path, routes=[route], egress=egress)
        async with InProcessNode(settings) as node:
            message = b"X-Tenant: acme\r\nSubject: hi\r\n\r\nHello.\r\n"
            await node.send("app@example.org", ["bob@example.com"], message)
            await node.send("app@example.org", ["carol@example.com"])  # no tenant: direct
            [delivery] = await node.wait_for_record("Delivery", "bob@example.com")
            [direct] = await node.wait_for_record("Delivery", "carol@example.com")
    by_rcpt = {m.rcpt_tos[0]: m for m in sink.messages}
    assert (by_rcpt["bob@example.com"].peer, by_rcpt["bob@example.com"].ehlo) == (
        "127.0.0.4",
        "out-1.mta.test",
    )
    assert by_rcpt["carol@example.com"].ehlo == "mta.test"  # the node's own name
    assert proxy.connects == [("127.0.0.1", sink.port)] and proxy.logins == [("mta", True)]
    assert (delivery["egress_pool"], delivery["egress_source"]) == ("proxied", "proxied-1")
    assert delivery["site"] == f"proxied-1->relay:127.0.0.1:{sink.port}"
    assert (direct["egress_pool"], direct["egress_source"]) == (None, None)
