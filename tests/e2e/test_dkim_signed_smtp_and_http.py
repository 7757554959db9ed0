"""Mail injected over SMTP and over the HTTP API leaves the node signed with every key of the
From domain (RSA-2048 and Ed25519), and the sink's copy verifies with dkimpy against the
test DNS server; the domain's keys sign once, at acceptance."""

import aiohttp

from tests.support.dkim import publish, signature_count, verify_all, write_key
from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import relay_target

BODIES = [
    b".leading dot\r\n..two\r\n.\r\nafter a lone dot\r\n",
    b"y" * 998 + b"\r\n",
    "8-bit: Grüße aus Köln\r\n".encode(),
    b"trailing blank lines\r\n\r\n\r\n",
]


def dkim_settings(tmp_path, dns_server) -> dict:
    rsa_path, rsa_key = write_key(tmp_path / "keys", "rsa1")
    ed_path, ed_key = write_key(tmp_path / "keys", "ed1", "ed25519-sha256")
    publish(dns_server, "example.org", "rsa1", rsa_key)
    publish(dns_server, "example.org", "ed1", ed_key)
    return {
        "example.org": {
            "selector": "rsa1",
            "key_file": str(rsa_path),
            "required": True,
            "keys": [{"selector": "ed1", "key_file": str(ed_path), "algorithm": "ed25519-sha256"}],
        }
    }


def smtp_message(i: int, body: bytes) -> bytes:
    return (
        f"From: Alice <alice@example.org>\r\nTo: rcpt{i}@example.com\r\nSubject: smtp {i}\r\n\r\n"
    ).encode() + body


async def test_smtp_and_http_injections_arrive_signed(tmp_path, dns_server, sink_factory) -> None:
    target = relay_target()
    sink = await target.start_sink(sink_factory)
    settings = node_settings(
        tmp_path, dns_port=dns_server.port, routes=target.routes,
        dkim=dkim_settings(tmp_path, dns_server),
    )  # fmt: skip
    payload = {
        "envelope_sender": "alice@example.org",
        "content": "From: Alice <alice@example.org>\r\nSubject: via http\r\n\r\n"
        ".dot\r\nÀ bientôt\r\n",
        "recipients": [{"email": "http1@example.com"}, {"email": "http2@example.com"}],
    }
    async with InProcessNode(settings) as node:
        for i, body in enumerate(BODIES):
            await node.send("alice@example.org", [f"rcpt{i}@example.com"], smtp_message(i, body))
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{node.http_url}/api/inject/v1", json=payload) as response,
        ):
            answer = (response.status, await response.json())
        await sink.wait_for_messages(len(BODIES) + 2, timeout=20)

    assert answer[0] == 200 and answer[1]["success_count"] == 2
    assert len(sink.messages) == len(BODIES) + 2
    for received in sink.messages:
        results = await verify_all(received.data, dns_server.port)
        assert signature_count(received.data) == 2, received.data[:600]
        assert sorted((r.domain, r.selector, r.ok) for r in results) == [
            ("example.org", "ed1", True),
            ("example.org", "rsa1", True),
        ], received.rcpt_tos


async def test_unconfigured_domain_is_not_signed(tmp_path, dns_server, sink_factory) -> None:
    target = relay_target()
    sink = await target.start_sink(sink_factory)
    settings = node_settings(
        tmp_path, dns_port=dns_server.port, routes=target.routes,
        dkim=dkim_settings(tmp_path, dns_server),
    )  # fmt: skip
    message = b"From: someone@other.test\r\nSubject: x\r\n\r\nbody\r\n"
    async with InProcessNode(settings) as node:
        await node.send("someone@other.test", ["bob@example.com"], message)
        [received] = await sink.wait_for_messages(1)

    assert signature_count(received.data) == 0
    assert received.data.endswith(message)
