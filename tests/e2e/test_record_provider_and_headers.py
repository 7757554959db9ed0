"""Records name the provider the destination matched (shaping `[provider."x"]`) and carry the
message headers listed in `[log] headers`, from Reception to Delivery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.node import InProcessNode, node_settings
from tests.support.scenario import mx_sink

DOMAIN = "mailco.example"
SHAPING = """
[provider."mailco"]
match = [{ MXSuffix = ".mailco.example" }]
max_deliveries_per_connection = 10
"""


async def test_provider_and_selected_headers_in_records(
    tmp_path: Path, dns_server: Any, sink_factory: Any
) -> None:
    target = await mx_sink(dns_server, sink_factory, DOMAIN)
    shaping = tmp_path / "shaping.toml"
    shaping.write_text(SHAPING)
    settings = node_settings(
        tmp_path,
        dns_port=dns_server.port,
        smtp_port=target.port,
        shaping={"files": [str(shaping)]},
        log={"stdout": False, "headers": ["Subject", "X-Campaign", "X-Absent"]},
    )
    message = (
        f"From: a@example.org\r\nTo: b@{DOMAIN}\r\nSubject: Spring\r\n sale\r\n"
        "X-Campaign: spring\r\n\r\nbody\r\n"
    )
    async with InProcessNode(settings) as node:
        await node.send("a@example.org", [f"b@{DOMAIN}"], message)
        [delivery] = await node.wait_for_record("Delivery", f"b@{DOMAIN}")
        [reception] = node.of_type("Reception", f"b@{DOMAIN}")

    expected = {"Subject": "Spring sale", "X-Campaign": "spring"}
    assert reception["headers"] == expected
    assert delivery["headers"] == expected
    assert delivery["provider"] == "mailco"
    assert reception["provider"] is None  # not known before a destination is resolved
