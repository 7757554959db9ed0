"""The ``mta sink`` server: an SMTP sink for demos that keeps every message as a file.

It accepts any sender and recipient. Each message becomes
``<directory>/<timestamp>-<counter>.eml`` holding ``X-Sink-Mail-From:`` and one
``X-Sink-Rcpt-To:`` line per recipient, then the message bytes exactly as received
(CRLF line endings). A file appears complete or not at all: it is written under a
hidden temporary name and renamed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("mta.sink")

_DATA_SIZE_LIMIT = 32 * 1024 * 1024
_STOP_GRACE_SECONDS = 5.0


class Sink:
    """An SMTP server on ``host:port`` that stores every message it receives.

    ``port=0`` binds any free port; :attr:`port` tells which after :meth:`start`.
    ``received`` counts the messages stored so far.
    """

    def __init__(self, directory: Path, *, host: str = "127.0.0.1", port: int = 2526) -> None:
        self.directory = Path(directory)
        self.host = host
        self.received = 0
        self._requested_port = port
        self._bound_port: int | None = None
        self._server: asyncio.Server | None = None
        self._sessions: set[_SinkProtocol] = set()
        self._writes: set[asyncio.Task[Path]] = set()
        self._counter = itertools.count(1)
        self._hostname = socket.gethostname() or "mta-sink"

    @property
    def port(self) -> int:
        """The bound port once started, else the port asked for."""
        return self._bound_port if self._bound_port is not None else self._requested_port

    async def start(self) -> None:
        """Create the directory if needed and start listening."""
        if self._server is not None:
            raise RuntimeError("sink already started")
        self.directory.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        handler = _StoreHandler(self)
        self._server = await loop.create_server(
            lambda: _SinkProtocol(self, handler, loop),
            self.host,
            self._requested_port,
        )
        self._bound_port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close open sessions (a message being stored is finished)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = [task for session in self._sessions if (task := session.close_session())]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=_STOP_GRACE_SECONDS)
            for session in list(self._sessions):
                session.abort_session()
            if pending:
                await asyncio.wait(pending, timeout=_STOP_GRACE_SECONDS)
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=_STOP_GRACE_SECONDS)
        await server.wait_closed()

    def next_file_name(self) -> str:
        """A name that sorts in arrival order: UTC time to the microsecond, then a counter."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{stamp}-{next(self._counter):06d}.eml"

    async def store(self, mail_from: str, rcpt_tos: list[str], data: bytes, peer: str) -> Path:
        """Write one message file (off the event loop), count and log it.

        The write completes even if the session is cancelled meanwhile; stop()
        waits for it.
        """
        task = asyncio.create_task(self._store(mail_from, rcpt_tos, data, peer))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        task.add_done_callback(_retrieve_outcome)
        return await asyncio.shield(task)

    async def _store(self, mail_from: str, rcpt_tos: list[str], data: bytes, peer: str) -> Path:
        path = self.directory / self.next_file_name()
        await asyncio.to_thread(_write_message, path, mail_from, rcpt_tos, data)
        self.received += 1
        log.info(
            "stored %s from=%s to=%s size=%d peer=%s",
            path.name,
            mail_from,
            ",".join(rcpt_tos),
            len(data),
            peer,
        )
        return path

    def _session_opened(self, session: _SinkProtocol) -> None:
        self._sessions.add(session)

    def _session_closed(self, session: _SinkProtocol) -> None:
        self._sessions.discard(session)


def _write_message(path: Path, mail_from: str, rcpt_tos: list[str], data: bytes) -> None:
    lines = [f"X-Sink-Mail-From: {mail_from}"]
    lines += [f"X-Sink-Rcpt-To: {rcpt}" for rcpt in rcpt_tos]
    header = "".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogateescape")
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "wb") as file:
            file.write(header)
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class _StoreHandler:
    """aiosmtpd handler: every envelope is accepted, every message stored."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        mail_from = envelope.mail_from or "<>"
        data = envelope.original_content or b""
        peer = _peer_text(session.peer)
        try:
            path = await self._sink.store(mail_from, list(envelope.rcpt_tos), data, peer)
        except OSError as error:
            log.error("could not store message from %s: %s", mail_from, error)
            return "451 4.3.0 could not store the message"
        return f"250 2.0.0 OK stored as {path.name}"


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


class _SinkProtocol(SMTP):
    """aiosmtpd's SMTP protocol that tells its Sink when a session starts and ends."""

    def __init__(self, sink: Sink, handler: _StoreHandler, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(
            handler,
            hostname=sink._hostname,
            ident="mta sink",
            data_size_limit=_DATA_SIZE_LIMIT,
            enable_SMTPUTF8=True,
            loop=loop,
        )
        self._sink = sink

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._sink._session_opened(self)
        if self._handler_coroutine is not None:
            self._handler_coroutine.add_done_callback(_retrieve_outcome)

    def connection_lost(self, error: Exception | None) -> None:
        self._sink._session_closed(self)
        super().connection_lost(error)

    def close_session(self) -> asyncio.Task[None] | None:
        """Close the connection; return the session task to wait for."""
        if self.transport is not None:
            self.transport.close()
        return self._handler_coroutine

    def abort_session(self) -> None:
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()


def _retrieve_outcome(task: asyncio.Task[Any]) -> None:
    # A client vanishing mid-reply ends aiosmtpd's session task with an error;
    # retrieve it so asyncio does not report it as never retrieved.
    if not task.cancelled():
        task.exception()


async def run_sink(directory: Path, host: str, port: int, stop: asyncio.Event) -> None:
    """Run a Sink until ``stop`` is set (the ``mta sink`` command).

    If nothing configured logging for ``mta.sink``, one line per message goes to
    stderr.
    """
    if not log.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    sink = Sink(directory, host=host, port=port)
    await sink.start()
    log.info("listening on %s:%d, storing messages in %s", host, sink.port, directory)
    try:
        await stop.wait()
    finally:
        await sink.stop()
        log.info("stopped after storing %d message(s)", sink.received)
