"""The cluster of the traffic-shaping proof: three node processes (own spools and ports),
two TSA daemons, one real redis-server, and a recording sink behind the test DNS server.

Every part talks over loopback sockets exactly as in a deployment: nodes share throttles and
connection leases through Redis, publish their records to both TSAs, follow one TSA each for
events and shaping overrides.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from shaping.tsa.daemon import DaemonSettings, TsaDaemon
from tests.support.dns_server import TestDNSServer
from tests.support.net import free_port, unused_loopback_address
from tests.support.node import NodeProcess, node_settings, send
from tests.support.redis_server import RedisServer
from tests.support.smtp_sink import ReceivedMessage, ScriptedSink

DOMAIN = "shaped.example"
SITE = f"mx.{DOMAIN}"  # the MX rollup name of the domain: its ready queue on every node
RATE = 20  # max_message_rate "20/s": the burst is the limit as well
CONNECTIONS = 2
SUSPEND_SECONDS = 6
SHAPING = f"""
["{DOMAIN}"]
max_message_rate = "{RATE}/s"
connection_limit = {CONNECTIONS}

[["{DOMAIN}".automation]]
regex = '4\\.7\\.28'
action = "Suspend"
trigger = "Immediate"
duration = "{SUSPEND_SECONDS}s"
"""
_SUBJECT = re.compile(rb"^Subject: (\S+)\r$", re.MULTILINE)


class RecordingSink(ScriptedSink):
    """A sink that also notes when each message arrived and the most connections at once."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.arrivals: list[float] = []
        self.max_concurrent = 0

    def _connected(self, protocol: Any) -> None:
        super()._connected(protocol)
        self.max_concurrent = max(self.max_concurrent, len(self._open))

    def _record(self, message: ReceivedMessage) -> None:
        self.arrivals.append(time.monotonic())
        super()._record(message)

    def subjects(self) -> set[str]:
        found = (_SUBJECT.search(m.data) for m in self.messages)
        return {match.group(1).decode() for match in found if match}

    def busiest_second(self) -> int:
        """The most messages that arrived within any 1 s window."""
        times = sorted(self.arrivals)
        return max(
            (bisect.bisect_left(times, at + 1.0) - i for i, at in enumerate(times)), default=0
        )


@dataclass
class Cluster:
    sink: RecordingSink
    redis: RedisServer
    tsas: list[TsaDaemon]
    nodes: list[NodeProcess] = field(default_factory=list)

    async def inject(self, count: int, *, prefix: str = "m", senders: int = 6) -> list[str]:
        """`count` messages to DOMAIN, spread over the nodes; their subjects."""
        subjects = [f"{prefix}-{i}" for i in range(count)]
        work = iter(enumerate(subjects))

        async def sender() -> None:
            for i, subject in work:
                node = self.nodes[i % len(self.nodes)]
                message = (
                    f"From: s@example.org\r\nTo: u{i}@{DOMAIN}\r\nSubject: {subject}\r\n\r\nx\r\n"
                )
                await send(node.address, "s@example.org", [f"u{i}@{DOMAIN}"], message)

        await asyncio.gather(*(sender() for _ in range(senders)))
        return subjects

    async def wait_delivered(self, subjects: Sequence[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        wanted = set(subjects)
        while not wanted <= self.sink.subjects():
            if time.monotonic() > deadline:
                missing = len(wanted - self.sink.subjects())
                raise TimeoutError(f"{missing} of {len(wanted)} messages not delivered")
            await asyncio.sleep(0.1)

    async def admin_get(self, node: NodeProcess, path: str) -> Any:
        async with aiohttp.ClientSession() as session, session.get(node.http_url + path) as r:
            r.raise_for_status()
            return await (r.json() if path.startswith("/api/") else r.text())

    async def metric(self, node: NodeProcess, name: str) -> float:
        text = await self.admin_get(node, "/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"metric {name} not exposed by {node.http_url}")


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, dns_server: TestDNSServer) -> AsyncIterator[Cluster]:
    host = unused_loopback_address()
    sink = RecordingSink(host, free_port(host))
    await sink.start()
    dns_server.add(DOMAIN, "MX", f"10 {SITE}.")
    dns_server.add(SITE, "A", host)
    shaping = tmp_path / "shaping.toml"
    shaping.write_text(SHAPING)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    tsas = [_tsa(tmp_path / f"tsa{i}", shaping) for i in range(2)]
    nodes: list[NodeProcess] = []
    try:
        for tsa in tsas:
            await tsa.start()
        the = Cluster(sink, redis, tsas, nodes)
        for i in range(3):
            nodes.append(_node(tmp_path / f"node{i}", i, the, shaping, dns_server.port))
        await asyncio.gather(*(node.start() for node in nodes))
        yield the
    finally:
        await asyncio.gather(*(node.close() for node in nodes), return_exceptions=True)
        for tsa in tsas:
            await tsa.stop()
        redis.kill()
        await sink.stop()


def _tsa(directory: Path, shaping: Path) -> TsaDaemon:
    directory.mkdir()
    settings = DaemonSettings(
        host="127.0.0.1",
        port=free_port(),
        state_path=directory / "state.json",
        shaping_files=(shaping,),
        save_interval=1.0,
    )
    return TsaDaemon(settings)


def _node(workdir: Path, index: int, the: Cluster, shaping: Path, dns_port: int) -> NodeProcess:
    workdir.mkdir()
    urls = [f"http://{t.addresses[0][0]}:{t.addresses[0][1]}" for t in the.tsas]
    settings = node_settings(
        workdir,
        dns_port=dns_port,
        smtp_port=the.sink.port,
        node={"name": f"node{index}", "hostname": f"node{index}.test", "drain_timeout": "5s"},
        shaping={"files": [str(shaping)], "reload_interval": "1s"},
        redis={
            "url": the.redis.url,
            "timeout": "0.3s",
            "local_share": 0.34,
            "probe_interval": "0.5s",
        },
        tsa={
            "publish": urls,
            "subscribe": urls[index % len(urls)],  # both TSAs serve events: each computes all
            "poll_interval": "1s",
            "batch_delay": "0.05s",
        },
    )
    return NodeProcess(settings, workdir)
