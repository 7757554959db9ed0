"""Deployment 1: a node-local relay to an ESP that requires STARTTLS and SASL AUTH.

Right credentials deliver (over verified TLS, authenticated); wrong ones are retried with a
clear reason until the password file is fixed; a smart host that is down keeps the mail
queued until it comes back, nothing lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.net import free_port
from tests.support.node import InProcessNode, node_settings
from tests.support.route_sinks import SmartHost

USER = "apikey"


def relay_settings(tmp_path: Path, port: int, ca_pem: bytes, password: str) -> dict[str, Any]:
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    (tmp_path / "password").write_text(password + "\n")
    route = {
        "domains": ["*"],
        "relay": [f"127.0.0.1:{port}"],
        "tls": "starttls",
        "auth": {"username": USER, "password_file": str(tmp_path / "password")},
    }
    return node_settings(
        tmp_path, routes=[route], delivery={"tls_ca_file": str(tmp_path / "ca.pem")}
    )


async def test_delivered_with_starttls_and_auth(tmp_path: Path) -> None:
    async with SmartHost({USER: "s3cret"}) as relay:
        settings = relay_settings(tmp_path, relay.port, relay.ca_pem, "s3cret")
        async with InProcessNode(settings) as node:
            await node.send("app@example.org", ["bob@example.com", "carol@example.net"])
            messages = await relay.wait_for_messages(2)  # one per recipient domain
            await node.wait_for_record("Delivery", count=2)
    assert sorted(r for m in messages for r in m.rcpt_tos) == [
        "bob@example.com",
        "carol@example.net",
    ]
    assert all(m.tls and m.user == USER for m in messages)
    assert (USER, True) in relay.auth_attempts and all(ok for _, ok in relay.auth_attempts)


async def test_wrong_password_retried_until_file_fixed(tmp_path: Path) -> None:
    async with SmartHost({USER: "right"}) as relay:
        settings = relay_settings(tmp_path, relay.port, relay.ca_pem, "wrong")
        async with InProcessNode(settings) as node:
            await node.send("app@example.org", ["bob@example.com"])
            failures = await node.wait_for_record("TransientFailure", count=2)
            assert not relay.messages
            (tmp_path / "password").write_text("right\n")  # the Secret is updated
            await relay.wait_for_messages(1)
            [delivery] = await node.wait_for_record("Delivery", "bob@example.com")
            assert len(node.node.spool) == 0
    reason = failures[0]["response"]
    assert reason["code"] == 454 and reason["enhanced_code"] == {
        "class": 4,
        "subject": 7,
        "detail": 8,
    }
    assert "refused AUTH PLAIN as 'apikey'" in reason["content"] and "535" in reason["content"]
    assert delivery["num_attempts"] >= 3
    assert (USER, False) in relay.auth_attempts and relay.auth_attempts[-1] == (USER, True)


async def test_smart_host_down_then_back(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    relay = SmartHost({USER: "pw"}, port=port)
    settings = relay_settings(tmp_path, port, relay.ca_pem, "pw")
    async with InProcessNode(settings) as node:
        recipients = [f"user{i}@example.com" for i in range(5)]
        await node.send("app@example.org", recipients)
        [failure, *_] = await node.wait_for_record("TransientFailure", "user0@example.com")
        assert "127.0.0.1" in failure["response"]["content"]
        assert len(node.node.spool) == 1
        async with relay:
            await relay.wait_for_messages(1)
            await node.wait_for_record("Delivery", count=5)
        assert len(node.node.spool) == 0
    assert sorted(relay.messages[0].rcpt_tos) == sorted(recipients)
