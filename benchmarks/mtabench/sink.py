"""Postfix's `smtp-sink`, counting messages: the end of every end-to-end measurement.

With `-c`, smtp-sink prints its running counters to stdout each time a session ends, QUIT
arrives or a message's final "." is received: `sess=S quit=Q mesg=M`, records separated by
"\\r". We read that pipe as it comes and time-stamp the moment `mesg` reaches the target.
A fresh sink per run, so every count starts at zero.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from pathlib import Path
from types import TracebackType

from mtabench.net import LOOPBACK, free_port

SINK_BACKLOG = 1024  # listen(2) backlog
SINK_USER = "nobody"  # smtp-sink refuses to run as root without -u
_MESG = re.compile(rb"mesg=(\d+)")


class SmtpSink:
    """One smtp-sink process on a loopback port, with its message count."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.count = 0
        self.last_change = time.monotonic()
        self._workdir = workdir
        self._target = 0
        self._reached_at: float | None = None
        self._reached = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    async def __aenter__(self) -> SmtpSink:
        binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        args = [binary, "-c"]
        if os.geteuid() == 0:
            args += ["-u", SINK_USER]
        args += [self.address, str(SINK_BACKLOG)]
        with (self._workdir / "smtp-sink.err").open("ab") as errors:
            self._process = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, stderr=errors, start_new_session=True
            )
        self._reader = asyncio.create_task(self._read(), name="smtp-sink-counter")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                async with asyncio.timeout(5):
                    await self._process.wait()
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()

    def expect(self, target: int) -> None:
        """Arm the target count; `wait_for_target` returns once `count` reaches it."""
        self._target = target
        self._check(time.monotonic())

    async def wait_for_target(self) -> float:
        """The monotonic time the count reached the target (waits until it does)."""
        await self._reached.wait()
        assert self._reached_at is not None
        return self._reached_at

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        pending = b""
        while chunk := await self._process.stdout.read(65536):
            now = time.monotonic()
            pending += chunk
            complete, _, pending = pending.rpartition(b"\r")
            found = _MESG.findall(complete)
            if found:
                self._update(int(found[-1]), now)

    def _update(self, count: int, now: float) -> None:
        if count != self.count:
            self.count = count
            self.last_change = now
        self._check(now)

    def _check(self, now: float) -> None:
        if self._target and self.count >= self._target and not self._reached.is_set():
            self._reached_at = now
            self._reached.set()
