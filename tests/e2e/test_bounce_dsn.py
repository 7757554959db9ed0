"""A 5xx bounces at once with exactly one DSN to the sender; never a DSN for `<>`."""

import email

from tests.support.node import InProcessNode, node_settings, wait_until
from tests.support.scenario import mx_sink


async def test_5xx_sends_one_dsn(tmp_path, dns_server, sink_factory) -> None:
    target = await mx_sink(
        dns_server,
        sink_factory,
        "example.com",
        rcpt_replies={"gone@example.com": "550 5.1.1 no such user"},
    )
    sink, port = target.sink, target.port
    dns_server.add("example.org", "MX", "10 mx.example.com.")  # the sender's domain

    async with InProcessNode(
        node_settings(tmp_path, dns_port=dns_server.port, smtp_port=port)
    ) as node:
        await node.send("alice@example.org", ["gone@example.com", "bob@example.com"])
        [bounce] = await node.wait_for_record("Bounce", "gone@example.com")
        await node.wait_for_record("Delivery", "alice@example.org")
        [dsn] = [m for m in sink.messages if m.rcpt_tos == ["alice@example.org"]]

    assert bounce["response"]["code"] == 550
    assert bounce["bounce_classification"] == "InvalidRecipient"
    assert dsn.mail_from == ""
    parsed = email.message_from_bytes(dsn.data)
    assert parsed.get_content_type() == "multipart/report"
    report = parsed.get_payload()[1]
    assert report.get_content_type() == "message/delivery-status"
    text = dsn.data.decode()
    assert "Final-Recipient: rfc822; gone@example.com" in text
    assert "Status: 5.1.1" in text
    assert "bob@example.com" not in text.split("message/delivery-status")[1].split("--")[0]
    assert [m.rcpt_tos for m in sink.messages].count(["alice@example.org"]) == 1


async def test_no_dsn_for_null_sender(tmp_path, dns_server, sink_factory) -> None:
    target = await mx_sink(
        dns_server,
        sink_factory,
        "example.com",
        rcpt_replies={"gone@example.com": "550 5.1.1 no such user"},
    )
    sink, port = target.sink, target.port

    async with InProcessNode(
        node_settings(tmp_path, dns_port=dns_server.port, smtp_port=port)
    ) as node:
        await node.send("", ["gone@example.com"])
        await node.wait_for_record("Bounce", "gone@example.com")
        # A DSN would be queued before the bounced message leaves the queue.
        await wait_until(lambda: node.node.queue.stats()["messages"] == 0)

    assert sink.messages == []
    assert len(node.of_type("Reception")) == 1  # no DSN was ever queued
    assert len(node.node.spool) == 0
