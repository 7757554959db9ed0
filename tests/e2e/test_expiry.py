"""Past max_age a message expires: an Expiration record per recipient and one DSN."""

from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import mx_sink


async def test_expiry(tmp_path, dns_server, sink_factory) -> None:
    target = await mx_sink(
        dns_server,
        sink_factory,
        "example.com",
        rcpt_replies={"slow@example.com": "450 4.2.1 mailbox busy"},
    )
    sink, port = target.sink, target.port
    settings = node_settings(
        tmp_path,
        dns_port=dns_server.port,
        smtp_port=port,
        queue={"retry_interval": "0.3s", "max_retry_interval": "0.3s", "max_age": "1s"},
    )

    async with InProcessNode(settings) as node:
        await node.send("alice@example.com", ["slow@example.com"])
        [expiration] = await node.wait_for_record("Expiration", "slow@example.com")
        [dsn] = await sink.wait_for_messages(1)

    transient = node.of_type("TransientFailure", "slow@example.com")
    assert len(transient) >= 2
    assert expiration["response"]["code"] == 551
    assert expiration["response"]["enhanced_code"] == {"class": 5, "subject": 4, "detail": 7}
    assert "450 4.2.1 mailbox busy" in expiration["response"]["content"]
    assert expiration["bounce_classification"] == "MessageExpired"
    assert dsn.mail_from == "" and dsn.rcpt_tos == ["alice@example.com"]
    assert b"Final-Recipient: rfc822; slow@example.com" in dsn.data
    assert node.of_type("Delivery", "slow@example.com") == []
