"""The demo payload POSTed to `/api/inject/v1` of a running `mta serve` from the trusted
loopback, with two more templated recipients and a bad one: KumoMTA's answer, and each built
message arrives at the sink as multipart/alternative with From, Reply-To and Subject."""

from __future__ import annotations

import base64
import copy
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.node import NodeProcess, node_settings
from tests.support.payloads import SAMPLE_PAYLOAD
from tests.support.scenario import relay_target


def payload() -> dict[str, Any]:
    body = copy.deepcopy(SAMPLE_PAYLOAD)
    body["content"]["text_body"] += " for {{ name }}"
    body["recipients"] += [
        {"email": "ann@example.net", "name": "Ann", "metadata": {"campaign_id": "c1"}},
        {"email": "bob@example.org", "name": "Bob"},
        {"email": "bad@example.com, evil@example.com"},
    ]
    body["trace_headers"] = {"include_meta_names": ["campaign_id"]}
    return body


def parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_demo_payload_is_delivered_as_built(tmp_path: Path, sink_factory: Any) -> None:
    relay = relay_target()
    sink = await relay.start_sink(sink_factory)
    node = NodeProcess(node_settings(tmp_path, routes=relay.routes), tmp_path)
    await node.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(node.http_url + "/api/inject/v1", json=payload()) as response,
        ):
            status, answer = response.status, await response.json()
        await sink.wait_for_messages(3, timeout=15)
        await node.wait_for_record("Delivery", count=3)
    finally:
        await node.close()

    assert status == 200
    assert answer == {
        "success_count": 3,
        "fail_count": 1,
        "failed_recipients": ["bad@example.com, evil@example.com"],
        "errors": [answer["errors"][0]],
    }
    assert answer["errors"][0].startswith("bad@example.com, evil@example.com: invalid address")
    by_recipient = {m.rcpt_tos[0]: m for m in sink.messages}
    assert sorted(by_recipient) == ["ann@example.net", "bob@example.org", "someone@example.com"]
    assert all(len(m.rcpt_tos) == 1 and m.mail_from == "test@example.com" for m in sink.messages)
    for recipient, received in by_recipient.items():
        message = parsed(received.data)
        assert message.get_content_type() == "multipart/alternative"
        sender = message["From"].addresses[0]
        assert (sender.display_name, sender.addr_spec) == ("Test", "test@example.com")
        reply_to = message["Reply-To"].addresses[0]
        assert (reply_to.display_name, reply_to.addr_spec) == ("Test", "test@example.com")
        assert message["Subject"] == "This is the subject"
        assert message["To"].addresses[0].addr_spec == recipient
        text, html = message.iter_parts()
        name = {"ann@example.net": "Ann", "bob@example.org": "Bob"}.get(recipient, "")
        assert text.get_content() == f"This is the plain text part for {name}"
        assert html.get_content() == "<p>This is the <b>HTML</b> part</p>"
    reference = json.loads(
        base64.b64decode(str(parsed(by_recipient["ann@example.net"].data)["X-KumoRef"]))
    )
    assert reference == {"_@_": "\\_/", "recipient": "ann@example.net", "campaign_id": "c1"}
    receptions = node.of_type("Reception")
    assert len(receptions) == 3
    assert {r["reception_protocol"] for r in receptions} == {"HTTP"}
