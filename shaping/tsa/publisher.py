"""Publish log records to every TSA replica, durably, without ever slowing the caller.

:class:`TsaPublisher` keeps every ``TransientFailure`` and ``Bounce`` record for every TSA
URL (each replica computes the same state from the same stream). ``publish()`` only appends
to an in-memory buffer; a flusher task moves the buffer into one durable :class:`Outbox` per
URL every ``batch_delay`` (or ``batch_size`` records), and one sender task per URL posts
batches as a JSON array to ``POST <url>/publish_log_v1``, dropping them from the outbox once
the TSA answered 2xx. A TSA that is down or slow only grows the bounded outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

from .link import (
    REQUEST_TIMEOUT,
    RETRY_INITIAL,
    RETRY_MAX,
    TRANSPORT_ERRORS,
    Backoff,
    SessionFactory,
    StateLog,
    auth_headers,
    describe,
)
from .outbox import Outbox

logger = logging.getLogger("shaping.tsa")

PUBLISH_PATH: Final = "/publish_log_v1"
# What the TSA rules act on (KumoMTA's tsa-daemon ignores every other record type).
PUBLISHED_TYPES: Final = frozenset({"TransientFailure", "Bounce"})
# A TSA refusing the content itself: the batch is split to find the record it refuses.
CONTENT_REJECTED: Final = frozenset({400, 413, 422})
CLOSE_TIMEOUT: Final = 5.0


class _Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # the TSA could not take it now: back off, then send it again
    REJECTED = "rejected"  # the TSA refused the content: split, or drop a single record


@dataclasses.dataclass(frozen=True)
class PublisherStats:
    """Counters for metrics; ``backlog`` is per URL (in memory plus in the outbox)."""

    backlog: Mapping[str, int]
    sent: int
    dropped: int  # oldest records dropped by the bounds (memory or outbox)
    failures: int  # failed attempts to post a batch
    rejected: int  # records the TSA refused as malformed (dropped)


class _Channel:
    """Everything about one TSA URL."""

    def __init__(self, url: str, batch_size: int, max_records: int) -> None:
        self.url = url
        self.pending: deque[bytes] = deque()  # published, not yet in the outbox
        self.max_records = max_records
        self.outbox: Outbox | None = None
        self.wake = asyncio.Event()  # new records in the outbox, or closing
        self.limit = batch_size  # shrinks while isolating a record the TSA refuses
        self.state = StateLog(f"TSA {url} (publish)")
        self.sent = self.dropped = self.failures = self.rejected = 0

    def add(self, line: bytes) -> None:
        if len(self.pending) >= self.max_records:
            self.pending.popleft()
            self.dropped += 1
        self.pending.append(line)

    @property
    def backlog(self) -> int:
        return len(self.pending) + (self.outbox.backlog if self.outbox else 0)

    @property
    def dropped_total(self) -> int:
        return self.dropped + (self.outbox.dropped if self.outbox else 0)


class TsaPublisher:
    """Publish relevant log records to every TSA URL, durably and without ever blocking.

    Records published before :meth:`start` are kept in memory and flushed once started;
    records published after :meth:`close` began are ignored.
    """

    def __init__(
        self,
        urls: Sequence[str],
        outbox_dir: Path,
        *,
        token: str | None = None,
        batch_size: int = 500,
        batch_delay: float = 0.2,
        max_records: int = 100_000,
        session_factory: SessionFactory = aiohttp.ClientSession,
        request_timeout: float = REQUEST_TIMEOUT,
        retry_initial: float = RETRY_INITIAL,
        retry_max: float = RETRY_MAX,
    ) -> None:
        if batch_size < 1 or max_records < 1:
            raise ValueError("batch_size and max_records must be at least 1")
        self._channels = [_Channel(url.rstrip("/"), batch_size, max_records) for url in urls]
        self._outbox_dir = outbox_dir
        self._headers = {"Content-Type": "application/json", **auth_headers(token)}
        self._batch_size = batch_size
        self._batch_delay = batch_delay
        self._max_records = max_records
        self._session_factory = session_factory
        self._request_timeout = request_timeout
        self._retry = (retry_initial, retry_max)
        self._session: aiohttp.ClientSession | None = None
        self._unflushed = 0  # records published since the last flush
        self._wake = asyncio.Event()  # first record, a full batch, or closing
        self._stop = asyncio.Event()
        self._closing = False
        self._flusher: asyncio.Task[None] | None = None
        self._senders: list[asyncio.Task[None]] = []

    def publish(self, record: Mapping[str, Any]) -> None:
        """Queue ``record`` for every TSA if it is a type the TSA acts on. Cheap, never blocks."""
        if record.get("type") not in PUBLISHED_TYPES or self._closing:
            return
        # Encoded now: the caller (or another listener) may change the dict afterwards.
        line = orjson.dumps(record, default=str)
        for channel in self._channels:
            channel.add(line)
        self._unflushed += 1
        if self._unflushed == 1 or self._unflushed >= self._batch_size:
            self._wake.set()

    async def start(self) -> None:
        """Open the outboxes (records left by an earlier run are sent first) and the tasks."""
        for channel in self._channels:
            channel.outbox = await Outbox.open(
                self._outbox_dir, channel.url, max_records=self._max_records
            )
        self._session = self._session_factory()
        self._flusher = asyncio.create_task(self._flush_loop(), name="tsa-publish-flush")
        self._senders = [
            asyncio.create_task(self._send_loop(channel), name=f"tsa-publish {channel.url}")
            for channel in self._channels
        ]

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:  # noqa: ASYNC109 - a drain bound
        """Move what is buffered into the outboxes, let posts in flight finish (within
        ``timeout`` in all), stop the tasks. Unsent records stay in the outboxes."""
        self._closing = True
        self._wake.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._flusher is not None:
            await _finish([self._flusher], timeout)
        self._stop.set()
        for channel in self._channels:
            channel.wake.set()
        await _finish(self._senders, max(0.0, deadline - loop.time()))
        if self._session is not None:
            await self._session.close()
        for channel in self._channels:
            if channel.outbox is not None:
                await channel.outbox.close()

    def stats(self) -> PublisherStats:
        """Backlog per URL and totals since start, for metrics."""
        channels = self._channels
        return PublisherStats(
            backlog={channel.url: channel.backlog for channel in channels},
            sent=sum(channel.sent for channel in channels),
            dropped=sum(channel.dropped_total for channel in channels),
            failures=sum(channel.failures for channel in channels),
            rejected=sum(channel.rejected for channel in channels),
        )

    async def _flush_loop(self) -> None:
        while True:
            if not self._closing:
                await self._wait_for_batch()
            flushed = await self._flush()
            pending = any(channel.pending for channel in self._channels)
            if self._closing and (not flushed or not pending):
                return
            if pending:
                self._wake.set()  # a failed append is retried after batch_delay

    async def _wait_for_batch(self) -> None:
        await self._wake.wait()
        self._wake.clear()
        if self._unflushed < self._batch_size and not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._batch_delay):
                    await self._wake.wait()  # set again by a full batch or close()
        self._wake.clear()

    async def _flush(self) -> bool:
        self._unflushed = 0
        done = await asyncio.gather(*(self._flush_channel(c) for c in self._channels))
        return all(done)

    async def _flush_channel(self, channel: _Channel) -> bool:
        if not channel.pending or channel.outbox is None:
            return True
        lines = list(channel.pending)
        channel.pending.clear()
        try:
            await channel.outbox.append_lines(lines)
        except OSError as error:
            logger.error("TSA outbox for %s: cannot write: %s", channel.url, describe(error))
            channel.pending.extendleft(reversed(lines))  # back in front, in order
            while len(channel.pending) > channel.max_records:
                channel.pending.popleft()
                channel.dropped += 1
            return False
        channel.wake.set()
        return True

    async def _send_loop(self, channel: _Channel) -> None:
        backoff = Backoff(*self._retry)
        while not self._stop.is_set():
            try:
                await self._send_next(channel, backoff)
            except OSError as error:  # the outbox's disk; the records are still there
                logger.error("TSA outbox for %s: cannot read: %s", channel.url, describe(error))
                await self._pause(backoff.delay())

    async def _send_next(self, channel: _Channel, backoff: Backoff) -> None:
        assert channel.outbox is not None
        channel.wake.clear()
        lines = await channel.outbox.peek_lines(channel.limit)
        if not lines:
            await channel.wake.wait()
            return
        outcome = await self._post(channel, lines)
        if outcome is _Outcome.RETRY:
            channel.failures += 1
            await self._pause(backoff.delay())
            return
        backoff.reset()
        await self._settle(channel, lines, outcome)

    async def _settle(self, channel: _Channel, lines: list[bytes], outcome: _Outcome) -> None:
        assert channel.outbox is not None
        if outcome is _Outcome.SENT:
            await channel.outbox.ack(len(lines))
            channel.sent += len(lines)
            channel.limit = self._batch_size
        elif len(lines) > 1:
            channel.limit = max(1, len(lines) // 2)  # bisect towards the refused record
        else:
            logger.error("TSA %s refused a record; dropped: %.200r", channel.url, lines[0])
            await channel.outbox.ack(1)
            channel.rejected += 1

    async def _post(self, channel: _Channel, lines: list[bytes]) -> _Outcome:
        assert self._session is not None
        body = b"[" + b",".join(lines) + b"]"
        try:
            async with asyncio.timeout(self._request_timeout):
                async with self._session.post(
                    channel.url + PUBLISH_PATH, data=body, headers=self._headers
                ) as response:
                    await response.read()
                    status = response.status
        except TRANSPORT_ERRORS as error:
            channel.state.failed(describe(error))
            return _Outcome.RETRY
        if 200 <= status < 300:
            channel.state.ok()
            return _Outcome.SENT
        channel.state.failed(f"HTTP {status}")
        return _Outcome.REJECTED if status in CONTENT_REJECTED else _Outcome.RETRY

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()


async def _finish(tasks: Sequence[asyncio.Task[None]], seconds: float) -> None:
    """Wait for ``tasks`` up to ``seconds``, then cancel the rest; log their failures."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=seconds)
    for task in late:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", task.get_name(), exc_info=task.exception())
