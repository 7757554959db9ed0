"""One measured run: a fresh sink, a fresh MTA, the load, the count, the CPU; then teardown."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mtabench import load
from mtabench.ours import OurNode
from mtabench.postfix import PostfixPeer
from mtabench.procstat import group_usage, machine_busy_seconds, peak_rss_bytes
from mtabench.results import OURS, RunResult
from mtabench.scenarios import Load, Scenario
from mtabench.sink import SmtpSink

SAMPLE_SECONDS = 0.5  # the sink count (for the plot) and the MTA's memory
NO_INJECT = "HTTP inject not available"
STALL_SECONDS = 15.0  # after a failed load: give up once the sink count stops moving this long

Profiler = Callable[[int, Path], AbstractAsyncContextManager[None]]


class Mta(Protocol):
    name: str
    smtp_port: int
    workdir: Path

    @property
    def pgid(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self) -> bool | None: ...

    def log_tail(self, lines: int = 15) -> str: ...


@dataclass(frozen=True, slots=True)
class RunOptions:
    workroot: Path
    python: Path
    run_timeout: float
    keep: bool = False
    postfix_settings: tuple[tuple[str, str], ...] = ()  # --postfix-set, main.cf overrides


async def run_one(
    scenario: Scenario,
    mta_name: str,
    pair: int,
    messages: int,
    options: RunOptions,
    profiler: Profiler | None = None,
) -> RunResult:
    """Measure one MTA once; every failure ends up in `RunResult.errors`, never raised."""
    result = RunResult(scenario.key, mta_name, pair, messages)
    workdir = options.workroot / f"{scenario.key}-{pair}-{mta_name}"
    workdir.mkdir(parents=True)
    try:
        async with SmtpSink(workdir) as sink:
            mta: Mta = (
                OurNode(workdir, sink.address, options.python, scenario.ours_config(workdir))
                if mta_name == OURS
                else PostfixPeer(workdir, sink.address, options.postfix_settings)
            )
            try:
                await mta.start()
                offered = scenario.ours if mta_name == OURS else scenario.peer
                async with _maybe(profiler, mta.pgid, workdir):
                    await _measure(mta, offered, sink, result, options)
            except Exception as exc:
                result.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                await mta.stop()
            if result.errors:
                result.errors.append(f"log tail: {mta.log_tail(5)}")
    finally:
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


async def probe_inject(options: RunOptions) -> str | None:
    """Start a node, ask its inject API; why it cannot take the HTTP load, or None."""
    workdir = options.workroot / "probe-inject"
    workdir.mkdir(parents=True)
    node = OurNode(workdir, "127.0.0.1:9", options.python)  # nothing gets delivered
    try:
        await node.start()
        return await node.inject_unavailable()
    except RuntimeError as exc:
        return str(exc)
    finally:
        await node.stop()
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)


@contextlib.asynccontextmanager
async def _maybe(profiler: Profiler | None, pid: int, workdir: Path) -> AsyncIterator[None]:
    if profiler is None:
        yield
    else:
        async with profiler(pid, workdir):
            yield


async def _measure(
    mta: Mta, offered: Load, sink: SmtpSink, result: RunResult, options: RunOptions
) -> None:
    if offered.kind == "http":
        assert isinstance(mta, OurNode)
        reason = await mta.inject_unavailable()
        if reason is not None:
            raise RuntimeError(f"{NO_INJECT}: {reason}")
    sink.expect(result.messages)
    before = group_usage(mta.pgid, memory=False)
    busy_before = machine_busy_seconds()
    started = time.monotonic()
    sampler = asyncio.create_task(_sample(mta.pgid, sink, started, result))
    try:
        outcome = await _offer(mta, offered, result.messages, options.run_timeout)
        result.inject_seconds = outcome.finished - started
        result.errors.extend(outcome.errors)
        reached = await _wait_delivered(sink, started, bool(outcome.errors), options.run_timeout)
        after = group_usage(mta.pgid, memory=False)
        result.machine_cpu_seconds = machine_busy_seconds() - busy_before
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    result.delivered = sink.count
    result.cpu_seconds = after.cpu_seconds - before.cpu_seconds
    result.peak_rss_bytes = max(result.peak_rss_bytes, peak_rss_bytes(mta.pgid))
    result.samples.append((time.monotonic() - started, sink.count))
    if reached is None:
        result.errors.append(f"sink counted {sink.count} of {result.messages} messages")
    else:
        result.e2e_seconds = reached - started


async def _offer(mta: Mta, offered: Load, messages: int, limit_seconds: float) -> load.LoadResult:
    if offered.kind == "http":
        assert isinstance(mta, OurNode)
        return await load.run_http_inject(
            mta.http_url,
            messages=messages,
            recipients=offered.recipients_per_request,
            sessions=offered.sessions,
            limit_seconds=limit_seconds,
        )
    args = load.smtp_source_args(
        f"127.0.0.1:{mta.smtp_port}",
        messages=messages,
        sessions=offered.sessions,
        size=offered.size,
        reuse=offered.reuse,
    )
    return await load.run_smtp_source(
        args, messages, mta.workdir / "smtp-source.log", limit_seconds
    )


async def _wait_delivered(
    sink: SmtpSink, started: float, load_failed: bool, run_timeout: float
) -> float | None:
    """When the sink reached its target; None on timeout or (after a failed load) a stall."""
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SAMPLE_SECONDS):
                return await sink.wait_for_target()
        now = time.monotonic()
        if now - started > run_timeout:
            return None
        if load_failed and now - sink.last_change > STALL_SECONDS:
            return None


async def _sample(pgid: int, sink: SmtpSink, started: float, result: RunResult) -> None:
    """Every SAMPLE_SECONDS: the sink count, and the MTA's memory (peaks kept)."""
    tick = started
    while True:
        result.samples.append((time.monotonic() - started, sink.count))
        usage = await asyncio.to_thread(group_usage, pgid)
        result.peak_rss_bytes = max(result.peak_rss_bytes, usage.rss_bytes)
        result.peak_pss_bytes = max(result.peak_pss_bytes, usage.pss_bytes)
        result.max_processes = max(result.max_processes, usage.processes)
        tick += SAMPLE_SECONDS
        await asyncio.sleep(max(0.0, tick - time.monotonic()))
