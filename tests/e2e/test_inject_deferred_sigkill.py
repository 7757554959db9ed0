"""SIGKILL right after a `deferred_generation` request was answered 200 loses nothing and
duplicates nothing: after a restart every one of its 50 recipients is delivered exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.node import NodeProcess, node_settings
from tests.support.scenario import relay_target

RECIPIENTS = 50


def deferred_request() -> dict[str, Any]:
    return {
        "envelope_sender": "news@example.org",
        "deferred_generation": True,
        "content": {
            "subject": "Hello {{ name }}",
            "text_body": "Dear {{ name }}, number {{ n }}.",
            "from": {"email": "news@example.org", "name": "News"},
        },
        "recipients": [
            {"email": f"rcpt{i}@example.com", "name": f"R{i}", "substitutions": {"n": i}}
            for i in range(RECIPIENTS)
        ],
    }


async def test_deferred_batch_survives_sigkill(tmp_path: Path, sink_factory: Any) -> None:
    relay = relay_target()  # the sink is down until the restart
    settings = node_settings(tmp_path, routes=relay.routes)
    node = NodeProcess(settings, tmp_path)
    await node.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(node.http_url + "/api/inject/v1", json=deferred_request()) as response,
        ):
            status, answer = response.status, await response.json()
        node.kill()  # right after the 200: expansion has barely started, if at all
    finally:
        await node.close()
    assert status == 200
    assert answer == {"success_count": 0, "fail_count": 0, "failed_recipients": [], "errors": []}

    sink = await relay.start_sink(sink_factory)
    restarted = NodeProcess(settings, tmp_path)
    await restarted.start()
    try:
        await sink.wait_for_messages(RECIPIENTS, timeout=30)
        await restarted.wait_for_record("Delivery", count=RECIPIENTS, timeout=30)
        assert await restarted.terminate() == 0  # drains: any duplicate would arrive by now
    finally:
        await restarted.close()

    delivered = Counter(r for m in sink.messages for r in m.rcpt_tos)
    assert delivered == Counter(f"rcpt{i}@example.com" for i in range(RECIPIENTS))
    subjects = {m.data.split(b"Subject: ")[1].split(b"\r\n")[0] for m in sink.messages}
    assert subjects == {f"Hello R{i}".encode() for i in range(RECIPIENTS)}
