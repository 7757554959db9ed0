"""The operator command line against a live node (`mta serve` in a child process).

The relay route points at a port where nothing listens, so injected mail stays queued while
the CLI inspects it and finally bounces it; suspensions and errors are checked on the side.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest

from mta.client import AdminClient, ClientError
from tests.support.net import free_port
from tests.support.node import NodeProcess, node_settings
from tests.support.scenario import relay_target

MESSAGE = "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: cli test\r\n\r\nHello.\r\n"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[NodeProcess]:
    # After the first (refused) attempt a message waits an hour in its scheduled queue, so
    # every command sees it in the same place.
    hour = {"retry_interval": "1h", "max_retry_interval": "1h", "max_age": "1d"}
    settings = node_settings(tmp_path, routes=relay_target().routes, queue=hour)
    process = NodeProcess(settings, tmp_path)
    try:
        await process.start()
        await asyncio.to_thread(_wait_for_http, process.http_url)
        yield process
    finally:
        await process.close()


def _wait_for_http(url: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    client = AdminClient(url, timeout=1)
    while True:
        try:
            client.check_liveness()
            return
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


async def mta(
    node: NodeProcess, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m mta --endpoint NODE ARGS` without the caller's MTA_* environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
    command = [sys.executable, "-m", "mta", "--endpoint", node.http_url, *args]
    return await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean, **(env or {})},
    )


async def ok(node: NodeProcess, *args: str) -> str:
    result = await mta(node, *args)
    assert (result.returncode, result.stderr) == (0, ""), args
    return result.stdout


async def fails(node: NodeProcess, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Run a command that must fail with exit 1 and one stderr line; return that line."""
    result = await mta(node, *args, env=env)
    assert result.returncode == 1, (args, result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


async def summary_until(node: NodeProcess, predicate: Callable[[str], bool]) -> str:
    """`mta queue summary` until its text satisfies `predicate` (queues change between runs)."""
    deadline = time.monotonic() + 10
    while not predicate(text := await ok(node, "queue", "summary")):
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.1)
    return text


async def test_inject_inspect_and_bounce(node: NodeProcess, tmp_path: Path) -> None:
    eml = tmp_path / "mail.eml"
    eml.write_text(MESSAGE, newline="")
    sender, rcpt = "alice@example.com", "bob@example.com"
    assert await ok(node, "inject", "--from", sender, "--to", rcpt, str(eml)) == (
        "1 accepted, 0 failed\n"
    )
    [reception] = await node.wait_for_record("Reception", rcpt)
    msg_id = reception["id"]
    await node.wait_for_record("TransientFailure", rcpt)

    summary = await ok(node, "queue", "summary")
    assert re.search(r"^example\.com +1 +1 ", summary, re.MULTILINE), summary
    as_json = json.loads(await ok(node, "queue", "summary", "--json"))
    assert as_json["scheduled"]["example.com"]["count"] == 1

    shown = await ok(node, "queue", "inspect", msg_id, "--body")
    assert re.search(rf"^id +{msg_id}$", shown, re.MULTILINE)
    assert re.search(rf"^sender +{sender}$", shown, re.MULTILINE)
    assert "Subject: cli test" in shown
    inspected = json.loads(await ok(node, "--json", "inspect-message", msg_id))
    assert (inspected["id"], inspected["message"]["recipient"]) == (msg_id, rcpt)
    assert inspected["message"]["data"] is None  # no --want-body, no content

    created = await ok(node, "bounce", "--domain", "example.com", "--reason", "cli purge")
    rule_id = created.split()[2]
    await node.wait_for_record("AdminBounce", rcpt)
    # The DSN to alice@example.com falls under the same rule while it lasts.
    await summary_until(node, lambda text: text.startswith("no queued messages\n"))
    listed = await ok(node, "bounce", "list")
    assert rule_id in listed and "cli purge" in listed
    assert await ok(node, "bounce", "cancel", rule_id) == f"cancelled bounce {rule_id}\n"
    assert await ok(node, "bounce-list") == "no active bounces\n"


async def test_suspend_list_and_cancel(node: NodeProcess) -> None:
    suspend = ("suspend", "--domain", "example.com", "--reason", "hold", "--json")
    created = json.loads(await ok(node, *suspend))
    listed = await ok(node, "suspend", "list")
    assert re.search(rf"^{created['id']} +example\.com +\S.* +hold$", listed, re.MULTILINE)
    [entry] = json.loads(await ok(node, "suspend-list", "--json"))
    assert entry["id"] == created["id"]
    await ok(node, "suspend-cancel", "--id", created["id"])
    assert await ok(node, "suspend", "list") == "no active suspensions\n"

    name = "unspecified->mx.example.com@smtp_client"
    suspend_ready = ("suspend-ready-q", "--name", name, "--reason", "block", "--duration", "1h")
    rule_id = (await ok(node, *suspend_ready)).split()[-1]
    assert name in await ok(node, "suspend-ready-q", "list")
    assert re.search(rf"^{re.escape(name)} +0 +0 .* yes ", await ok(node, "queue", "summary"), re.M)
    await ok(node, "suspend-ready-q", "cancel", rule_id)
    assert json.loads(await ok(node, "suspend-ready-q", "list", "--json")) == []


async def test_errors_name_the_problem(node: NodeProcess) -> None:
    missing = await fails(node, "queue", "inspect", "nosuchmessage")
    assert missing == "mta: 404: no such message nosuchmessage"
    bad_duration = await fails(node, "bounce", "--everything", "--reason", "r", "--duration", "x")
    assert bad_duration.startswith("mta: 400: ") and "duration: 'x'" in bad_duration
    unknown = await fails(node, "suspend", "cancel", "00000000-0000-0000-0000-000000000000")
    assert unknown.startswith("mta: 404: ")
    wrong = {"MTA_PASSWORD": "wrong"}
    unauthorized = await fails(node, "--user", "nobody", "bounce", "list", env=wrong)
    assert unauthorized == "mta: 401 unauthorized: check --user/MTA_PASSWORD"
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = await fails(node, "--endpoint", closed, "queue", "summary")
    assert unreachable == f"mta: cannot reach {closed}: connection refused"
