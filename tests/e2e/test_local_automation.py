"""Automation on a single node (no TSA): a receiver's 421 4.7.28 suspends its site and
slows its path for the rule's duration; both show in the queue summary with reason and
expiry, end by themselves, and the message is then delivered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.node import InProcessNode, node_settings, wait_until
from tests.support.scenario import mx_sink

DOMAIN = "pushy.example"
SITE = f"mx.{DOMAIN}"
SHAPING = f"""
["{DOMAIN}"]
max_message_rate = "100/s"

[["{DOMAIN}".automation]]
regex = '4\\.7\\.28'
action = ["Suspend", {{ SetConfig = {{ name = "max_message_rate", value = "1/m" }} }}]
trigger = "Immediate"
duration = "3s"
"""


def rate_on_path(node: InProcessNode) -> tuple[str, str]:
    resolved = node.node.engine.rules.resolve(DOMAIN, mx_hosts=[SITE])
    origin = resolved.origin("max_message_rate")
    return str(resolved.config.max_message_rate), origin.file if origin else ""


async def test_local_rule_suspends_and_overrides_then_expires(
    tmp_path: Path, dns_server: Any, sink_factory: Any
) -> None:
    target = await mx_sink(dns_server, sink_factory, DOMAIN, mail_reply="421 4.7.28 slow down")
    shaping = tmp_path / "shaping.toml"
    shaping.write_text(SHAPING)
    settings = node_settings(
        tmp_path,
        dns_port=dns_server.port,
        smtp_port=target.port,
        shaping={"files": [str(shaping)]},
        queue={"retry_interval": "1s", "max_retry_interval": "1s", "max_age": "1h"},
    )
    async with InProcessNode(settings) as node:
        admin = node.node.api.admin
        await node.send("alice@example.org", [f"bob@{DOMAIN}"])
        await node.wait_for_record("TransientFailure", f"bob@{DOMAIN}")
        await wait_until(lambda: bool(admin.ready_suspensions()), 5, "the suspension")

        [suspension] = admin.ready_suspensions()
        assert suspension.name == SITE
        assert suspension.reason.startswith("automation: ")
        assert "4.7.28" in suspension.reason
        assert rate_on_path(node) == ("1/m", "automation overrides")
        summary = admin.summary()
        assert [rule["kind"] for rule in summary["rules"]] == ["ready_suspension"]
        [override] = summary["shaping_overrides"]
        assert (override["option"], override["value"]) == ("max_message_rate", "1/m")
        assert override["expires"] and override["reason"]

        target.sink.mail_reply = None  # the receiver is fine again
        await wait_until(lambda: not admin.ready_suspensions(), 6, "the suspension to end")
        await wait_until(lambda: rate_on_path(node)[0] == "100/s", 4, "the override to end")
        await target.sink.wait_for_messages(1, timeout=15)
        [delivery] = await node.wait_for_record("Delivery", f"bob@{DOMAIN}")
        assert delivery["num_attempts"] >= 2
