"""Hard bounce -> suppressed -> the next injections are refused (SMTP and HTTP) -> entry expires.

The sink answers `550 5.1.1 user unknown` to bob at RCPT; the node classifies the Bounce as
InvalidRecipient and suppresses bob for the default tenant for `[suppression] ttl` (short
here). The list is read through the admin API and the `mta suppression` command.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from typing import Any

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings, simple_message
from tests.support.scenario import relay_target

PATH = "/api/admin/suppression/v1"
INJECT = "/api/inject/v1"
SENDER = "alice@example.org"
BOB = "bob@example.com"
TTL_SECONDS = 15  # long enough for the checks below on a busy machine
BOUNCE_TEXT = "550 5.1.1 user unknown"
REFUSAL = f"recipient suppressed: {BOUNCE_TEXT}"


async def mta(node: AdminNode, *args: str) -> str:
    """`python -m mta --endpoint NODE ARGS` (without the caller's MTA_* environment)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
    command = [sys.executable, "-m", "mta", "--endpoint", node.http_url, *args]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=30, env=clean
    )
    assert (result.returncode, result.stderr) == (0, ""), args
    return result.stdout


async def listed(node: AdminNode, want: int, **params: str) -> list[dict[str, Any]]:
    """The admin API's list once it has `want` entries (additions are asynchronous)."""
    deadline = time.monotonic() + 15
    while True:
        entries: list[dict[str, Any]] = await node.ok("GET", PATH, params=params)
        if len(entries) == want:
            return entries
        assert time.monotonic() < deadline, f"expected {want} entries, have {entries}"
        await asyncio.sleep(0.05)


def inject_body(*recipients: str, headers: str = "") -> dict[str, Any]:
    return {
        "envelope_sender": SENDER,
        "recipients": [{"email": rcpt} for rcpt in recipients],
        "content": f"From: {SENDER}\r\n{headers}Subject: hi\r\n\r\nHello.\r\n",
        "template_dialect": "Static",
    }


async def test_hard_bounce_suppresses_until_the_entry_expires(tmp_path, sink_factory) -> None:
    relay = relay_target()
    sink = await relay.start_sink(sink_factory, rcpt_replies={BOB: BOUNCE_TEXT})
    settings = node_settings(tmp_path, routes=relay.routes, suppression={"ttl": f"{TTL_SECONDS}s"})
    async with AdminNode(settings) as node:
        await node.send(SENDER, [BOB, "carol@example.com"])
        [bounce] = await node.wait_for_record("Bounce", BOB)
        assert bounce["bounce_classification"] == "InvalidRecipient"
        await node.wait_for_record("Delivery", "carol@example.com")

        [entry] = await listed(node, 1)
        assert {k: entry[k] for k in ("tenant", "recipient", "classification", "source")} == {
            "tenant": None,
            "recipient": BOB,
            "classification": "InvalidRecipient",
            "source": "bounce",
        }
        assert entry["reason"] == BOUNCE_TEXT
        assert await node.ok("GET", PATH, params={"tenant": "", "recipient": BOB}) == [entry]
        assert await node.ok("GET", PATH, params={"tenant": "acme"}) == []
        created, expires = (dt.datetime.fromisoformat(entry[k]) for k in ("created", "expires"))
        assert abs((expires - created).total_seconds() - TTL_SECONDS) < 0.01

        # SMTP: refused at RCPT with 550 5.1.1 and the reason; the other recipient goes on.
        refused, _ = await node.send(SENDER, [BOB, "dave@example.com"])
        assert refused == {BOB: (550, f"5.1.1 {REFUSAL}")}
        [rejection] = node.of_type("Rejection", BOB)
        assert rejection["response"]["code"] == 550
        assert rejection["response"]["content"] == REFUSAL
        await node.wait_for_record("Delivery", "dave@example.com")

        # HTTP inject: an `errors` entry for bob, no message for him; erin is injected.
        answer = await node.ok("POST", INJECT, inject_body(BOB, "erin@example.com"))
        assert answer == {
            "success_count": 1,
            "fail_count": 1,
            "failed_recipients": [BOB],
            "errors": [f"{BOB}: {REFUSAL}"],
        }
        await node.wait_for_record("Delivery", "erin@example.com")
        assert len(node.of_type("Rejection", BOB)) == 2
        assert [r["reception_protocol"] for r in node.of_type("Rejection", BOB)][1] == "HTTP"
        status, metrics = await node.call("GET", "/metrics")
        assert status == 200
        assert "mta_suppression_refused_total 2.0" in metrics
        assert 'mta_suppression_added_total{source="bounce"} 1.0' in metrics

        assert json.loads(await mta(node, "suppression", "list", "--json")) == [entry]
        text = await mta(node, "suppression", "list")
        assert BOB in text and "InvalidRecipient" in text and "(default)" in text

        # Once the ttl has passed, bob is accepted again (and bounces again at the sink).
        await listed(node, 0)
        refused, _ = await node.send(SENDER, [BOB])
        assert refused == {}
        await node.wait_for_record("Bounce", BOB, count=2)

    assert BOB not in [rcpt for message in sink.messages for rcpt in message.rcpt_tos]
    assert len(node.of_type("Reception", BOB)) == 2  # the first message and the last


async def test_tenant_entries_apply_to_that_tenant_only(tmp_path, sink_factory) -> None:
    relay = relay_target()
    sink = await relay.start_sink(sink_factory)
    async with AdminNode(node_settings(tmp_path, routes=relay.routes)) as node:
        added = await mta(
            node, "suppression", "add", "Frank@Example.com", "--tenant", "acme",
            "--reason", "complained", "--duration", "1h",
        )  # fmt: skip
        assert "suppressed frank@example.com" in added
        [entry] = await listed(node, 1, tenant="acme")
        assert (entry["source"], entry["reason"], entry["tenant"]) == (
            "admin",
            "complained",
            "acme",
        )

        # SMTP: the tenant is in the X-Tenant header, so frank is dropped at DATA time.
        tenant_mail = b"X-Tenant: acme\r\n" + simple_message()
        rcpts = ["frank@example.com", "grace@example.com"]
        refused, reply = await node.send(SENDER, rcpts, tenant_mail)
        assert refused == {} and reply.startswith("2.0.0 OK queued")
        [rejection] = await node.wait_for_record("Rejection", "frank@example.com")
        assert rejection["meta"] == {"tenant": "acme"}
        assert rejection["response"]["content"] == "recipient suppressed: complained"
        await node.wait_for_record("Delivery", "grace@example.com")

        # HTTP inject for the tenant: refused; without a tenant, frank is accepted.
        tenant_body = inject_body("frank@example.com", headers="X-Tenant: acme\r\n")
        answer = await node.ok("POST", INJECT, tenant_body)
        assert answer["errors"] == ["frank@example.com: recipient suppressed: complained"]
        answer = await node.ok("POST", INJECT, inject_body("frank@example.com"))
        assert answer["success_count"] == 1
        await node.wait_for_record("Delivery", "frank@example.com")

        assert "removed frank@example.com" in await mta(
            node, "suppression", "remove", "frank@example.com", "--tenant", "acme"
        )
        assert await node.ok("GET", PATH) == []
        status, text = await node.call("DELETE", PATH, params={"recipient": "frank@example.com"})
        assert (status, text) == (404, "frank@example.com is not suppressed")

    delivered = sorted(r for m in sink.messages for r in m.rcpt_tos)
    assert delivered == ["frank@example.com", "grace@example.com"]
