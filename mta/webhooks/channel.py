"""One webhook: a memory hand-off, a durable disk queue, and a sender that posts batches.

`add()` is called on the record log's path and only appends to a bounded deque. A flusher
task moves what arrived into the disk queue (an `Outbox`: fsynced, survives SIGKILL) as soon
as the previous write is done, so records wait in memory only for one fsync. A sender task
peeks the oldest records, POSTs them as a JSON array, and acknowledges them only after a 2xx:
nothing is sent twice within a run unless the receiver took a batch but its answer never came
back (a timeout). Failures back off exponentially up to `max_retry_interval`; the disk queue
is capped at `max_backlog` records (the oldest are dropped and counted), so a dead endpoint
costs bounded disk and never slows delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp

from mta.config import WebhookConfig
from mta.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SecretFile, signature
from shaping.tsa.link import TRANSPORT_ERRORS, Backoff, describe
from shaping.tsa.outbox import Outbox, outbox_directory

_log = logging.getLogger("mta.webhooks")

SessionFactory = Callable[[], aiohttp.ClientSession]
PAYLOAD_TOO_LARGE: Final = 413  # the receiver's body limit: send smaller batches
DISK_RETRY: Final = 1.0  # seconds before a failed disk-queue write or read is tried again
USER_AGENT: Final = "mta-webhook/1"


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """Counters of one webhook since start (backlog: waiting in memory and on disk)."""

    backlog: int
    queued: int  # records written to the disk queue
    sent: int  # records the receiver acknowledged with a 2xx
    failures: int  # failed POST attempts
    dropped: int  # records dropped by max_backlog


def webhook_key(config: WebhookConfig) -> str:
    """The webhook's directory name and metrics label: its name, else a hash of its URL."""
    return config.name or outbox_directory(Path(), config.url).name


