"""Reported figures, not A/B ratios: accept latency at a fixed rate, and a large deferred queue.

`latency`: our node relaying to smtp-sink (the relay-2k setup), driven by a small asyncio SMTP
client at a fixed offered rate over reused connections; for every message, the time from the
write of the final "\\r\\n.\\r\\n" to the arrival of the 250 line.

`scale`: N messages injected for a destination where nothing listens (each stays queued,
retried after an hour): the injection rate, the node's RSS, the spool bytes per message; then
SIGTERM, a restart on the same spool, the time to `/readyz` 200 and to `mta_queue_messages`
reaching N, and what an SMTP client sees meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtabench import load
from mtabench.net import LOOPBACK, free_port
from mtabench.ours import OurNode
from mtabench.procstat import group_usage
from mtabench.runner import RunOptions
from mtabench.sink import SmtpSink

KEYS = ("latency", "scale")
LATENCY_RATE = 1_000.0  # msg/s: about half the relay-2k end-to-end rate in results/latest.json
LATENCY_SECONDS = 15.0
LATENCY_CONNECTIONS = 20
SCALE_MESSAGES = 1_000_000
SCALE_SESSIONS = 20
MESSAGE_SIZE = 2 * 1024
RECOVERY_LIMIT = 600.0  # seconds: give up waiting for the restarted node
SCALE_STOP_TIMEOUT = 120.0  # seconds from SIGTERM to SIGKILL (a full queue may take a while)
PROBE_LIMIT = 5.0  # seconds: one SMTP probe during recovery
TRICKLE_INTERVAL = 0.1  # seconds between two messages of the trickle sent during recovery
DEFERRED_QUEUE = '\n[queue]\nretry_interval = "1h"\nmax_retry_interval = "8h"\n'
_GAUGE = re.compile(rb"^(mta_queue_messages|mta_queue_scheduled) ([0-9.e+]+)$", re.MULTILINE)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/max of `values` (ms in, ms out), nearest-rank."""
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    return {
        "p50": rank(50),
        "p90": rank(90),
        "p99": rank(99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def _body(index: int) -> bytes:
    head = (
        f"From: <bench@example.org>\r\nTo: <sink@example.com>\r\n"
        f"Subject: latency {index}\r\nMessage-ID: <lat{index}@bench>\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    lines = (MESSAGE_SIZE - len(head)) // len(line)
    return head + line * max(lines, 1) + b".\r\n"


class SmtpClient:
    """One SMTP connection, commands one at a time (no pipelining)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> SmtpClient:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        client = cls(reader, writer)
        await client.expect(b"220")
        await client.command(b"EHLO bench.example.org\r\n", b"250")
        return client

    async def reply(self) -> bytes:
        """The last line of a (possibly multi-line) reply."""
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("connection closed")
            if line[3:4] != b"-":
                return line

    async def expect(self, code: bytes) -> bytes:
        line = await self.reply()
        if not line.startswith(code):
            raise ConnectionError(f"expected {code.decode()}, got {line!r}")
        return line

    async def command(self, data: bytes, code: bytes) -> bytes:
        self.writer.write(data)
        return await self.expect(code)

    async def envelope(self) -> None:
        await self.command(b"MAIL FROM:<bench@example.org>\r\n", b"250")
        await self.command(b"RCPT TO:<sink@example.com>\r\n", b"250")
        await self.command(b"DATA\r\n", b"354")

    async def close(self) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            self.writer.write(b"QUIT\r\n")
            await self.writer.drain()
        self.writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await self.writer.wait_closed()


@dataclass
class LatencyLoad:
    rate: float
    seconds: float
    connections: int
    latencies_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)  # how far behind schedule each send was
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0


async def drive_latency(port: int, run: LatencyLoad) -> None:
    """Offer `rate` msg/s for `seconds` over `connections` reused connections."""
    total = int(run.rate * run.seconds)
    clients = [await SmtpClient.connect(port) for _ in range(run.connections)]
    bodies = [_body(i) for i in range(64)]
    counter = iter(range(total))
    started = time.monotonic() + 0.1

    async def worker(client: SmtpClient) -> None:
        for index in counter:
            due = started + index / run.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                run.late_ms.append(-delay * 1000)
            await client.envelope()
            client.writer.write(bodies[index % len(bodies)][:-3])
            await client.writer.drain()
            sent = time.perf_counter()
            client.writer.write(b".\r\n")  # the body ends with CRLF: this is "\r\n.\r\n"
            await client.expect(b"250")
            run.latencies_ms.append((time.perf_counter() - sent) * 1000)

    try:
        async with asyncio.timeout(run.seconds * 3 + 30):
            outcomes = await asyncio.gather(*(worker(c) for c in clients), return_exceptions=True)
        run.errors += [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, Exception)]
    finally:
        run.elapsed = time.monotonic() - started
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def run_latency(
    options: RunOptions, rate: float, seconds: float, connections: int
) -> dict[str, Any]:
    workdir = options.workroot / "latency"
    workdir.mkdir(parents=True)
    run = LatencyLoad(rate, seconds, connections)
    figures: dict[str, Any] = {"key": "latency", "offered_rate": rate, "seconds": seconds}
    figures["connections"] = connections
    try:
        async with SmtpSink(workdir) as sink:
            node = OurNode(workdir, sink.address, options.python)
            try:
                await node.start()
                before = group_usage(node.pgid, memory=False)
                await drive_latency(node.smtp_port, run)
                after = group_usage(node.pgid, memory=False)
                figures["node_cpu_seconds"] = round(after.cpu_seconds - before.cpu_seconds, 2)
                sink.expect(len(run.latencies_ms))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(60):
                        await sink.wait_for_target()
                figures["delivered"] = sink.count
            finally:
                await node.stop()
    finally:
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    figures["messages"] = len(run.latencies_ms)
    figures["achieved_rate"] = round(len(run.latencies_ms) / run.elapsed, 1)
    figures["late_sends"] = len(run.late_ms)
    figures["max_late_ms"] = round(max(run.late_ms, default=0.0), 2)
    figures["errors"] = run.errors
    if run.latencies_ms:
        figures["accept_ms"] = {k: round(v, 2) for k, v in percentiles(run.latencies_ms).items()}
    return figures


def _du(path: Path) -> int:
    """Bytes allocated on disk under `path` (st_blocks, as du)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


async def _http_get(port: int, path: str) -> tuple[int, bytes]:
    """A minimal HTTP/1.0 GET: (status, body); (0, b"") when nothing answers."""
    try:
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            try:
                writer.write(f"GET {path} HTTP/1.0\r\nHost: {LOOPBACK}\r\n\r\n".encode())
                data = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), body


async def queue_gauges(port: int) -> dict[str, float]:
    status, body = await _http_get(port, "/metrics")
    if status != 200:
        return {}
    return {m[0].decode(): float(m[1]) for m in _GAUGE.findall(body)}


async def smtp_probe(port: int) -> dict[str, Any]:
    """Connect, EHLO, time MAIL -> reply; what a client sees (refused, 4xx, or 250 in ms)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(PROBE_LIMIT):
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
            client = SmtpClient(reader, writer)
            try:
                greeting = await client.reply()
                if not greeting.startswith(b"220"):
                    return {"outcome": greeting.decode(errors="replace").strip()}
                await client.command(b"EHLO bench.example.org\r\n", b"250")
                sent = time.perf_counter()
                line = await client.command(b"MAIL FROM:<probe@example.org>\r\n", b"")
                mail_ms = (time.perf_counter() - sent) * 1000
                return {"outcome": line[:3].decode(), "mail_ms": round(mail_ms, 2)}
            finally:
                await client.close()
    except ConnectionRefusedError:
        return {"outcome": "refused"}
    except (OSError, ConnectionError, TimeoutError) as exc:
        return {"outcome": f"{type(exc).__name__} after {time.monotonic() - started:.1f}s"}


async def run_scale(options: RunOptions, messages: int) -> dict[str, Any]:
    workdir = options.workroot / "scale"
    workdir.mkdir(parents=True)
    dead = f"{LOOPBACK}:{free_port()}"  # nothing listens: every delivery attempt is deferred
    figures: dict[str, Any] = {"key": "scale", "messages": messages, "message_size": MESSAGE_SIZE}
    node = OurNode(workdir, dead, options.python, DEFERRED_QUEUE)
    try:
        await node.start()
        args = load.smtp_source_args(
            f"{LOOPBACK}:{node.smtp_port}",
            messages=messages,
            sessions=SCALE_SESSIONS,
            size=MESSAGE_SIZE,
            reuse=True,
        )
        figures["inject_command"] = " ".join(Path(a).name if i == 0 else a for i, a in
                                             enumerate(args))  # fmt: skip
        started = time.monotonic()
        outcome = await load.run_smtp_source(
            args, messages, workdir / "smtp-source.log", options.run_timeout
        )
        inject_seconds = outcome.finished - started
        figures["inject_errors"] = outcome.errors
        figures["inject_seconds"] = round(inject_seconds, 1)
        figures["inject_rate"] = round(messages / inject_seconds, 1)
        await asyncio.sleep(2)  # let the first (refused) delivery attempts settle
        usage = group_usage(node.pgid)
        figures["rss_bytes"] = usage.rss_bytes
        figures["rss_bytes_per_message"] = round(usage.rss_bytes / messages, 1)
        figures["gauges_after_inject"] = await queue_gauges(node.http_port)
        spool_bytes = _du(workdir / "spool")
        figures["spool_bytes"] = spool_bytes
        figures["spool_bytes_per_message"] = round(spool_bytes / messages, 1)
        stop_started = time.monotonic()
        figures["stopped_on_sigterm"] = await node.stop(SCALE_STOP_TIMEOUT)
        figures["stop_seconds"] = round(time.monotonic() - stop_started, 2)
        figures.update(await _restart(node, messages))
    except Exception as exc:
        figures.setdefault("errors", []).append(f"{type(exc).__name__}: {exc}")
        figures["log_tail"] = node.log_tail(5)
    finally:
        await node.stop()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return figures


@dataclass
class Trickle:
    """A message every TRICKLE_INTERVAL over one reused connection (reconnecting while the
    port refuses) during a restart: when the first 250 came, and the accept latency."""

    started: float
    sent: list[tuple[float, float]] = field(default_factory=list)  # (at, final dot -> 250 ms)
    refused: int = 0  # connection attempts refused or failed
    rejected: list[str] = field(default_factory=list)  # replies other than 250 to the message
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, port: int) -> None:
        body = _body(0)
        client: SmtpClient | None = None
        while not self.stop.is_set():
            try:
                async with asyncio.timeout(PROBE_LIMIT):
                    client = client or await SmtpClient.connect(port)
                    await self._send(client, body)
            except (OSError, ConnectionError, TimeoutError) as exc:
                self.refused += client is None
                if client is not None:
                    self.rejected.append(f"{type(exc).__name__}: {exc}"[:80])
                    await client.close()
                client = None
            await asyncio.sleep(TRICKLE_INTERVAL)
        if client is not None:
            await client.close()

    async def _send(self, client: SmtpClient, body: bytes) -> None:
        at = time.monotonic() - self.started
        await client.envelope()
        client.writer.write(body[:-3])
        sent = time.perf_counter()
        client.writer.write(b".\r\n")
        await client.expect(b"250")
        self.sent.append((at, (time.perf_counter() - sent) * 1000))

    def figures(self, requeued_at: float | None) -> dict[str, Any]:
        during = [ms for at, ms in self.sent if requeued_at is None or at < requeued_at]
        answer: dict[str, Any] = {
            "interval_s": TRICKLE_INTERVAL,
            "first_250_seconds": round(self.sent[0][0], 2) if self.sent else None,
            "accepted": len(self.sent),
            "accepted_during_requeue": len(during),
            "refused_connects": self.refused,
            "errors": self.rejected[:5],
        }
        if during:
            answer["accept_ms_during_requeue"] = {
                k: round(v, 2) for k, v in percentiles(during).items()
            }
        return answer


async def _restart(node: OurNode, messages: int) -> dict[str, Any]:
    """Start on the same spool; time readyz 200 and the queue gauge reaching `messages`
    (plus what the trickle got in), with a trickle of messages sent all along."""
    figures: dict[str, Any] = {}
    probes: list[dict[str, Any]] = []
    started = time.monotonic()
    await node.start(wait=False)
    trickle = Trickle(started)
    trickling = asyncio.create_task(trickle.run(node.smtp_port))
    ready_at: float | None = None
    queued_at: float | None = None
    http_at: float | None = None
    next_probe = started
    while time.monotonic() - started < RECOVERY_LIMIT:
        now = time.monotonic()
        if ready_at is None:
            status, _ = await _http_get(node.http_port, "/readyz")
            if status and http_at is None:
                http_at = time.monotonic()
            if status == 200:
                ready_at = time.monotonic()
        if queued_at is None:
            gauges = await queue_gauges(node.http_port)
            if gauges.get("mta_queue_messages", 0) >= messages + len(trickle.sent):
                queued_at = time.monotonic()
                figures["gauges_requeued"] = gauges
        if now >= next_probe:
            at = time.monotonic()  # the HTTP polls above may have waited on a busy loop
            probe = await smtp_probe(node.smtp_port)
            probe["at"] = round(at - started, 2)
            probe["took"] = round(time.monotonic() - at, 2)
            probes.append(probe)
            next_probe = now + 1.0
        if ready_at is not None and queued_at is not None:
            break
        await asyncio.sleep(0.1)
    trickle.stop.set()
    await trickling
    figures["trickle"] = trickle.figures(None if queued_at is None else queued_at - started)
    for _ in range(3):  # and right after: the first messages on a fully recovered node
        probe = await smtp_probe(node.smtp_port)
        probe["at"] = round(time.monotonic() - started, 2)
        probes.append(probe)
    figures["restart_http_seconds"] = None if http_at is None else round(http_at - started, 2)
    figures["restart_ready_seconds"] = None if ready_at is None else round(ready_at - started, 2)
    figures["restart_requeued_seconds"] = (
        None if queued_at is None else round(queued_at - started, 2)
    )
    figures["probes"] = probes
    figures["recovery_log"] = [
        line for line in node.log_tail(200).splitlines() if "recover" in line or "ready" in line
    ][-5:]
    usage = group_usage(node.pgid)
    figures["rss_bytes_after_restart"] = usage.rss_bytes
    return figures
