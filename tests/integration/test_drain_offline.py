"""`mta spool drain --to`: a stopped node's spool handed to a running peer, which delivers it.

The drain runs as the real command (a child process); the peer is an in-process node whose
HTTP API trusts no address, so the drain must authenticate as one of its admin users.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from mta.drain.accepted import FILE_NAME
from spool import Spool
from tests.support.node import InProcessNode, node_settings, simple_message
from tests.support.scenario import relay_target
from tests.support.smtp_sink import ScriptedSink

ADMIN, ADMIN_PASSWORD = "drainer", "drain-secret"
USER, USER_PASSWORD = "sender", "send-secret"
MESSAGES = 12
SUBJECT = re.compile(rb"^Subject: (drain-\d+)\r$", re.MULTILINE)


def peer_settings(tmp_path: Path, sink: ScriptedSink) -> dict[str, Any]:
    users = tmp_path / "users"
    users.write_text(f"{ADMIN}:{ADMIN_PASSWORD}\n{USER}:{USER_PASSWORD}\n")
    return node_settings(
        tmp_path / "peer",
        routes=[{"domains": ["*"], "relay": f"{sink.host}:{sink.port}"}],
        http={"trusted_networks": [], "users_file": str(users), "admin_users": [ADMIN]},
    )


async def fill_spool(tmp_path: Path, sink: ScriptedSink, count: int) -> Path:
    """A stopped node's spool: `count` messages to two domains; the example.net legs were
    delivered (to `sink`), the example.com legs are still queued (their relay is down)."""
    down = relay_target()
    settings = node_settings(
        tmp_path / "old",
        routes=[
            {"domains": ["example.net"], "relay": f"{sink.host}:{sink.port}"},
            {"domains": ["*"], "relay": f"{down.host}:{down.port}"},
        ],
    )
    async with InProcessNode(settings) as old:
        for i in range(count):
            rcpts = [f"a{i}@example.com", f"b{i}@example.com", f"c{i}@example.net"]
            await old.send("alice@example.org", rcpts, simple_message(f"drain-{i}"))
        await old.wait_for_record("Delivery", count=count)
    return Path(settings["spool"]["path"])


async def run_drain(*args: str, password: str | None = ADMIN_PASSWORD) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
    if password is not None:
        env["MTA_PASSWORD"] = password
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mta", "spool", "drain", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def spool_size(path: Path) -> int:
    spool = Spool(path)
    await spool.open()
    try:
        return len(spool)
    finally:
        await spool.close()


def deliveries(sink: ScriptedSink, domain: str) -> Counter[tuple[str, tuple[str, ...]]]:
    """(subject, recipients) of every message the sink got for `domain`."""
    found: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for message in sink.messages:
        rcpts = tuple(sorted(r for r in message.rcpt_tos if r.endswith("@" + domain)))
        match = SUBJECT.search(message.data)
        if rcpts and match:
            found[(match[1].decode(), rcpts)] += 1
    return found


def expected(count: int) -> Counter[tuple[str, tuple[str, ...]]]:
    return Counter(
        {(f"drain-{i}", (f"a{i}@example.com", f"b{i}@example.com")): 1 for i in range(count)}
    )


async def test_drain_stopped_spool_into_peer(tmp_path, sink_factory) -> None:
    sink = await sink_factory()
    spool_path = await fill_spool(tmp_path, sink, MESSAGES)
    async with InProcessNode(peer_settings(tmp_path, sink)) as peer:
        code, out, err = await run_drain(
            "--to", peer.http_url, "--spool", str(spool_path), "--user", ADMIN
        )
        assert code == 0, err
        assert f"{MESSAGES} handed over, 0 already at the peer, 0 left in the spool" in out
        await peer.wait_for_record("Delivery", count=2 * MESSAGES)
    # Only the recipients still queued went to the peer; each leg was delivered once.
    assert deliveries(sink, "example.com") == expected(MESSAGES)
    assert sum(deliveries(sink, "example.net").values()) == MESSAGES  # by the old node
    assert await spool_size(spool_path) == 0
    receptions = peer.of_type("Reception")
    assert {r["reception_protocol"] for r in receptions} == {"Drain"}
    assert len(receptions) == 2 * MESSAGES


async def test_drain_refused_without_admin_credentials(tmp_path, sink_factory) -> None:
    sink = await sink_factory()
    spool_path = await fill_spool(tmp_path, sink, 2)
    async with InProcessNode(peer_settings(tmp_path, sink)) as peer:
        anonymous = await run_drain("--to", peer.http_url, "--spool", str(spool_path))
        not_admin = await run_drain(
            "--to", peer.http_url, "--spool", str(spool_path), "--user", USER,
            password=USER_PASSWORD,
        )  # fmt: skip
        wrong = await run_drain(
            "--to", peer.http_url, "--spool", str(spool_path), "--user", ADMIN, password="nope"
        )
        assert peer.of_type("Reception") == []
    assert anonymous[0] == 1 and "401: Missing Authorization header" in anonymous[1]
    assert not_admin[0] == 1 and "403: admin rights required" in not_admin[1]
    assert wrong[0] == 1 and "401: Invalid Authorization" in wrong[1]
    assert await spool_size(spool_path) == 2


class StallingProxy:
    """Forwards handovers to the peer; from the `stall_after`+1-th on, forwards the request
    but never answers: the peer has the message, the drain does not know it."""

    def __init__(self, peer_url: str, stall_after: int) -> None:
        self._peer_url = peer_url
        self._stall_after = stall_after
        self.forwarded = 0
        self.stalled = asyncio.Event()
        self._never = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/internal/accept/v1", self._forward)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self._never.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        import aiohttp

        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k in ("Authorization", "Content-Type")
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(self._peer_url + request.path, data=body, headers=headers) as got,
        ):
            status, text = got.status, await got.read()
        self.forwarded += 1
        if self.forwarded > self._stall_after:
            self.stalled.set()
            await self._never.wait()
        return web.Response(status=status, body=text, content_type="application/json")


async def test_drain_killed_midway_then_restarted(tmp_path, sink_factory) -> None:
    sink = await sink_factory()
    spool_path = await fill_spool(tmp_path, sink, MESSAGES)
    async with InProcessNode(peer_settings(tmp_path, sink)) as peer:
        proxy = StallingProxy(peer.http_url, stall_after=4)
        await proxy.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MTA_")}
        env["MTA_PASSWORD"] = ADMIN_PASSWORD
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mta", "spool", "drain", "--to", proxy.url,
            "--spool", str(spool_path), "--user", ADMIN, "--concurrency", "1",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
        )  # fmt: skip
        try:
            await asyncio.wait_for(proxy.stalled.wait(), 20)
        finally:
            proc.kill()
            await proc.wait()
            await proxy.stop()
        assert proxy.forwarded == 5  # four answered and removed, the fifth in flight
        assert await spool_size(spool_path) == MESSAGES - 4

        code, out, err = await run_drain(
            "--to", peer.http_url, "--spool", str(spool_path), "--user", ADMIN
        )
        assert code == 0, err
        # The one in flight at the kill: the peer already had it, no second copy.
        assert f"{MESSAGES - 5} handed over, 1 already at the peer, 0 left" in out
        await peer.wait_for_record("Delivery", count=2 * MESSAGES)
    assert deliveries(sink, "example.com") == expected(MESSAGES)
    assert (tmp_path / "peer" / "spool" / FILE_NAME).read_text().count("\n") == MESSAGES
