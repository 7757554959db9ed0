"""LMTP routes: one reply per recipient after the final dot (RFC 2033) decides each
recipient: 2xx delivered, 4xx retried, 5xx bounced. Routes by address, regex and `discard`
split one domain's recipients across destinations."""

from __future__ import annotations

from pathlib import Path

from tests.support.node import InProcessNode, node_settings
from tests.support.route_sinks import LmtpSink
from tests.support.scenario import relay_target


async def test_mixed_per_recipient_replies(tmp_path: Path) -> None:
    once = {"busy@lists.test": ["452 4.2.2 mailbox over quota"]}
    replies = {"gone@lists.test": "550 5.1.1 no such list"}
    async with LmtpSink(once=once, replies=replies) as mailman:
        route = {"domains": ["lists.test"], "lmtp": f"127.0.0.1:{mailman.port}"}
        async with InProcessNode(node_settings(tmp_path, routes=[route])) as node:
            rcpts = ["ok@lists.test", "busy@lists.test", "gone@lists.test"]
            await node.send("", rcpts)  # the null sender: no DSN for the bounce
            [bounce] = await node.wait_for_record("Bounce", "gone@lists.test")
            [transient] = await node.wait_for_record("TransientFailure", "busy@lists.test")
            [late] = await node.wait_for_record("Delivery", "busy@lists.test")
            [first] = node.of_type("Delivery", "ok@lists.test")
            assert len(node.node.spool) == 0
    assert bounce["response"]["code"] == 550 and bounce["num_attempts"] == 1
    assert transient["response"]["code"] == 452
    assert first["num_attempts"] == 1 and late["num_attempts"] == 2
    assert first["peer_address"]["addr"] == "127.0.0.1"
    delivered = [rcpt for message in mailman.messages for rcpt in message.rcpt_tos]
    assert sorted(delivered) == ["busy@lists.test", "ok@lists.test"]


async def test_address_regex_and_discard_split_a_domain(tmp_path: Path, sink_factory) -> None:
    target = relay_target()
    relay = await target.start_sink(sink_factory)
    async with LmtpSink() as lmtp:
        routes = [
            {"addresses": ["noreply@example.com"], "discard": True},
            {"regex": r"^bounces\+.*@example\.com$", "lmtp": f"127.0.0.1:{lmtp.port}"},
            *target.routes,
        ]
        async with InProcessNode(node_settings(tmp_path, routes=routes)) as node:
            rcpts = ["noreply@example.com", "bounces+x=y.org@example.com", "bob@example.com"]
            await node.send("a@example.org", rcpts)
            await node.wait_for_record("Delivery", count=3)
            [via_lmtp] = await lmtp.wait_for_messages(1)
            [via_relay] = await relay.wait_for_messages(1)
            [discarded] = node.of_type("Delivery", "noreply@example.com")
            queues = {r["recipient"]: r["queue"] for r in node.of_type("Reception")}
    assert via_lmtp.rcpt_tos == ["bounces+x=y.org@example.com"]
    assert via_relay.rcpt_tos == ["bob@example.com"]
    assert "Discarded" in discarded["response"]["content"] and discarded["site"] == "discard"
    assert queues == {
        "noreply@example.com": "example.com!discard",
        "bounces+x=y.org@example.com": f"example.com!lmtp:127.0.0.1:{lmtp.port}",
        "bob@example.com": "example.com",
    }
