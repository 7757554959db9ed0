"""`mta log search` finds a message's whole history across rotated (compressed) and open
segments, for every record type a real scenario produces, while the node is running.

One relay sink scripts the outcomes: delivered, delivered after a 451, bounced (550, plus
the DSN to the sender), expired (450 until max_age), admin-bounced (held by 451), and the
node itself refuses a second RCPT (Rejection). `Delayed` is not produced by this node.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import orjson

from tests.integration.test_admin_harness import AdminNode
from tests.support.node import node_settings, wait_until
from tests.support.scenario import relay_target

SENDER = "alice@example.org"
EXPECTED = {
    "good@example.com": ["Reception", "Delivery"],
    "retry@example.com": ["Reception", "TransientFailure", "Delivery"],
    "bad@example.com": ["Reception", "Bounce"],
    "held@held.example": ["Reception", "TransientFailure", "AdminBounce"],
}


async def _search(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mta", "log", "search", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _found(log_dir: Path, *args: str) -> list[dict[str, Any]]:
    code, out, err = await _search("--path", str(log_dir), *args)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def _as_written(record: dict[str, Any]) -> Any:
    return orjson.loads(orjson.dumps(record, default=str))


async def test_every_record_type_is_found_by_search(tmp_path, sink_factory) -> None:
    relay = relay_target()
    await relay.start_sink(
        sink_factory,
        rcpt_replies_once={"retry@example.com": ["451 4.3.0 later"]},
        rcpt_replies={
            "bad@example.com": "550 5.1.1 no such user",
            "slow@example.com": "450 4.2.1 mailbox busy",
            "held@held.example": "451 4.4.1 held",
        },
    )
    log_dir = tmp_path / "logs"
    settings = node_settings(
        tmp_path,
        routes=relay.routes,
        smtp={"max_recipients": 1},
        queue={"retry_interval": "0.3s", "max_retry_interval": "0.3s", "max_age": "3s"},
        log={"path": str(log_dir), "segment_max_bytes": 3000},
    )
    async with AdminNode(settings) as node:
        for rcpt in [*EXPECTED, "slow@example.com"]:
            await node.send(SENDER, [rcpt])
        refused, _ = await node.send(SENDER, ["good2@example.com", "extra@example.com"])
        assert list(refused) == ["extra@example.com"]  # max_recipients: the node refuses it

        await node.wait_for_record("TransientFailure", "held@held.example")
        await node.ok("POST", "/api/admin/bounce/v1", {"domain": "held.example", "reason": "x"})
        for rcpt, types in EXPECTED.items():
            await node.wait_for_record(types[-1], rcpt)
        await node.wait_for_record("Expiration", "slow@example.com")
        await node.wait_for_record("Delivery", SENDER, count=2)  # DSNs: the bounce, the expiry
        records = node.node.records
        await wait_until(lambda: records.written == len(node.records), what="records on disk")

        files = sorted(path.name for path in log_dir.iterdir())
        assert sum(name.endswith(".jsonl.zst") for name in files) >= 3  # rotated, compressed
        assert files[-1].endswith(".jsonl")  # ... and the open segment

        # Each message's history, by id: exactly the records the node logged, in order.
        ids = sorted({r["id"] for r in node.records if r["id"]})
        found = await asyncio.gather(*(_found(log_dir, "--id", i) for i in ids))
        for message_id, history in zip(ids, found, strict=True):
            assert history == [_as_written(r) for r in node.records if r["id"] == message_id]

        # By recipient (any case): every type the scenario produced is there.
        found = await asyncio.gather(*(_found(log_dir, "--recipient", r.upper()) for r in EXPECTED))
        assert [[r["type"] for r in history] for history in found] == list(EXPECTED.values())
        slow = [r["type"] for r in await _found(log_dir, "--recipient", "slow@example.com")]
        assert slow[0] == "Reception" and slow[-1] == "Expiration"
        assert set(slow[1:-1]) == {"TransientFailure"}
        [rejection] = await _found(log_dir, "--recipient", "extra@example.com")
        assert rejection["type"] == "Rejection" and rejection["response"]["code"] == 452
        bounce = await _found(log_dir, "--recipient", "bad@example.com", "--since", "1h")
        assert bounce[-1]["bounce_classification"] == "InvalidRecipient"

        code, out, _ = await _search("--path", str(log_dir), "--recipient", "bad@example.com",
                                     "--table")  # fmt: skip
        assert code == 0
        header, *rows = out.splitlines()
        assert header.split()[:4] == ["time", "type", "id", "recipient"]
        assert [row.split()[2] for row in rows] == ["Reception", "Bounce"]
        assert "550" in rows[1] and "no such user" in rows[1]

        code, out, err = await _search("--path", str(log_dir), "--id", "no-such-id")
        assert (code, out) == (1, "") and "no matching records" in err
        code, _, err = await _search("--path", str(log_dir), "--recipient", "x@y", "--since", "1y")
        assert code == 2 and "--since" in err
