"""A node posts its outcome records to a webhook in signed batches, exactly as it logged them.

Delivered, delivered after a 451, and bounced (550; the DSN to the sender is delivered too):
the receiver gets every Delivery/TransientFailure/Bounce record once, signed with the secret
from the file, and none of the Reception records (not a default type). The metrics move.
"""

from __future__ import annotations

import aiohttp
import orjson

from tests.support.node import InProcessNode, node_settings, wait_until
from tests.support.scenario import relay_target
from tests.support.webhook_receiver import WebhookReceiver

SECRET = b"0123456789abcdef0123456789abcdef"
SENDER = "alice@example.org"


async def test_signed_batches_match_the_log(tmp_path, sink_factory) -> None:
    relay = relay_target()
    await relay.start_sink(
        sink_factory,
        rcpt_replies_once={"retry@example.com": ["451 4.3.0 later"]},
        rcpt_replies={"bad@example.com": "550 5.1.1 no such user"},
    )
    secret_file = tmp_path / "hook.secret"
    secret_file.write_bytes(SECRET + b"\n")
    settings = node_settings(tmp_path, routes=relay.routes)
    async with WebhookReceiver(secret=SECRET) as receiver:
        settings["webhooks"] = [
            {"name": "crm", "url": receiver.url, "secret_file": str(secret_file),
             "batch_size": 2, "max_delay": "0.1s"},
        ]  # fmt: skip
        async with InProcessNode(settings) as node:
            for rcpt in ("good@example.com", "retry@example.com", "bad@example.com"):
                await node.send(SENDER, [rcpt])
            await node.wait_for_record("Delivery", count=3)  # good, retry, the DSN
            await node.wait_for_record("Bounce", "bad@example.com")
            outcomes = [r for r in node.records if r["type"] != "Reception"]
            await receiver.wait_for_records(len(outcomes))
            await wait_until(
                lambda: node.node.webhooks.stats()["crm"].sent == len(outcomes), what="acks"
            )
            async with (
                aiohttp.ClientSession() as session,
                session.get(node.http_url + "/metrics") as response,
            ):
                metrics = await response.text()

    assert receiver.bad_signatures == 0 and receiver.requests == len(receiver.batches)
    assert all(len(batch) <= 2 for batch in receiver.batches)
    assert receiver.records == [orjson.loads(orjson.dumps(r)) for r in outcomes]
    assert {r["type"] for r in receiver.records} == {"Delivery", "TransientFailure", "Bounce"}
    assert (tmp_path / "spool" / "webhooks" / "crm").is_dir()  # the queue lives in the spool
    assert f'mta_webhook_sent_total{{webhook="crm"}} {len(outcomes)}.0' in metrics
    assert 'mta_webhook_backlog{webhook="crm"} 0.0' in metrics
    assert "mta_log_records_dropped_total 0.0" in metrics