class WebhookChannel:
    """Everything about one `[[webhooks]]` entry; see the module docstring."""

    def __init__(
        self,
        config: WebhookConfig,
        root: Path,
        *,
        session_factory: SessionFactory = aiohttp.ClientSession,
    ) -> None:
        self.config = config
        self.key = webhook_key(config)
        self.types = frozenset(config.types)
        self.directory = root / self.key
        self._secret = SecretFile(config.secret_file) if config.secret_file else None
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None
        self._pending: deque[bytes] = deque()
        self._outbox: Outbox | None = None
        self._queued = self._sent = self._failures = self._dropped = 0
        self._limit = config.batch_size  # halves while the receiver says 413
        self._retry_now = False  # after a failure the backlog goes out without max_delay
        self._flush_wake = asyncio.Event()
        self._grown = asyncio.Event()  # the disk queue got records (or we are stopping)
        self._stop = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False

    def add(self, line: bytes) -> None:
        """Queue one encoded record (cheap, never blocks; ignored once closing)."""
        if self._closing:
            return
        if len(self._pending) >= self.config.max_backlog:
            self._pending.popleft()
            self._dropped += 1
        self._pending.append(line)
        self._flush_wake.set()

    def stats(self) -> ChannelStats:
        """Counters for metrics."""
        outbox = self._outbox
        return ChannelStats(
            backlog=len(self._pending) + (outbox.backlog if outbox else 0),
            queued=self._queued,
            sent=self._sent,
            failures=self._failures,
            dropped=self._dropped + (outbox.dropped if outbox else 0),
        )

    async def start(self) -> None:
        """Open the disk queue (records left by an earlier run go out first) and the tasks."""
        outbox = Outbox(self.directory, max_records=self.config.max_backlog, what="webhook queue")
        await asyncio.to_thread(outbox.load, self.config.url)
        self._outbox = outbox
        self._session = self._session_factory()
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name=f"webhook-flush {self.key}"),
            asyncio.create_task(self._send_loop(), name=f"webhook-send {self.key}"),
        ]

    async def close(self, timeout: float) -> None:  # noqa: ASYNC109 - a drain bound
        """Write what is in memory to disk, let a POST in flight finish (within `timeout`),
        stop. Unsent records stay on disk for the next start."""
        self._closing = True
        self._flush_wake.set()
        if self._tasks:
            flusher, sender = self._tasks
            await _finish(flusher, timeout)
            self._stop.set()
            self._grown.set()
            await _finish(sender, timeout)
        if self._session is not None:
            await self._session.close()
        if self._outbox is not None:
            await self._outbox.close()

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wake.wait()
            self._flush_wake.clear()
            if self._pending and not await self._flush():
                await self._pause(DISK_RETRY)
                self._flush_wake.set()  # try again (close() gives up after its timeout)
            elif self._closing and not self._pending:
                return

    async def _flush(self) -> bool:
        assert self._outbox is not None
        lines = list(self._pending)
        self._pending.clear()
        try:
            await self._outbox.append_lines(lines)
        except OSError as error:
            _log.error("webhook %s: cannot write its queue: %s", self.key, describe(error))
            self._pending.extendleft(reversed(lines))  # back in front, in order
            while len(self._pending) > self.config.max_backlog:
                self._pending.popleft()
                self._dropped += 1
            return False
        self._queued += len(lines)
        self._grown.set()
        return True

    async def _send_loop(self) -> None:
        backoff = Backoff(self.config.retry_interval, self.config.max_retry_interval)
        while not self._stop.is_set():
            try:
                await self._send_next(backoff)
            except OSError as error:  # the disk queue; its records are still there
                _log.error("webhook %s: cannot read its queue: %s", self.key, describe(error))
                await self._pause(DISK_RETRY)

    async def _send_next(self, backoff: Backoff) -> None:
        lines = await self._next_batch()
        if not lines:
            return
        if await self._post(lines):
            assert self._outbox is not None
            await self._outbox.ack(len(lines))
            self._sent += len(lines)
            self._retry_now = False
            backoff.reset()
        else:
            self._failures += 1
            self._retry_now = True
            await self._pause(backoff.delay())

    async def _next_batch(self) -> list[bytes]:
        """The next batch: full, or partial once its wait of `max_delay` is over."""
        assert self._outbox is not None
        self._grown.clear()
        lines = await self._outbox.peek_lines(self._limit)
        if not lines:
            await self._grown.wait()
            return []
        if len(lines) < self._limit and not (self._retry_now or self._closing):
            await self._gather(time.monotonic() + self.config.max_delay)
            lines = await self._outbox.peek_lines(self._limit)
        return lines

    async def _gather(self, deadline: float) -> None:
        assert self._outbox is not None
        while self._outbox.backlog < self._limit and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._grown.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._grown.wait()

    async def _post(self, lines: list[bytes]) -> bool:
        assert self._session is not None
        body = b"[" + b",".join(lines) + b"]"
        try:
            async with asyncio.timeout(self.config.timeout):
                async with self._session.post(
                    self.config.url, data=body, headers=self._headers(body)
                ) as response:
                    await response.read()
                    status = response.status
        except TRANSPORT_ERRORS as error:
            return self._failed(describe(error))
        if 200 <= status < 300:
            self._recovered()
            return True
        if status == PAYLOAD_TOO_LARGE and self._limit > 1:
            self._limit = max(1, len(lines) // 2)
        return self._failed(f"HTTP {status}")

    def _headers(self, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: timestamp,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret.value(), timestamp, body)
        return headers

    def _failed(self, reason: str) -> bool:
        if not self._failing:  # once per outage, not once per retry
            _log.warning("webhook %s: %s; retrying with backoff", self.key, reason)
        self._failing = True
        return False

    def _recovered(self) -> None:
        if self._failing:
            _log.info("webhook %s: delivering again", self.key)
        self._failing = False

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()


async def _finish(task: asyncio.Task[None], seconds: float) -> None:
    """Wait for `task` up to `seconds`, then cancel it; log how it failed, if it did."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        _log.error("%s failed", task.get_name(), exc_info=task.exception())
