"""Every record type the node produces, from a real scenario, carries KumoMTA's field set with
the right values: one relay sink (STARTTLS) scripts delivered, 451-then-delivered, bounced,
expired and held (then admin-bounced) recipients; the node refuses a recipient over its limit
(Rejection); a message comes in over HTTP with per-recipient metadata.
"""

from __future__ import annotations

import re
import time
from typing import Any

import aiohttp

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings
from tests.support.scenario import relay_target
from tests.support.tls import make_self_signed_context

SENDER = "alice@example.org"
FIELDS = {
    "type", "id", "sender", "recipient", "queue", "site", "size", "response", "peer_address",
    "timestamp", "created", "num_attempts", "bounce_classification", "egress_pool",
    "egress_source", "source_address", "provider", "feedback_report", "meta", "headers",
    "delivery_protocol", "reception_protocol", "nodeid", "tls_cipher", "tls_protocol_version",
}  # fmt: skip
TAGGED = (
    "From: alice@example.org\r\nTo: good@example.com\r\nSubject: tagged\r\n"
    "X-Tenant: acme\r\nX-Campaign: spring\r\n\r\nHello.\r\n"
)
Record = dict[str, Any]


def _common(record: Record, started: int) -> None:
    assert set(record) == FIELDS
    assert record["nodeid"] == "test-node"
    assert record["sender"] in {SENDER, ""}  # "": the node's DSNs
    assert started <= record["created"] <= record["timestamp"] <= time.time()
    assert isinstance(record["meta"], dict) and isinstance(record["headers"], dict)
    response = record["response"]
    assert set(response) == {"code", "enhanced_code", "content", "command"}
    assert isinstance(response["code"], int) and isinstance(response["content"], str)
    enhanced = response["enhanced_code"]  # None when the reply had no enhanced code
    assert enhanced is None or set(enhanced) == {"class", "subject", "detail"}
    assert enhanced is None or enhanced["class"] == response["code"] // 100
    if record["type"] != "Rejection":  # an HTTP inject's ids: the request's, "-" its index
        assert re.fullmatch(r"[0-9a-f]{32}(-\d+)?", record["id"])
        assert record["size"] > 0


def _outbound(record: Record, site: str, code: int, attempts: int) -> None:
    """Fields of a record of a delivery attempt through the relay (STARTTLS)."""
    assert record["site"] == site
    assert record["response"]["code"] == code
    assert record["response"]["command"] in {"RCPT", "."}
    assert record["peer_address"]["addr"] == site.split(":")[1]
    assert record["num_attempts"] == attempts
    assert record["delivery_protocol"] == "ESMTP"
    assert record["reception_protocol"] == "ESMTP"
    assert record["tls_protocol_version"] in {"TLSv1.2", "TLSv1.3"} and record["tls_cipher"]


async def _inject(node: AdminNode) -> None:
    payload = {
        "envelope_sender": SENDER,
        "recipients": [{"email": "http@example.com", "metadata": {"ref": "r-1"}}],
        "content": "Subject: over http\r\n\r\nHello.\r\n",
    }
    url = node.http_url + "/api/inject/v1"
    async with aiohttp.ClientSession() as http, http.post(url, json=payload) as response:
        assert response.status == 200
        assert (await response.json())["success_count"] == 1


