"""JSON log records, one object per line, with KumoMTA's field names and record types.

Every outcome (reception, delivery, transient failure, bounce, ...) becomes one record. Records
are built and serialised on the caller's path but written by a background task: `record()` only
appends to a bounded in-memory buffer, so a slow pipe or disk can never stall delivery. When the
buffer is full the record is counted in `dropped` instead (never block, never grow unbounded).
Sinks: stdout, and rotating compressed segment files under `[log] path` (`mta.log_sink`).
Listeners (metrics, webhooks, the TSA publisher) get every record as a dict, dropped or not.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

import orjson

from mta.bounce import DEFAULT_BOUNCE_RULES as DEFAULT_BOUNCE_RULES  # compatibility
from mta.bounce import UNCATEGORIZED
from mta.bounce import BounceClassifier as BounceClassifier  # compatibility
from mta.bounce import classify_bounce as classify_bounce  # compatibility
from mta.log_segments import SegmentPolicy
from mta.log_sink import SegmentSink
from mta.replies import Reply

_log = logging.getLogger(__name__)

RecordType = Literal[
    "Reception",
    "Delivery",
    "TransientFailure",
    "Bounce",
    "Expiration",
    "AdminBounce",
    "Rejection",
    "Delayed",
]
Listener = Callable[[dict[str, Any]], None]

DEFAULT_MAX_BUFFER = 100_000
# Lines handed to one writer thread call: large enough to amortise the thread hop, small enough
# that a huge backlog does not build one giant string.
WRITE_BATCH_LINES = 5_000
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")  # RFC 3463 class.subject.detail


class PeerAddressLike(Protocol):
    """Anything with `name` (MX host or EHLO name) and `addr` (IP address)."""

    @property
    def name(self) -> str: ...

    @property
    def addr(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PeerAddress:
    """The peer of a record: `name` from the MX record or EHLO, `addr` its IP address."""

    name: str
    addr: str


def response_fields(reply: Reply, command: str | None = None) -> dict[str, Any]:
    """KumoMTA's `response` object for a reply (enhanced code split into its three numbers)."""
    return {
        "code": reply.code,
        "enhanced_code": _enhanced_fields(reply.enhanced),
        "content": reply.text,
        "command": command,
    }


def _enhanced_fields(enhanced: str) -> dict[str, int] | None:
    match = _ENHANCED.match(enhanced)
    if match is None:
        return None
    cls, subject, detail = (int(part) for part in match.groups())
    return {"class": cls, "subject": subject, "detail": detail}


def _peer_fields(peer: PeerAddressLike | None) -> dict[str, str] | None:
    return None if peer is None else {"name": peer.name, "addr": peer.addr}


