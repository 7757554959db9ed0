"""SIGTERM with `[node] drain_to`, under load: the stopping node hands all its deferred mail
to its peer, which delivers every message once the destination recovers."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import aiosmtplib

from spool import Spool
from tests.support.node import NodeProcess, node_settings, send, simple_message, wait_until
from tests.support.smtp_sink import ScriptedSink

ADMIN, PASSWORD = "drainer", "drain-secret"
SENDERS = 4
BEFORE_SIGTERM = 40  # messages accepted before the signal; more come in while it stops
SUBJECT = re.compile(rb"^Subject: (load-\d+-\d+)\r$", re.MULTILINE)


def settings_pair(tmp_path: Path, sink: ScriptedSink) -> tuple[dict, dict]:
    routes = [{"domains": ["*"], "relay": f"{sink.host}:{sink.port}"}]
    (tmp_path / "users").write_text(f"{ADMIN}:{PASSWORD}\n")
    (tmp_path / "password").write_text(PASSWORD + "\n")
    peer = node_settings(
        tmp_path / "peer",
        routes=routes,
        http={
            "trusted_networks": [],
            "users_file": str(tmp_path / "users"),
            "admin_users": [ADMIN],
        },
    )
    peer["node"]["name"] = "peer-node"
    leaving = node_settings(tmp_path / "leaving", routes=routes)
    leaving["node"].update(
        name="leaving-node",
        drain_to=f"http://{peer['http']['listen'][0]}",
        drain_user=ADMIN,
        drain_password_file=str(tmp_path / "password"),
        drain_to_timeout="20s",
    )
    return leaving, peer


async def load(address: tuple[str, int], worker: int, accepted: list[str]) -> None:
    """Send messages until the node refuses; record the subjects it accepted."""
    for i in range(10_000):
        subject = f"load-{worker}-{i}"
        rcpts = [f"r{worker}x{i}@example.com", f"r{worker}x{i}@example.net"]
        try:
            await send(address, "alice@example.org", rcpts, simple_message(subject))
        except (aiosmtplib.SMTPException, OSError):
            return
        accepted.append(subject)


def delivered(sink: ScriptedSink) -> Counter[tuple[str, str]]:
    """(subject, domain) of every delivery."""
    found: Counter[tuple[str, str]] = Counter()
    for message in sink.messages:
        match = SUBJECT.search(message.data)
        if match:
            for rcpt in message.rcpt_tos:
                found[(match[1].decode(), rcpt.rpartition("@")[2])] += 1
    return found


async def test_sigterm_drains_deferred_mail_to_peer(tmp_path, sink_factory) -> None:
    sink = await sink_factory(data_reply="451 4.3.0 try again later")
    leaving_settings, peer_settings = settings_pair(tmp_path, sink)
    peer = NodeProcess(peer_settings, _workdir(tmp_path, "peer-run"))
    leaving = NodeProcess(leaving_settings, _workdir(tmp_path, "leaving-run"))
    accepted: list[str] = []
    try:
        await peer.start()
        await leaving.start()
        senders = [asyncio.create_task(load(leaving.address, w, accepted)) for w in range(SENDERS)]
        await leaving.wait_for_record("TransientFailure", count=1)
        await wait_until(lambda: len(accepted) >= BEFORE_SIGTERM, 20, "messages accepted")
        code = await leaving.terminate()
        await asyncio.wait_for(asyncio.gather(*senders), 10)
        assert code == 0, leaving.stderr()
        assert "0 left in the spool" in leaving.stderr()

        sink.data_reply = None  # the destination recovers
        want = Counter({(s, d): 1 for s in accepted for d in ("example.com", "example.net")})
        await peer.wait_for_record("Delivery", count=len(want), timeout=30)
    finally:
        await leaving.close()
        await peer.close()
    got = delivered(sink)
    assert +got == want  # every accepted message, each domain's leg exactly once
    drained = [r for r in peer.of_type("Reception") if r["reception_protocol"] == "Drain"]
    assert {r["id"] for r in drained} == {r["id"] for r in leaving.of_type("Reception")}
    spool = Spool(leaving_settings["spool"]["path"])
    await spool.open()
    try:
        assert len(spool) == 0
    finally:
        await spool.close()


def _workdir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path