async def test_each_record_type_has_the_kumomta_fields(tmp_path, sink_factory) -> None:
    started = int(time.time())
    relay = relay_target()
    await relay.start_sink(
        sink_factory,
        starttls=make_self_signed_context("relay.test"),
        rcpt_replies_once={"retry@example.com": ["451 4.3.0 later"]},
        rcpt_replies={
            "bad@example.com": "550 5.1.1 no such user",
            "slow@example.com": "450 4.2.1 mailbox busy",
            "held@held.example": "451 4.4.1 held",
        },
    )
    routes = [{**relay.routes[0], "tls": "starttls", "tls_verify": False}]
    settings = node_settings(
        tmp_path,
        routes=routes,
        smtp={"max_recipients": 1},
        queue={"retry_interval": "0.3s", "max_retry_interval": "0.3s", "max_age": "3s"},
    )
    site = f"relay:{relay.host}:{relay.port}"
    async with AdminNode(settings) as node:
        await node.send(SENDER, ["good@example.com"], TAGGED)
        for rcpt in ("retry@example.com", "bad@example.com", "slow@example.com"):
            await node.send(SENDER, [rcpt])
        await node.send(SENDER, ["held@held.example"])
        refused, _ = await node.send(SENDER, ["good2@example.com", "extra@example.com"])
        assert list(refused) == ["extra@example.com"]
        await _inject(node)
        await node.wait_for_record("TransientFailure", "held@held.example")
        await node.ok("POST", "/api/admin/bounce/v1", {"domain": "held.example", "reason": "x"})

        [good] = await node.wait_for_record("Delivery", "good@example.com")
        [transient] = await node.wait_for_record("TransientFailure", "retry@example.com")
        [retried] = await node.wait_for_record("Delivery", "retry@example.com")
        [bounce] = await node.wait_for_record("Bounce", "bad@example.com")
        [expired] = await node.wait_for_record("Expiration", "slow@example.com")
        [admin] = await node.wait_for_record("AdminBounce", "held@held.example")
        [http_delivery] = await node.wait_for_record("Delivery", "http@example.com")
        [rejection] = node.of_type("Rejection", "extra@example.com")
        receptions = {r["recipient"]: r for r in node.of_type("Reception")}

    for record in node.records:
        _common(record, started)

    reception = receptions["good@example.com"]
    assert reception["queue"] == "spring:acme@example.com"
    assert reception["meta"] == {"tenant": "acme", "campaign": "spring"}
    assert reception["site"] == "" and reception["num_attempts"] == 0
    assert reception["response"]["code"] == 250 and reception["reception_protocol"] == "ESMTP"
    assert reception["peer_address"] == {"name": "client.test", "addr": "127.0.0.1"}
    assert reception["delivery_protocol"] is None and reception["tls_cipher"] is None

    http = receptions["http@example.com"]
    assert http["reception_protocol"] == "HTTP" and http["meta"]["ref"] == "r-1"
    assert http["peer_address"]["addr"] == "127.0.0.1"
    assert http_delivery["reception_protocol"] == "HTTP" and http_delivery["meta"]["ref"] == "r-1"

    _outbound(good, site, 250, 1)
    assert good["response"]["command"] == "."
    assert (good["id"], good["queue"], good["meta"]) == (
        reception["id"], reception["queue"], reception["meta"]
    )  # fmt: skip
    assert good["size"] == reception["size"] and good["created"] == reception["created"]

    _outbound(transient, site, 451, 1)
    assert transient["response"]["enhanced_code"] == {"class": 4, "subject": 3, "detail": 0}
    _outbound(retried, site, 250, 2)

    _outbound(bounce, site, 550, 1)
    assert bounce["bounce_classification"] == "InvalidRecipient"
    assert bounce["response"]["content"] == "no such user"

    assert expired["bounce_classification"] == "MessageExpired"
    assert expired["response"]["code"] >= 500 and expired["num_attempts"] >= 1
    assert "450 4.2.1 mailbox busy" in expired["response"]["content"]

    assert admin["site"] == "localhost" and admin["queue"] == "held.example"
    assert admin["response"]["code"] == 551 and "x" in admin["response"]["content"]
    assert admin["num_attempts"] >= 1

    assert rejection["id"] == "" and rejection["response"]["code"] == 452
    assert rejection["response"]["command"].startswith("RCPT")  # the command line as received
    assert rejection["peer_address"]["addr"] == "127.0.0.1"
    assert rejection["reception_protocol"] == "ESMTP"