class RecordLog:
    """Builds KumoMTA-shaped log records and writes them, one JSON line each, off the loop.

    Sinks: stdout (or `stream`) when `stdout` is true, and segment files under `path` (rotated
    and compressed by `segments`) when `path` is given. `record()` never blocks; `start()` runs
    the writer, `close()` flushes and stops it.
    Call `record()` from the event loop's thread (it wakes the writer through an asyncio.Event).
    """

    def __init__(
        self,
        *,
        nodeid: str,
        stdout: bool = True,
        path: Path | None = None,
        stream: TextIO | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        segments: SegmentPolicy | None = None,
    ) -> None:
        if max_buffer < 1:
            raise ValueError("max_buffer must be at least 1")
        self.nodeid = nodeid
        self.dropped = 0
        self.written = 0
        self.write_errors = 0
        self._stdout = stdout
        self._stream = stream
        self._sink = None if path is None else SegmentSink(path, segments or SegmentPolicy())
        self._max_buffer = max_buffer
        self._buffer: deque[bytes] = deque()
        self._listeners: list[Listener] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._drain_lock = asyncio.Lock()  # one writer thread at a time keeps lines in order

    @property
    def buffered(self) -> int:
        """Records waiting for the writer."""
        return len(self._buffer)

    def add_listener(self, fn: Listener) -> None:
        """Call `fn(record_dict)` for every record, on the caller's path (keep it cheap)."""
        self._listeners.append(fn)

    def record(
        self,
        type: RecordType,
        *,
        id: str,
        sender: str,
        recipient: str | None = None,
        queue: str = "",
        site: str = "",
        size: int = 0,
        response: Reply,
        command: str | None = None,
        peer_address: PeerAddressLike | None = None,
        created: float | None = None,
        num_attempts: int = 0,
        bounce_classification: str = UNCATEGORIZED,
        egress_pool: str | None = None,
        egress_source: str | None = None,
        provider: str | None = None,
        meta: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        reception_protocol: str | None = None,
        delivery_protocol: str | None = None,
        tls_cipher: str | None = None,
        tls_protocol_version: str | None = None,
    ) -> None:
        """Build one record, hand it to the listeners and queue its JSON line (never blocks)."""
        now = int(time.time())
        entry: dict[str, Any] = {
            "type": type,
            "id": id,
            "sender": sender,
            # KumoMTA's recipient is always a string; "" when the record has none.
            "recipient": recipient or "",
            "queue": queue,
            "site": site,
            "size": size,
            "response": response_fields(response, command),
            "peer_address": _peer_fields(peer_address),
            "timestamp": now,
            "created": now if created is None else int(created),
            "num_attempts": num_attempts,
            "bounce_classification": bounce_classification,
            "egress_pool": egress_pool,
            "egress_source": egress_source,
            "source_address": None,
            "provider": provider,
            "feedback_report": None,
            "meta": dict(meta or {}),
            "headers": dict(headers or {}),
            "delivery_protocol": delivery_protocol,
            "reception_protocol": reception_protocol,
            "nodeid": self.nodeid,
            "tls_cipher": tls_cipher,
            "tls_protocol_version": tls_protocol_version,
        }
        self._emit(entry)

    def rejection(
        self,
        *,
        sender: str | None,
        recipient: str | None,
        reply: Reply,
        command: str,
        peer_address: str,
        peer_name: str = "",
    ) -> None:
        """Log a "Rejection": a 4xx/5xx this node answered to an inbound SMTP command."""
        self.record(
            "Rejection",
            id="",
            sender=sender or "",
            recipient=recipient,
            response=reply,
            command=command,
            peer_address=PeerAddress(peer_name, peer_address),
            reception_protocol="ESMTP",
        )

    def _emit(self, entry: dict[str, Any]) -> None:
        # Serialise before the listeners run, so a listener that mutates the dict cannot
        # change what is written.
        if len(self._buffer) >= self._max_buffer:
            self.dropped += 1
        else:
            # default=str: an odd meta value degrades to its text instead of raising here.
            line = orjson.dumps(entry, default=str, option=orjson.OPT_APPEND_NEWLINE)
            self._buffer.append(line)
            if self._wakeup is not None:
                self._wakeup.set()
        for listener in self._listeners:
            try:
                listener(entry)
            except Exception:  # a broken listener must not fail a delivery
                _log.exception("log record listener %r failed", listener)

    async def start(self) -> None:
        """Start the writer task (records logged before this are written first)."""
        if self._task is not None and not self._task.done():
            return
        self._closing = False
        self._wakeup = asyncio.Event()
        self._wakeup.set()
        self._task = asyncio.create_task(self._run(), name="record-log-writer")
        if self._sink is not None:
            await self._sink.start()

    async def close(self) -> None:
        """Write everything buffered, stop the writer and close the files. Idempotent."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            assert self._wakeup is not None
            self._wakeup.set()
            # wait() rather than await: a writer cancelled from outside must not make close()
            # look cancelled to its caller.
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                _log.error("log writer failed", exc_info=task.exception())
        self._wakeup = None
        await self._drain()  # records logged after the task stopped, or without start()
        if self._sink is not None:
            async with self._drain_lock:
                await self._sink.close()

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._drain()
            if self._closing:
                return

    async def _drain(self) -> None:
        async with self._drain_lock:
            while self._buffer:
                count = min(len(self._buffer), WRITE_BATCH_LINES)
                batch = [self._buffer.popleft() for _ in range(count)]
                if await asyncio.to_thread(self._write_batch, batch):
                    self.written += len(batch)
                else:
                    self.write_errors += 1
                if self._sink is not None:
                    self._sink.notify()

    def _write_batch(self, batch: list[bytes]) -> bool:
        """Runs in a worker thread, the only place that touches the sinks; False on an error."""
        data = b"".join(batch)
        ok = True
        # Each sink on its own: a closed stdout pipe must not stop the file, nor the reverse.
        # A failed batch is lost for that sink; the writer carries on with the next one.
        if self._stdout:
            ok = _guarded(self._write_stream, data) and ok
        if self._sink is not None:
            ok = _guarded(self._sink.write, data) and ok
        return ok

    def _write_stream(self, data: bytes) -> None:
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(data.decode())
        stream.flush()


def _guarded(write: Callable[[bytes], None], data: bytes) -> bool:
    try:
        write(data)
    except (OSError, ValueError):  # ValueError: the stream was closed under us
        _log.exception("writing log records failed (%d bytes lost)", len(data))
        return False
    return True
