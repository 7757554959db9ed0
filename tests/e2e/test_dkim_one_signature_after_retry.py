"""Sign once: a message deferred by the receiver (451) and retried, or left in the spool across
a node restart, still carries exactly one signature per key, and it still verifies."""

from collections import Counter

from tests.support.dkim import publish, verify_all, write_key
from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import relay_target

MESSAGE = b"From: alice@example.org\r\nTo: bob@example.com\r\nSubject: retry\r\n\r\nbody\r\n"


def settings_with_keys(tmp_path, dns_server, routes) -> dict:
    rsa_path, rsa_key = write_key(tmp_path / "keys", "rsa1")
    ed_path, ed_key = write_key(tmp_path / "keys", "ed1", "ed25519-sha256")
    publish(dns_server, "example.org", "rsa1", rsa_key)
    publish(dns_server, "example.org", "ed1", ed_key)
    dkim = {
        "example.org": {
            "keys": [
                {"selector": "rsa1", "key_file": str(rsa_path)},
                {"selector": "ed1", "key_file": str(ed_path), "algorithm": "ed25519-sha256"},
            ]
        }
    }
    return node_settings(tmp_path, dns_port=dns_server.port, routes=routes, dkim=dkim)


async def assert_signed_once_per_key(data: bytes, dns_port: int) -> None:
    results = await verify_all(data, dns_port)
    assert Counter(r.selector for r in results) == {"rsa1": 1, "ed1": 1}
    assert all(r.ok for r in results), results


async def test_retry_does_not_sign_again(tmp_path, dns_server, sink_factory) -> None:
    target = relay_target()
    sink = await target.start_sink(sink_factory, data_replies=["451 4.3.0 try again later"])
    async with InProcessNode(settings_with_keys(tmp_path, dns_server, target.routes)) as node:
        await node.send("alice@example.org", ["bob@example.com"], MESSAGE)
        await node.wait_for_record("TransientFailure", "bob@example.com")
        [received] = await sink.wait_for_messages(1, timeout=15)
        [delivery] = await node.wait_for_record("Delivery", "bob@example.com")

    assert delivery["num_attempts"] == 2
    await assert_signed_once_per_key(received.data, dns_server.port)


async def test_restart_does_not_sign_again(tmp_path, dns_server, sink_factory) -> None:
    target = relay_target()  # no sink yet: the first node can only defer
    settings = settings_with_keys(tmp_path, dns_server, target.routes)
    async with InProcessNode(settings) as node:
        await node.send("alice@example.org", ["bob@example.com"], MESSAGE)
        await node.wait_for_record("TransientFailure", "bob@example.com")
    sink = await target.start_sink(sink_factory)
    async with InProcessNode(settings) as node:
        [received] = await sink.wait_for_messages(1, timeout=15)
        await node.wait_for_record("Delivery", "bob@example.com")

    await assert_signed_once_per_key(received.data, dns_server.port)
